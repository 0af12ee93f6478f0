"""``lpsc-lmp models list | show | prepare | add``: the model registry under potentials/."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import LpscError
from ..models.architectures import ARCHITECTURES
from ..models.registry import list_models, read_card


@click.group()
def models() -> None:
    """The model registry under potentials/ (one folder per model, with card.yaml).

    \b
    Examples:
      lpsc-lmp models list
      lpsc-lmp models show dp-7net
      lpsc-lmp models add my-mace --arch mace --functional PBE my.model
    """


def _summary(name: str) -> str:
    """One line of ``models list`` from the card alone (no LAMMPS is asked: fast)."""
    try:
        path, raw = read_card(name)
    except LpscError as exc:
        return f"{name:20s} BROKEN: {exc}"
    routes = raw["route"] if isinstance(raw["route"], list) else [raw["route"]]
    deploy = path.parent / str((raw.get("files") or {}).get("deploy", ""))
    state = "ready" if deploy.is_file() else \
        f"{deploy.name} missing (run `lpsc-lmp models prepare {name}`)"
    functional = raw.get("functional") or raw["reference"]
    return (f"{name:20s} {raw['architecture']:8s} {str(functional):8s} {_labels(raw):23s} "
            f"{'-'.join(raw['type_map']):12s} rcut {float(raw['cutoff_A']):g} A  "
            f"routes {'>'.join(routes):28s} {state}")


def _labels(raw: dict) -> str:
    """Where a model's training labels came from: the labeller (and its output), 'teacher' for
    a universal potential that labels, else the dataset."""
    if raw.get("teacher"):
        return "teacher"
    lab = (raw.get("training") or {}).get("labelling") or {}
    if lab.get("labeller"):
        return f"labels {lab['labeller']}" + (f" {lab['modal']}" if lab.get("modal") else "")
    if raw.get("reference") == "7net":
        return "labels 7net-0"
    return f"data {raw['dataset']}" if raw.get("dataset") else "-"


@models.command("list")
def models_list() -> None:
    """One line per registered model: architecture, functional of its labels, where the labels
    came from (labeller, or 'teacher' for a labeller), type map, cutoff, routes in order of
    preference, and whether its files are ready."""
    names = list_models()
    if not names:
        click.echo("no models registered under potentials/; add one with `lpsc-lmp models add` "
                   "or `lpsc-lmp train`")
    for name in names:
        click.echo(_summary(name))


@models.command("show")
@click.argument("name")
def models_show(name: str) -> None:
    """The whole card of a model, and the route and file LAMMPS uses here."""
    import yaml

    from ..models.registry import load_card

    c = load_card(name)
    click.echo(yaml.safe_dump(c.raw, sort_keys=False).rstrip())
    state = "present" if c.lammps_file.is_file() else \
        f"MISSING: run `lpsc-lmp models prepare {c.name}`"
    click.echo(f"# route here: {c.route}; file LAMMPS uses: {c.lammps_file} ({state})")


@models.command("prepare")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Remake derived files that exist.")
@click.option("--all-routes", is_flag=True,
              help="Also make the exports of native routes this LAMMPS cannot run (pair_nequip, "
                   "pair_allegro, pair_mace), e.g. to copy them to a cluster.")
@click.option("--device", default=None, metavar="cpu|cuda",
              help="Also compile what a device needs of its own (NequIP/Allegro: the "
                   "python-callback file and the --batch package for that device); run on the "
                   "GPU machine. Ensembles on a GPU do this by themselves the first time.")
def models_prepare(names: tuple[str, ...], force: bool, all_routes: bool,
                   device: str | None) -> None:
    """Derive deployable files (e.g. compressed DeePMD models) from the committed ones: for
    every model, or the NAMES given. A native route's export is made when that route is the one
    this LAMMPS runs (or with --all-routes)."""
    from ..models.derive import prepare_model

    for name in names or list_models():
        for path in prepare_model(name, force, all_routes, device, echo=click.echo):
            click.echo(f"{name}: made {path.name}")


@models.command("add")
@click.argument("name")
@click.option("--arch", type=click.Choice(ARCHITECTURES), required=True,
              help="Architecture of FILE.")
@click.option("--functional", required=True,
              help="Reference method of the training labels (PBE, r2SCAN, HSE06, ...).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing model of that name.")
def models_add(name: str, arch: str, functional: str, file: Path, force: bool) -> None:
    """Register FILE as model NAME: export it with ARCH's own tool, write its card.

    Example: lpsc-lmp models add mace-hse --arch mace --functional HSE06 mace_hse.model
    """
    from ..models.add import add_model

    add_model(name, arch, functional, file, force, echo=click.echo)



