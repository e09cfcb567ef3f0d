"""The thin typer command line (``hdm-deploy``)."""

import os

# OpenCV/FFmpeg print their own log lines ("moov atom not found"); our errors say it in one line.
# Set before cv2 is first imported, which importing the commands does.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from hdm_deploy.cli import hdr as _hdr  # noqa: F401  (registers hdr commands)
from hdm_deploy.cli.commands import app, main

__all__ = ["app", "main"]
