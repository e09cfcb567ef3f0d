"""The thin typer command line (``hdm-deploy``)."""

from hdm_deploy.cli.commands import app, main

__all__ = ["app", "main"]
