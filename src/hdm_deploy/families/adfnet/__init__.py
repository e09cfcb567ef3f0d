"""ADFNet (AAAI 2023, image denoising) as an hdm-deploy family; see ``docs/adfnet.md``."""
