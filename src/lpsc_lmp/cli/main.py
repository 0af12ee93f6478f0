"""The ``lpsc-lmp`` group: a table of lazily imported commands and the one error handler."""

from __future__ import annotations

import importlib

import click

from .. import __version__
from ..errors import LpscError, first_line

#: command name -> "module:attribute" (imported when the command is used or help is shown)
COMMANDS = {
    "structure": "lpsc_lmp.cli.structure:structure",
    "models": "lpsc_lmp.cli.models:models",
    "render": "lpsc_lmp.cli.ensemble:render",
    "ensemble": "lpsc_lmp.cli.ensemble:ensemble",
    "sweep": "lpsc_lmp.cli.sweep:sweep",
    "status": "lpsc_lmp.cli.status:status",
    "analyze": "lpsc_lmp.cli.analysis:analyze",
    "arrhenius": "lpsc_lmp.cli.analysis:arrhenius",
    "compare": "lpsc_lmp.cli.analysis:compare",
    "report": "lpsc_lmp.cli.analysis:report",
    "data": "lpsc_lmp.cli.data:data",
    "train": "lpsc_lmp.cli.train:train",
    "evaluate": "lpsc_lmp.cli.train:evaluate",
    "validate": "lpsc_lmp.cli.study:validate",
    "study": "lpsc_lmp.cli.study:study",
    "barriers": "lpsc_lmp.cli.study:barriers",
}


def user_error(exc: LpscError) -> click.ClickException:
    """An lpsc-lmp error as click shows it: ``Error: <first line>``, with the error's exit
    code (2: wrong input, 1: a step failed)."""
    err = click.ClickException(first_line(exc))
    err.exit_code = exc.exit_code
    return err


def filesystem_message(exc: OSError) -> str:
    """One line for a file system error, naming the path and what to do."""
    where = f" {exc.filename}" if exc.filename else ""
    what = exc.strerror or type(exc).__name__
    return (f"cannot write or read{where}: {what}; check that the folder exists, is writable "
            "and has free space (or pass another --runs / --out)")


class Cli(click.Group):
    """Commands from :data:`COMMANDS`, imported on first use; every
    :class:`~lpsc_lmp.errors.LpscError` a command raises becomes a one-line message."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LpscError as exc:
            raise user_error(exc) from None
        except OSError as exc:  # a file system that refuses: read-only, missing, disk full
            raise click.ClickException(filesystem_message(exc)) from None


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__)
def main() -> None:
    """Li diffusion in Li6PS5Cl from ensembles of LAMMPS MD with machine-learned force fields.

    \b
    Typical use:
      lpsc-lmp models list
      lpsc-lmp ensemble --model dp-7net --T 1200 --seeds 10 --time 6 --estimator multi-origin
      lpsc-lmp analyze runs/dp-7net/T1200K --estimator multi-origin
    """


if __name__ == "__main__":
    main()
