"""The ``lpsc-lmp`` command line: structure, models, render, ensemble (+ analysis commands)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from . import __version__
from .analysis_cli import COMMANDS as ANALYSIS_COMMANDS
from .data_cli import DATA_COMMANDS
from .deck import DeckError
from .ensemble import EnsembleError, EnsembleSettings, ensemble_dir, prepare_structure
from .models_add import models_add
from .registry import RegistryError, list_models, load_card
from .status import STATUS_COMMANDS
from .structure import (
    A_EXPERIMENT,
    DEFAULT_TYPE_MAP,
    StructureError,
    build_lpsc,
    check_structure,
    read_structure,
    write_lammps_data,
)
from .sweep import SWEEP_COMMANDS

USER_ERRORS = (DeckError, EnsembleError, RegistryError, StructureError)


class Cli(click.Group):
    """Turns the project's input errors into one-line messages (exit code 2)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            raise click.UsageError(str(exc)) from None


@click.group(cls=Cli)
@click.version_option(__version__)
def main() -> None:
    """Li diffusion in Li6PS5Cl from ensembles of LAMMPS MD with machine-learned force fields."""


# ---------------------------------------------------------------- structure
@main.command()
@click.option("--a", "lattice", type=float, default=A_EXPERIMENT, show_default=True,
              help="Lattice parameter of the conventional cell (A).")
@click.option("--supercell", type=int, default=1, show_default=True,
              help="n for an n x n x n cell.")
@click.option("--from", "source", type=click.Path(), default=None,
              help="Any ASE-readable structure instead of the built-in ordered cell.")
@click.option("--type-map", default=",".join(DEFAULT_TYPE_MAP), show_default=True,
              help="Type order of the LAMMPS data file.")
@click.option("-o", "--output", type=click.Path(), default="lpsc.data", show_default=True)
def structure(lattice: float, supercell: int, source: str | None, type_map: str,
              output: str) -> None:
    """Build (or read) the LPSC cell, check it, write a LAMMPS data file."""
    atoms = read_structure(source) if source else build_lpsc(lattice, 1)
    if supercell > 1:
        atoms = atoms.repeat((supercell,) * 3) if source else build_lpsc(lattice, supercell)
    elif supercell < 1:
        raise StructureError(f"supercell must be >= 1, got {supercell}; pass e.g. --supercell 2")
    rep = check_structure(atoms)
    sha = write_lammps_data(atoms, Path(output), type_map.split(","))
    click.echo(f"{rep.formula}: {rep.n_atoms} atoms, a = {rep.a_A:.4f} A, "
               f"V = {rep.volume_A3:.2f} A^3, charge {rep.charge:+d}, "
               f"min distance {rep.min_distance_A:.3f} A")
    click.echo(f"wrote {output} (types {type_map}; sha256 {sha[:12]})")


# ---------------------------------------------------------------- models
@main.group()
def models() -> None:
    """The model registry under potentials/."""


@models.command("list")
def models_list() -> None:
    """One line per registered model."""
    names = list_models()
    if not names:
        click.echo("no models registered under potentials/")
    for name in names:
        c = load_card(name)
        state = ("ready" if c.lammps_file.is_file() else
                 f"{c.lammps_file.name} missing (run `lpsc-lmp models prepare {c.name}`)")
        click.echo(f"{c.name:16s} {c.architecture:8s} {c.reference:8s} "
                   f"{'-'.join(c.type_map):12s} rcut {c.cutoff_A:g} A  route {c.route:8s} {state}")


@models.command("show")
@click.argument("name")
def models_show(name: str) -> None:
    """The whole card of a model."""
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
@click.option("--device", default=None, metavar="cuda",
              help="Also compile what a GPU needs of its own (NequIP/Allegro: the "
                   "python-callback file and the --batch package for that device); run on the "
                   "GPU machine. Ensembles on a GPU do this by themselves the first time.")
def models_prepare(names: tuple[str, ...], force: bool, all_routes: bool,
                   device: str | None) -> None:
    """Derive deployable files (e.g. compressed DeePMD models) from the committed ones: for
    every model, or the NAMES given. A native route's export is made when that route is the one
    this LAMMPS runs (or with --all-routes)."""
    from .deploy import derive_for_device, derive_missing

    for name in names or list_models():
        made = derive_missing(load_card(name), force=force, all_routes=all_routes,
                              echo=click.echo)
        if device:
            try:
                card = load_card(name, route="python-callback")
            except RegistryError:  # no route evaluated in Python: nothing per device
                card = None
            if card is not None:
                made += derive_for_device(card, device, batch=True, echo=click.echo)
        for path in made:
            click.echo(f"{name}: made {path.name}")


