"""``lpsc-lmp validate`` and ``lpsc-lmp study``: a model against its teacher; a whole study."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..analysis.report import fmt


@click.command("validate")
@click.option("--model", required=True, help="Registered model (the student).")
@click.option("--teacher", default=None,
              help="Registered teacher (default: the universal potential that labelled the "
                   "model's training data, e.g. 7net-mf-0-pbe).")
@click.option("--T", "temperature", type=float, default=1200.0, show_default=True,
              help="Temperature (K); high, so that a few ps hold enough hops.")
@click.option("--seeds", type=int, default=2, show_default=True,
              help="Seeds of each (the same seeds: same initial velocities).")
@click.option("--time", "time_ps", type=float, default=4.0, show_default=True,
              help="Length of each trajectory (ps). A teacher runs about 2 steps/s.")
@click.option("--workers", type=int, default=2, show_default=True,
              help="Parallel worker processes.")
@click.option("--runs", type=click.Path(), default=None,
              help="Root of run directories (default: runs/ of the project).")
@click.option("--estimator", type=click.Choice(["paper", "multi-origin"]),
              default="multi-origin", show_default=True,
              help="Estimator of D (multi-origin: far less scatter from few seeds).")
def validate(model: str, teacher: str | None, temperature: float, seeds: int, time_ps: float,
             workers: int, runs: str | None, estimator: str) -> None:
    """Compare a model with the universal potential that taught it: the same seeds in LAMMPS
    with each, their MSD curves and D with errors.

    Example: lpsc-lmp validate --model dp-pbe-mf --T 1200 --seeds 2 --time 4
    """
    from ..study.validate import validate as run_validate

    try:
        out = run_validate(model, teacher, temperature, seeds, time_ps, workers, runs,
                           estimator, echo=click.echo)
    except KeyboardInterrupt:
        sys.exit(130)
    for who in ("student", "teacher"):
        r = out[who]
        click.echo(f"{who:8s} {r['name']:20s} D = {fmt(r['D_cm2s'])} +- "
                   f"{fmt(r['stderr_cm2s'], '.2e')} cm^2/s ({r['n_seeds']} seeds, "
                   f"{estimator})")
    click.echo(f"D(student) / D(teacher) = {out['ratio']:.2f} +- {out['ratio_err']:.2f}; "
               f"paired per seed {out['paired_ratio']:.2f} +- "
               f"{fmt(out['paired_ratio_err'], '.2f')}")
    click.echo(f"wrote {Path(runs or 'runs') / model}/validate_T{temperature:g}K.json, .png")


@click.command("barriers")
@click.argument("models", nargs=-1, required=True)
@click.option("--workers", type=int, default=1, show_default=True,
              help="Models computed at once (one core each).")
@click.option("--runs", type=click.Path(), default=None,
              help="Root of run directories (default: runs/ of the project).")
def barriers(models: tuple[str, ...], workers: int, runs: str | None) -> None:
    """NEB barriers (eV) of the Li jumps of Li6PS5Cl (doublet, intra-cage, inter-cage; ordered
    cell at the experimental lattice) for registered models, written to each model's card.
    A universal potential takes tens of minutes on one core; a card that already holds the
    barriers of the same model file and protocol is reused.

    Example: lpsc-lmp barriers 7net-mf-0-pbe chgnet --workers 2
    """
    from ..paths import runs_dir
    from ..study.barriers import JUMPS, describe_jump
    from ..study.run import all_barriers

    try:
        out = all_barriers(list(models), Path(runs or runs_dir()), workers, echo=click.echo)
    except KeyboardInterrupt:
        sys.exit(130)
    click.echo(f"{'model':20s} " + " ".join(f"{j + ' (eV)':>18s}" for j in JUMPS))
    for m, b in out.items():
        cells = [describe_jump(b["jumps"].get(j, {}), detail=False) for j in JUMPS]
        click.echo(f"{m:20s} " + " ".join(f"{c:>18s}" for c in cells))
    if any(not r.get("converged", True) for b in out.values() for r in b["jumps"].values()):
        click.echo("* the band did not converge: that number is not a barrier")


@click.command("study")
@click.argument("study_file", type=click.Path(path_type=Path))
@click.option("--report-only", is_flag=True,
              help="Rewrite the report from what has run, without running anything.")
def study(study_file: Path, report_only: bool) -> None:
    """Run a whole study from one file (ensembles of every model and temperature, the teacher
    checks, barriers) and write its report: D per model and T, Arrhenius fits, Delta_XC and
    Delta_NN, the uncertainty budget. Resumable: rerun the same command.

    Example: lpsc-lmp study studies/default.yaml
    """
    from ..study.report import write_study_report
    from ..study.run import run_study, study_results, study_settings
    from ..study.spec import load_spec

    spec = load_spec(study_file)
    try:
        if report_only:
            write_study_report(spec, study_settings(spec), study_results(spec),
                               echo=click.echo)
        else:
            run_study(spec, echo=click.echo)
    except KeyboardInterrupt:
        sys.exit(130)
