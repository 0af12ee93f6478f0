"""``lpsc-lmp status``: one line per ensemble under a runs directory (or for one ensemble)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError


@click.command("status")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json_", is_flag=True, help="Machine-readable output.")
def status(path: Path | None, as_json_: bool) -> None:
    """Summarise every ensemble under PATH (a runs directory, default runs/) or one ensemble:
    seeds done, failed, running and to do, ns simulated and ns/day per worker.

    Example: lpsc-lmp status runs/dp-7net
    """
    from ..paths import runs_dir
    from ..runs.status import as_json, format_table, status_rows

    target = path or runs_dir()
    if not target.exists():
        raise InputError(f"{target} does not exist; pass a runs or ensemble directory")
    rows = status_rows(target)
    if as_json_:
        click.echo(as_json(rows))
    elif not rows:
        click.echo(f"no ensemble under {target}")
    else:
        click.echo(format_table(rows))
