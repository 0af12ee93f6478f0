"""``lpsc-lmp data import|split``, ``lpsc-lmp train`` and ``lpsc-lmp evaluate``.

Register with ``for c in DATA_COMMANDS: main.add_command(c)``. See ``docs/data.md``.
"""

from __future__ import annotations

from pathlib import Path

import click

from .dataset import FORMATS, DatasetError, import_dataset, parse_type_map, split_dataset
from .structure import DEFAULT_TYPE_MAP
from .train_cli import evaluate, train

__all__ = ["DATA_COMMANDS", "data"]


def _test_size(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number; pass a count (60) or a fraction "
                                 "(0.175)") from None
    return x


@click.group("data")
def data() -> None:
    """Labelled reference data: import calculations into data/<name>/, split train/test."""


@data.command("import")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Dataset name: data/<name>/.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Reader (auto: from file names and the ABACUS INPUT `calculation`).")
@click.option("--type-map", default=",".join(DEFAULT_TYPE_MAP), show_default=True,
              help="Allowed elements, in model type order.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of datasets (default: data/ or $LPSC_LMP_DATA).")
@click.option("--append", is_flag=True, help="Add frames to an existing dataset.")
@click.option("--force", is_flag=True, help="Replace an existing dataset (and its split).")
def data_import(sources: tuple[Path, ...], name: str, fmt: str, type_map: str,
                data_root: Path | None, append: bool, force: bool) -> None:
    """Read SOURCES (ABACUS folders or INPUT files, VASP OUTCAR/vasprun.xml, DeePMD npy
    folders, extxyz) into data/NAME/frames.extxyz + import.json."""
    try:
        import_dataset(list(sources), name, fmt, parse_type_map(type_map), data_root,
                       append=append, force=force, echo=click.echo)
    except DatasetError as exc:
        raise click.UsageError(str(exc)) from None


@data.command("split")
@click.argument("name")
@click.option("--test", "test", required=True, type=str,
              help="Test frames: a count (60) or a fraction < 1 (0.175).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the permutation.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of datasets (default: data/ or $LPSC_LMP_DATA).")
@click.option("--force", is_flag=True, help="Resplit a dataset that is split differently.")
def data_split(name: str, test: str, seed: int, data_root: Path | None, force: bool) -> None:
    """Seeded random train/test split of data/NAME (written once; reruns are no-ops)."""
    try:
        split_dataset(name, _test_size(test), seed, data_root, force=force, echo=click.echo)
    except DatasetError as exc:
        raise click.UsageError(str(exc)) from None


DATA_COMMANDS = [data, train, evaluate]
