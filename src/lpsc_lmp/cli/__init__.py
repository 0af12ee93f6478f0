"""The ``lpsc-lmp`` command line: one thin module per command group over the library.

Each command parses its options, calls the library and prints; errors of the library
(:class:`lpsc_lmp.errors.LpscError`) become one-line messages in one place
(:class:`lpsc_lmp.cli.main.Cli`). Command modules are imported only when their command runs.
"""

from .main import main

__all__ = ["main"]
