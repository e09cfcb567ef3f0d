"""The thin typer command line (``hdm-deploy``)."""

import os

# OpenCV/FFmpeg print their own log lines ("moov atom not found"); our errors say it in one line.
# Set before cv2 is first imported, which importing the commands does.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from hdm_deploy.cli import hdr as _hdr  # noqa: F401  (registers hdr commands)
from hdm_deploy.cli import memory as _memory  # noqa: F401  (registers `fits`)
from hdm_deploy.cli import serving as _serving  # noqa: F401 - registers triton-repo and serve
from hdm_deploy.cli.commands import app, main

__all__ = ["app", "main"]
