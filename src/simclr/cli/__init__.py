"""The ``simclr`` command line: one module per command group, flags derived from the config."""

from simclr.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
