"""Options shared by the commands that run ensembles (``render``, ``ensemble``, ``sweep``) and
the :class:`~lpsc_lmp.runs.settings.EnsembleSettings` they make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..protocol import PAPER_SEEDS, PAPER_TIME_PS
from ..runs.settings import THERMOSTATS, EnsembleSettings
from ..structure import A_EXPERIMENT
from ..templating import DEFAULT_TEMPLATE


def _apply(options: list[Callable], f: Callable) -> Callable:
    for o in reversed(options):
        f = o(f)
    return f


def physics_options(f: Callable) -> Callable:
    """Options that define the trajectories of an ensemble (and its directory)."""
    return _apply([
        click.option("--time", "time_ps", type=float, default=PAPER_TIME_PS, show_default=True,
                     help="Length of each trajectory (ps). The default is the paper's "
                          "protocol; a CPU runs a 52-atom cell at roughly 1-10 ns/day per "
                          "worker, so try --time 10 first."),
        click.option("--timestep", "timestep_fs", type=float, default=1.0, show_default=True,
                     help="MD timestep (fs)."),
        click.option("--supercell", type=int, default=1, show_default=True,
                     help="n for an n x n x n cell of the 52-atom conventional cell."),
        click.option("--a", "lattice", type=float, default=A_EXPERIMENT, show_default=True,
                     help="Lattice parameter of the built-in cell (A; experiment at room "
                          "temperature)."),
        click.option("--cell", default="experimental", show_default=True,
                     help="experimental (a = 9.859 A, room temperature), model (the model's "
                          "own cell at --T from a short NpT run, cached; directory tagged "
                          "cell-model) or a lattice parameter in A (tagged a<value>)."),
        click.option("--structure", type=click.Path(), default=None,
                     help="Start from this ASE-readable file instead of the built-in cell."),
        click.option("--thermostat", type=click.Choice(THERMOSTATS), default="nose-hoover",
                     show_default=True, help="NVT thermostat of the production run."),
        click.option("--tdamp", "tdamp_fs", type=float, default=100.0, show_default=True,
                     help="Thermostat damping time (fs)."),
        click.option("--template", default=DEFAULT_TEMPLATE, show_default=True,
                     help="Top template of the deck (in the templates folder)."),
        click.option("--templates", type=click.Path(), default=None,
                     help="Folder of templates to use instead of the project's templates/ "
                          "(copy templates/ to start; every file it includes is recorded)."),
        click.option("--runs", type=click.Path(), default=None,
                     help="Root of run directories (default: runs/ of the project)."),
        click.option("--tag", default=None,
                     help="Suffix of the ensemble directory name: runs/<model>/T<T>K-<tag> "
                          "(letters, digits, . _ + -); use it for other settings of a model "
                          "and temperature."),
        click.option("--route", default=None,
                     help="Run on this route of the model's card (e.g. python-callback) "
                          "instead of the first one this LAMMPS has."),
    ], f)


def run_options(f: Callable) -> Callable:
    """Options that say how many seeds to run, and where."""
    return _apply([
        click.option("--seeds", type=int, default=PAPER_SEEDS, show_default=True,
                     help="Number of independent trajectories (seeds 1..N). The default is the "
                          "paper's protocol (300 x 70 ps: days on a CPU)."),
        click.option("--threads", type=int, default=1, show_default=True,
                     help="Threads per worker (OpenMP/torch/DeePMD); 1 is fastest for small "
                          "cells."),
        click.option("--fit-window", type=(float, float), default=None,
                     help="Fit window START END (ps); default 15-65 ps of 70, scaled to --time."),
        click.option("--retry-failed", is_flag=True,
                     help="Rerun every failed seed, whatever its attempt count."),
        click.option("--max-retries", type=int, default=1, show_default=True,
                     help="Times a failed seed is rerun by later commands before it stays "
                          "failed."),
        click.option("--gpus", default="auto", show_default=True,
                     help="auto (nvidia-smi), none, or GPU ids like 0,1: one GPU per worker, "
                          "round robin."),
        click.option("--workers-per-gpu", type=int, default=1, show_default=True,
                     help="At most this many workers share one GPU."),
        click.option("--batch", type=int, default=0, show_default=True,
                     help="Seeds per worker advanced in lock step, the model evaluating them "
                          "in one batched call (python-callback models, local engine; 0 = "
                          "off). Meant for GPUs."),
    ], f)


def settings_from(model: str, temperature: float, kw: dict[str, Any]) -> EnsembleSettings:
    """The settings of one ensemble from the options of ``render``/``ensemble``/``sweep``."""
    return EnsembleSettings(
        model=model, temperature_K=temperature, seeds=kw.get("seeds", 1),
        time_ps=kw["time_ps"], timestep_fs=kw["timestep_fs"], supercell=kw["supercell"],
        lattice_A=kw["lattice"], structure=kw["structure"], cell=kw["cell"],
        thermostat=kw["thermostat"],
        tdamp_fs=kw["tdamp_fs"], template=kw["template"], templates=kw["templates"],
        runs=kw["runs"], tag=kw["tag"], fit_window_ps=kw.get("fit_window"),
        workers=kw.get("workers") or 1, threads=kw.get("threads", 1),
        gpus=kw.get("gpus", "auto"), workers_per_gpu=kw.get("workers_per_gpu", 1),
        max_retries=kw.get("max_retries", 1), retry_failed=kw.get("retry_failed", False),
        route=kw.get("route"), batch=kw.get("batch", 0))
