"""``lpsc-lmp data import | split``: labelled reference data in data/<name>/ (docs/data.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ..structure import DEFAULT_TYPE_MAP
from ..training.readers import FORMATS


def _test_size(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number; pass a count (60) or a fraction "
                                 "(0.175)") from None
    return x


@click.group("data")
def data() -> None:
    """Labelled reference data: import calculations into data/<name>/, split train/test.

    Your own PBE/HSE data (ABACUS, VASP, DeePMD npy, extxyz) come in through `data import`,
    then `data split` and `lpsc-lmp train`.

    \b
    Example:
      lpsc-lmp data import abacus_md/ --name my-pbe
      lpsc-lmp data split my-pbe --test 60
      lpsc-lmp train --arch mace --dataset my-pbe --name mace-pbe --reference PBE
    """


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
    from ..training.dataset import import_dataset, parse_type_map

    import_dataset(list(sources), name, fmt, parse_type_map(type_map), data_root,
                   append=append, force=force, echo=click.echo)


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
    from ..training.dataset import split_dataset

    split_dataset(name, _test_size(test), seed, data_root, force=force, echo=click.echo)


@data.command("label")
@click.argument("source")
@click.option("--name", required=True, help="The new dataset: data/<name>/.")
@click.option("--labeller", default="7net-mf-0", show_default=True,
              help="Universal potential that labels the frames (7net-0, 7net-mf-0).")
@click.option("--modal", default=None,
              help="Output modality of a multi-fidelity labeller (7net-mf-0: PBE or R2SCAN).")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of datasets (default: data/ or $LPSC_LMP_DATA).")
@click.option("--force", is_flag=True, help="Relabel a dataset that is already labelled.")
def data_label(source: str, name: str, labeller: str, modal: str | None,
               data_root: Path | None, force: bool) -> None:
    """Relabel every frame of dataset SOURCE with a universal potential into data/NAME
    (same frames, same split; resumable). A stand-in for DFT labels: bring your own PBE/HSE
    data through `data import`.

    Example: lpsc-lmp data label lpsc-7net --name lpsc-mf-r2scan --modal R2SCAN
    """
    from ..training.label import label_dataset

    label_dataset(source, name, labeller, modal, data_root, force, echo=click.echo)


@data.command("compare")
@click.argument("a")
@click.argument("b")
@click.option("--eos", is_flag=True,
              help="Also the energy-volume curve of the cell by each dataset's labeller.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of datasets (default: data/ or $LPSC_LMP_DATA).")
def data_compare(a: str, b: str, eos: bool, data_root: Path | None) -> None:
    """How two labellings A and B of the same frames differ (forces, energies, pressure, and
    with --eos the lattice each labeller prefers); written to data/B/labels_vs_A.json.

    Example: lpsc-lmp data compare lpsc-mf-pbe lpsc-mf-r2scan --eos
    """
    from ..training.compare_labels import compare_labels

    compare_labels(a, b, data_root, eos, echo=click.echo)