# ---------------------------------------------------------------- decks and ensembles
def md_options(f):
    opts = [
        click.option("--model", required=True, help="Registered model (see `models list`)."),
        click.option("--T", "temperature", type=float, required=True, help="Temperature (K)."),
        click.option("--time", "time_ps", type=float, default=70.0, show_default=True,
                     help="Length of each trajectory (ps)."),
        click.option("--timestep", "timestep_fs", type=float, default=1.0, show_default=True,
                     help="MD timestep (fs)."),
        click.option("--supercell", type=int, default=1, show_default=True),
        click.option("--a", "lattice", type=float, default=A_EXPERIMENT, show_default=True,
                     help="Lattice parameter of the built-in cell (A)."),
        click.option("--structure", type=click.Path(), default=None,
                     help="Start from this ASE-readable file instead of the built-in cell."),
        click.option("--thermostat", type=click.Choice(["nose-hoover", "langevin"]),
                     default="nose-hoover", show_default=True),
        click.option("--tdamp", "tdamp_fs", type=float, default=100.0, show_default=True,
                     help="Thermostat damping time (fs)."),
        click.option("--template", default="nvt.lmp.j2", show_default=True),
        click.option("--templates", type=click.Path(), default=None,
                     help="Folder of templates to use instead of the project's templates/."),
        click.option("--runs", type=click.Path(), default=None,
                     help="Root of run directories (default: runs/ of the project)."),
        click.option("--tag", default=None, help="Suffix of the ensemble directory name."),
        click.option("--route", default=None,
                     help="Run on this route of the model's card (e.g. python-callback) instead "
                          "of the first one this LAMMPS has."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _settings(kw: dict) -> EnsembleSettings:
    return EnsembleSettings(
        model=kw["model"], temperature_K=kw["temperature"], seeds=kw.get("seeds", 1),
        time_ps=kw["time_ps"], timestep_fs=kw["timestep_fs"], supercell=kw["supercell"],
        lattice_A=kw["lattice"], structure=kw["structure"], thermostat=kw["thermostat"],
        tdamp_fs=kw["tdamp_fs"], template=kw["template"], templates=kw["templates"],
        runs=kw["runs"], tag=kw["tag"], workers=kw.get("workers", 1),
        threads=kw.get("threads", 1), retry_failed=kw.get("retry_failed", False),
        fit_window_ps=kw.get("fit_window"), route=kw.get("route"),
    )


@main.command()
@md_options
@click.option("--seed", type=int, default=1, show_default=True)
def render(seed: int, **kw) -> None:
    """Print the LAMMPS deck one seed would run."""
    from .ensemble import render_for_seed

    s = _settings(kw)
    s.validate()
    card = load_card(s.model, route=s.route)
    prepare_structure(s, card)
    deck = render_for_seed(s, card, ensemble_dir(s) / "structure.data", seed)
    click.echo(deck.text, nl=False)


@main.command()
@md_options
@click.option("--seeds", type=int, default=300, show_default=True,
              help="Number of independent trajectories (seeds 1..N).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Parallel worker processes.")
@click.option("--threads", type=int, default=1, show_default=True,
              help="Threads per worker (OpenMP/torch/DeePMD).")
@click.option("--fit-window", type=(float, float), default=None,
              help="Fit window START END (ps); default 15-65 ps of 70, scaled to --time.")
@click.option("--retry-failed", is_flag=True, help="Rerun seeds recorded as failed.")
@click.option("--max-retries", type=int, default=1, show_default=True,
              help="Times a failed seed is rerun by later commands before it stays failed.")
@click.option("--gpus", default="auto", show_default=True,
              help="auto (nvidia-smi), none, or ids like 0,1: one GPU per worker, round robin.")
@click.option("--workers-per-gpu", type=int, default=1, show_default=True,
              help="At most this many workers share one GPU.")
@click.option("--batch", type=int, default=0, show_default=True,
              help="Seeds per worker advanced in lock step, the model evaluating them in one "
                   "batched call (python-callback models; 0 = off). See lpsc_lmp.batched.")
def ensemble(**kw) -> None:
    """Run N independent NVT trajectories and print the Li diffusion coefficient."""
    from .ensemble import run_ensemble

    s = _settings(kw)
    s.max_retries, s.gpus, s.workers_per_gpu = kw["max_retries"], kw["gpus"], kw["workers_per_gpu"]
    s.batch = kw["batch"]
    try:
        edir = run_ensemble(s, echo=click.echo)
    except KeyboardInterrupt:
        sys.exit(130)
    _print_diffusion(edir, s.window())


def _print_diffusion(edir: Path, window: tuple[float, float]) -> None:
    from .diffusion import fit_ensemble
    from .runread import read_ensemble, scan_seeds

    status, _ = scan_seeds(edir)
    if status.n_done == 0:
        raise click.ClickException(f"no finished seed in {edir} ({status.summary()}); see the "
                                   "seeds' manifest.json for the reasons")
    ens = read_ensemble(edir, load_positions=False)
    c = ens.counts()
    summary = f"seeds: {c['done']} used, {c['failed']} failed" + "".join(
        f", {c[k]} {k}" for k in ("missing", "corrupt", "excluded") if c[k])
    res = fit_ensemble(ens.t_msd, ens.msd_total, window)
    click.echo(summary)
    for w in res.warnings:
        click.echo(f"warning: {w}")
    if res.n_seeds > 1:
        lo, hi = res.ci95_cm2s
        err = f" +- {res.stderr_cm2s:.2e} (1 s.e. over seeds), 95% CI [{lo:.2e}, {hi:.2e}]"
    else:
        err = " (1 seed: no error bar)"
    click.echo(f"D(Li) = {res.D_cm2s:.3e} cm^2/s{err}  [fit {window[0]:.3g}-{window[1]:.3g} ps]")


for _cmd in [*ANALYSIS_COMMANDS, *DATA_COMMANDS, *SWEEP_COMMANDS, *STATUS_COMMANDS]:
    main.add_command(_cmd)
models.add_command(models_add)

if __name__ == "__main__":
    main()
