"""Development-only helpers (bundled photographs, synthetic haze) for tests, benchmarks and scripts.

Not part of the installed package: ``pyproject.toml`` ships only ``hdm_deploy``; an editable
install (``pip install -e .``) puts ``src/`` on the path, so these import in a checkout.
"""
