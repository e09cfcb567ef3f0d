"""What a Jetson without PyTorch imports must not pull torch in, even transitively."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import hdm_deploy.core
import hdm_deploy.graph
import hdm_deploy.runtime
import hdm_deploy.tensorrt

TORCH_FREE = [
    *(f"hdm_deploy.runtime.{m.name}" for m in pkgutil.iter_modules(hdm_deploy.runtime.__path__)),
    *(f"hdm_deploy.tensorrt.{m.name}" for m in pkgutil.iter_modules(hdm_deploy.tensorrt.__path__)),
    *(f"hdm_deploy.core.{m.name}" for m in pkgutil.iter_modules(hdm_deploy.core.__path__)),
    *(f"hdm_deploy.graph.{m.name}" for m in pkgutil.iter_modules(hdm_deploy.graph.__path__)),
    "hdm_deploy.runtime",
    "hdm_deploy.plugins",
    "hdm_deploy.families.hdm.dcp.reference",
    "hdm_deploy.families.hdm.dcp.onnx_function",  # `masks --impl onnx` runs without torch
    "hdm_deploy.families.hdm.dcp.render",
    "hdm_deploy.families.diffhdr.family",
    "hdm_deploy.families.diffhdr.sampler",  # `hdm-deploy hdr` runs without torch
    "hdm_deploy.families.diffhdr.parity",
    "hdm_deploy.cli.commands",
]


def test_torch_free_modules_do_not_import_torch():
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'torch' in sys.modules:\n"
        "        print(name); break\n"
        "else:\n"
        "    print('none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none", f"{out.stdout.strip()} imports torch"
    assert len(TORCH_FREE) > 12
