"""``lpsc-lmp analyze | arrhenius | compare | report``: D, Arrhenius fits and comparisons.

Units printed: D in cm^2/s, Ea in eV, sigma in mS/cm, T in K, time in ps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..analysis.report import fmt
from ..errors import AnalysisError
from ..paths import potentials_dir, runs_dir

runs_option = click.option(
    "--runs", "runs", default=lambda: str(runs_dir()), show_default="runs/ of the project",
    type=click.Path(path_type=Path), help="Root of the run directories.")
potentials_option = click.option(
    "--potentials", default=lambda: str(potentials_dir()),
    show_default="potentials/ of the project", type=click.Path(path_type=Path),
    help="Directory with <model>/card.yaml.")
n_boot_option = click.option("--n-boot", default=1000, show_default=True,
                             help="Bootstrap resamples over seeds.")
tag_option = click.option("--tag", default=None,
                          help="Only ensembles T<T>K-<tag> (default: untagged).")
estimator_option = click.option(
    "--estimator", type=click.Choice(["paper", "multi-origin"]), default="paper",
    show_default=True,
    help="paper: seed-mean MSD from t = 0 (the paper's); multi-origin: every time origin of "
         "each seed (same errors from the seeds, several times less scatter).")


def print_summary(s: dict[str, Any]) -> None:
    """What ``analyze`` prints about one ensemble."""
    d = s["diffusion"]
    c = s["seeds"]
    click.echo(f"{s['ensemble']}: model {s['model']}, T = {s['temperature_K']:g} K, "
               f"estimator {s['estimator']}")
    click.echo(f"  seeds: {c['done']} done, {c['failed']} failed, {c['missing']} missing, "
               f"{c['corrupt']} corrupt, {c['excluded']} excluded")
    click.echo(f"  D = {fmt(d['D_cm2s'])} +- {fmt(d['stderr_cm2s'])} cm^2/s (1 sigma, seeds), "
               f"95% CI [{fmt(d['ci95_cm2s'][0])}, {fmt(d['ci95_cm2s'][1])}]; "
               f"window {d['window_ps'][0]:.3g}-{d['window_ps'][1]:.3g} ps")
    click.echo(f"  window: alpha = {fmt(d['alpha_window'], '.3f')}, "
               f"relative error {fmt(100 * d['rel_stderr'], '.2f')} %")
    if "pressure_GPa" in s:
        pr = s["pressure_GPa"]
        click.echo(f"  mean pressure {pr['mean']:+.2f} +- {fmt(pr['stderr'], '.2f')} GPa "
                   "(second half of each seed)")
    if "conductivity_NE_HR1_mScm" in s:
        sg = s["conductivity_NE_HR1_mScm"]
        click.echo(f"  sigma (Nernst-Einstein, H_R = 1) = {fmt(sg['value'], '.4g')} mS/cm")
    if "convergence" in s:
        cv = s["convergence"]
        click.echo(f"  convergence: per-seed CV {fmt(cv['cv'], '.3f')}, delta_N ~ "
                   f"{fmt(cv['amplitude_fit'], '.3f')}/sqrt(N)")
    for name, e in s.get("estimators", {}).items():
        if name != s["estimator"] and "D_cm2s" in e:
            click.echo(f"  {name} estimator: D = {fmt(e['D_cm2s'])} +- {fmt(e['stderr_cm2s'])} "
                       "cm^2/s")
    for a in s.get("advice", {}).values():
        if "n_seeds" in a:
            click.echo(f"  advice: {advice_line(a)}")
    p = s.get("positions") or {}
    if "haven_ratio" in p:
        h = p["haven_ratio"]
        click.echo(f"  Haven ratio (multi-origin) = {fmt(h['value'], '.3f')} "
                   f"[{fmt(h['ci95'][0], '.3f')}, {fmt(h['ci95'][1], '.3f')}]")
    for w in d["warnings"]:
        click.echo(f"  WARNING: {w}")


def advice_line(a: dict[str, Any]) -> str:
    """One line of protocol advice (:class:`lpsc_lmp.analysis.advisor.Advice`)."""
    ratio = a["paper_total_ns"] / a["total_ns"] if a["total_ns"] else float("nan")
    return (f"{a['target']:.0%} (1 sigma) with the {a['estimator']} estimator: "
            f"{a['n_seeds']} seeds x {a['time_ps']:.0f} ps = {a['total_ns']:.1f} ns of MD "
            f"({ratio:.1f}x less than the paper's 300 x 70 ps)"
            + (f"; {a['note']}" if a.get("note") else ""))


@click.command("analyze")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--window", nargs=2, type=float, default=None,
              help="Fit window START END in ps (default: ensemble.json, else 15/70-65/70 of t).")
@n_boot_option
@click.option("--no-positions", is_flag=True, help="Skip the position-based analyses.")
@click.option("--no-figures", is_flag=True, help="Do not write figures.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the analysis files (default: RUN/analysis; use it for runs you "
                   "cannot write to).")
@estimator_option
@click.option("--target", type=float, default=0.01, show_default=True,
              help="Relative precision (1 sigma) the protocol advice aims at.")
def analyze(run: Path, window: tuple[float, float] | None, n_boot: int, no_positions: bool,
            no_figures: bool, out_dir: Path | None, estimator: str, target: float) -> None:
    """Diffusion coefficient of one ensemble RUN (runs/<model>/T<T>K), with errors.

    Example: lpsc-lmp analyze runs/dp-7net/T1000K
    """
    from ..analysis.analyze import analyze_ensemble

    if not run.is_dir():
        raise AnalysisError(f"{run} is not a directory; pass runs/<model>/T<T>K")
    out = out_dir or run / "analysis"
    s = analyze_ensemble(run, window or None, n_boot, not no_positions, not no_figures, out,
                         estimator, target)
    print_summary(s)
    click.echo(f"  wrote {out}/analysis.json, analysis.csv, msd_mean.csv"
               + ("" if no_figures else ", figures"))


@click.command("arrhenius")
@click.option("--model", required=True, help="Model name (directory under --runs).")
@runs_option
@tag_option
@click.option("--at", "T_eval", default=300.0, show_default=True, help="Temperature (K) to "
              "extrapolate D and sigma to.")
@click.option("--haven", default=1.0, show_default=True, help="Haven ratio for sigma.")
@n_boot_option
@estimator_option
def arrhenius(model: str, runs: Path, tag: str | None, T_eval: float, haven: float,
              n_boot: int, estimator: str) -> None:
    """Arrhenius fit of D(T) for one model: Ea, D and sigma at --at K.

    Example: lpsc-lmp arrhenius --model dp-7net --at 300
    """
    from ..analysis.collect import (
        arrhenius_summary,
        left_out_of_fit,
        model_arrhenius,
        write_arrhenius,
    )

    rows, fit = model_arrhenius(runs, model, tag, n_boot, estimator)
    click.echo(f"{model} ({estimator} estimator): {'T (K)':>8} {'D (cm^2/s)':>12} "
               f"{'stderr':>10} {'seeds':>6}")
    for T, r, _ in rows:
        click.echo(f"{'':{len(model) + len(estimator) + 13}} {T:8.1f} {fmt(r.D_cm2s):>12} "
                   f"{fmt(r.stderr_cm2s, '.2e'):>10} {r.n_seeds:6d}")
    for T, why in left_out_of_fit(rows).items():
        click.echo(f"  left out of the fit: T = {T:g} K ({why})")
    if fit is None:
        raise AnalysisError(f"{model}: need >= 2 temperatures with D > 0 and an error (>= 2 "
                            "seeds); run more T")
    out = dict(arrhenius_summary(model, fit, rows, T_eval, haven), estimator=estimator)
    click.echo(f"  Ea = {fit.Ea_eV:.4f} +- {fmt(fit.Ea_err_eV, '.4f')} eV, "
               f"chi2_red = {fmt(fit.chi2_red, '.2f')} (dof {fit.dof})")
    dd = out["D_at"]
    click.echo(f"  D({T_eval:g} K) = {fmt(dd['value'])} cm^2/s, 95% "
               f"[{fmt(dd['ci95'][0])}, {fmt(dd['ci95'][1])}]")
    if "sigma_at_mScm" in out:
        sg = out["sigma_at_mScm"]
        click.echo(f"  sigma({T_eval:g} K) = {fmt(sg['value'], '.4g')} mS/cm, 95% "
                   f"[{fmt(sg['ci95'][0], '.4g')}, {fmt(sg['ci95'][1], '.4g')}] "
                   f"(H_R = {haven:g})")
    for w in fit.warnings:
        click.echo(f"  WARNING: {w}")
    write_arrhenius(runs, model, fit, out)


@click.command("compare")
@runs_option
@potentials_option
@click.option("--T", "T", default=700.0, show_default=True, help="Temperature, K.")
@tag_option
@n_boot_option
@estimator_option
def compare(runs: Path, potentials: Path, T: float, tag: str | None, n_boot: int,
            estimator: str) -> None:
    """Delta_XC per architecture and Delta_NN per functional at one temperature.

    Example: lpsc-lmp compare --T 700
    """
    from ..analysis.collect import compare_at, write_comparison

    values, xc, nn, committees = compare_at(runs, potentials, T, tag, n_boot, estimator)
    click.echo(f"T = {T:g} K ({estimator} estimator)")
    for m, (d, s) in sorted(values.items()):
        click.echo(f"  {m:24s} D = {fmt(d)} +- {fmt(s, '.2e')} cm^2/s")
    for name, res in [*((f"Delta_XC[{k}]", v) for k, v in xc.items()),
                      *((f"Delta_NN[{k}]", v) for k, v in nn.items()),
                      *((f"committee[{k}]", v) for k, v in committees.items())]:
        click.echo(f"  {name:24s} {100 * res.value:6.1f} % +- {100 * res.err_mc:.1f} % "
                   f"(95% [{100 * res.ci95[0]:.1f}, {100 * res.ci95[1]:.1f}] %)  {res.label}")
    if not xc and not nn:
        click.echo("  nothing to compare: need two functionals of one architecture (e.g. PBE "
                   "and r2SCAN or HSE) or >= 2 architectures per functional")
    write_comparison(runs, T, values, xc, nn, committees, estimator)


@click.command("report")
@runs_option
@potentials_option
@click.option("--out", "out", default="report.md", show_default=True,
              type=click.Path(path_type=Path), help="Markdown file to write.")
@click.option("--at", "T_eval", default=300.0, show_default=True,
              help="Temperature (K) to extrapolate D and sigma to.")
@n_boot_option
@estimator_option
def report(runs: Path, potentials: Path, out: Path, T_eval: float, n_boot: int,
           estimator: str) -> None:
    """One Markdown page: D per model and T, Arrhenius fits, Delta_XC/Delta_NN, figures.

    Example: lpsc-lmp report --out report.md
    """
    from ..analysis.report import write_report

    path = write_report(runs, potentials, out, T_eval, n_boot, estimator)
    fig_dir = out.parent / (out.stem + "_figures")
    click.echo(f"wrote {path}" + (f" and {fig_dir}/" if fig_dir.exists() else ""))
