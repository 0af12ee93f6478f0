"""``lpsc-lmp render`` and ``lpsc-lmp ensemble``: one model at one temperature."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import physics_options, run_options, settings_from

model_option = click.option("--model", required=True,
                            help="Registered model (see `lpsc-lmp models list`).")
temperature_option = click.option("--T", "temperature", type=float, required=True,
                                  help="Temperature (K).")


@click.command()
@model_option
@temperature_option
@physics_options
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed number (the velocity seed of that trajectory).")
def render(seed: int, **kw) -> None:
    """Print the LAMMPS deck one seed would run.

    The deck is rendered from the templates at every run: to change what runs, edit the
    template files named in the first lines (or a copy passed with --templates), not this
    printout.

    Example: lpsc-lmp render --model dp-7net --T 700 --seed 3
    """
    from ..models.registry import load_card
    from ..runs.ensemble import ensemble_dir, prepare_structure, render_for_seed

    s = settings_from(kw["model"], kw["temperature"], kw)
    s.validate()
    card = load_card(s.model, route=s.route)
    prepare_structure(s, card)
    deck = render_for_seed(s, card, ensemble_dir(s) / "structure.data", seed)
    click.echo(f"# rendered from {', '.join(deck.sources)} in {deck.template_dir}; edit those "
               "templates (or a copy passed with --templates), not this printout")
    click.echo(deck.text, nl=False)


@click.command()
@model_option
@temperature_option
@physics_options
@run_options
@click.option("--workers", type=int, default=1, show_default=True,
              help="Parallel worker processes (one per core is a good start).")
@click.option("--estimator", type=click.Choice(["paper", "multi-origin"]), default="paper",
              show_default=True,
              help="How the D printed at the end is estimated (see `lpsc-lmp analyze`).")
def ensemble(estimator: str, **kw) -> None:
    """Run N independent NVT trajectories and print the Li diffusion coefficient.

    Finished seeds are kept: rerunning the same command resumes where it stopped, and a
    larger --seeds extends the ensemble.

    Example: lpsc-lmp ensemble --model dp-7net --T 1200 --seeds 10 --time 6 --workers 2
    --estimator multi-origin
    """
    from ..runs.sweep import run_ensemble

    s = settings_from(kw["model"], kw["temperature"], kw)
    try:
        edir = run_ensemble(s, echo=click.echo)
    except KeyboardInterrupt:
        sys.exit(130)
    print_diffusion(edir, s.window(), estimator)


def print_diffusion(edir: Path, window: tuple[float, float], estimator: str = "paper") -> None:
    """The ensemble's D with its error bar, as ``ensemble`` prints it at the end."""
    from ..analysis.ensemble_data import read_ensemble
    from ..analysis.estimators import estimate
    from ..errors import AnalysisError
    from ..rundir import scan_seeds

    status, _ = scan_seeds(edir)
    if status.n_done == 0:
        raise AnalysisError(f"no finished seed in {edir} ({status.summary()}); see the seeds' "
                            "manifest.json for the reasons")
    ens = read_ensemble(edir, load_positions=estimator != "paper")
    c = ens.counts()
    summary = f"seeds: {c['done']} used, {c['failed']} failed" + "".join(
        f", {c[k]} {k}" for k in ("missing", "corrupt", "excluded") if c[k])
    res = estimate(ens, estimator, paper_window=window).result
    window = res.window_ps
    click.echo(summary)
    pressure = ens.pressure_GPa()
    if pressure is not None:
        from ..analysis.analyze import PRESSURE_WARN_GPA

        off = abs(pressure[0]) > PRESSURE_WARN_GPA
        click.echo(f"mean pressure {pressure[0]:+.2f} +- {pressure[1]:.2f} GPa (second half of "
                   "each seed)" + ("; the cell is not at the model's volume (see --cell)"
                                   if off else ""))
    for w in res.warnings:
        click.echo(f"warning: {w}")
    if res.n_seeds > 1:
        lo, hi = res.ci95_cm2s
        err = f" +- {res.stderr_cm2s:.2e} (1 s.e. over seeds), 95% CI [{lo:.2e}, {hi:.2e}]"
    else:
        err = " (1 seed: no error bar)"
    axis = "lags" if estimator == "multi-origin" else "fit"
    click.echo(f"D(Li) = {res.D_cm2s:.3e} cm^2/s{err}  [{estimator} estimator, {axis} "
               f"{window[0]:.3g}-{window[1]:.3g} ps]")
