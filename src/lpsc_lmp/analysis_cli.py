"""Click commands of the analysis: ``analyze``, ``arrhenius``, ``compare``, ``report``.

Register them with ``for c in COMMANDS: group.add_command(c)``. Units printed: D in cm^2/s,
Ea in eV, sigma in mS/cm, T in K, time in ps.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
import numpy as np

from . import msd as msdmod
from .arrhenius import ArrheniusFit, fit_arrhenius
from .compare import DeltaResult, delta_nn, delta_xc, load_cards
from .conductivity import haven_ratio_from_seeds, nernst_einstein_mScm
from .convergence import convergence_analysis, seeds_needed
from .diffusion import DiffusionResult, default_window, fit_ensemble
from .paths import potentials_dir, runs_dir
from .runread import EnsembleData, find_ensembles, read_ensemble

__all__ = ["COMMANDS", "analyze", "analyze_ensemble", "arrhenius", "compare", "report"]


def _friendly(func: Callable) -> Callable:
    """Turn expected errors into one-line ``click.ClickException``s."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise click.ClickException(msg) from exc

    return wrapper


def _fmt(x: float, spec: str = ".3e") -> str:
    return "nan" if x is None or not math.isfinite(x) else format(x, spec)


def _window_for(data: EnsembleData, window: tuple[float, float] | None) -> tuple[float, float]:
    """Explicit window, else ``fit_window_ps`` of ensemble.json, else the paper's scaled one."""
    if window:
        return (float(window[0]), float(window[1]))
    w = data.meta.get("fit_window_ps")
    if w:
        return (float(w[0]), float(w[1]))
    time_ps = float(data.meta.get("time_ps", data.t_msd[-1]))
    return default_window(time_ps)


def _fit(
    path: Path, n_boot: int, window: tuple[float, float] | None, load_positions: bool
) -> tuple[EnsembleData, DiffusionResult]:
    data = read_ensemble(path, load_positions=load_positions)
    res = fit_ensemble(data.t_msd, data.msd_total, _window_for(data, window), n_boot=n_boot)
    return data, res


def _position_analysis(
    data: EnsembleData, window: tuple[float, float], n_boot: int
) -> dict[str, Any] | None:
    """Tracer D from drift-corrected positions (single and multi-origin) and collective D."""
    if data.li_unwrapped is None or data.t_pos is None:
        return None
    tp = data.t_pos
    if tp[-1] < window[1] - 1e-9:
        return {"skipped": f"positions end at {tp[-1]:g} ps, before the window end"}
    single, multi, coll = [], [], []
    for k in range(data.n_done):
        pos = np.asarray(data.li_unwrapped[k], dtype=np.float64)
        if data.framework_com is not None:
            pos = msdmod.remove_drift(pos, data.framework_com[k])
        single.append(msdmod.single_origin_msd(pos))
        multi.append(msdmod.multi_origin_msd(pos))
        coll.append(msdmod.collective_msd_multi_origin(pos))
    out: dict[str, Any] = {}
    try:
        r_single = fit_ensemble(tp, np.array(single), window, n_boot=n_boot)
        r_multi = fit_ensemble(tp, np.array(multi), window, n_boot=n_boot)
        r_coll = fit_ensemble(tp, np.array(coll), window, n_boot=n_boot)
    except ValueError as exc:
        return {"skipped": str(exc)}
    out["tracer_single_origin"] = r_single.to_dict()
    out["tracer_multi_origin"] = r_multi.to_dict()
    out["collective_multi_origin"] = r_coll.to_dict()
    if data.n_done >= 2 and r_coll.D_cm2s > 0:
        h, ci = haven_ratio_from_seeds(r_multi.per_seed_D_cm2s, r_coll.per_seed_D_cm2s,
                                       n_boot=n_boot)
        out["haven_ratio"] = {"value": h, "ci95": list(ci)}
    out["_results"] = (r_single, r_multi, r_coll)
    return out


def analyze_ensemble(
    run: Path,
    window: tuple[float, float] | None = None,
    n_boot: int = 1000,
    positions: bool = True,
    figures: bool = True,
) -> dict[str, Any]:
    """Full analysis of one ensemble; writes ``RUN/analysis/`` and returns the JSON dictionary."""
    data, res = _fit(run, n_boot, window, positions)
    meta = data.meta
    T = float(meta["temperature_K"])
    out_dir = run / "analysis"
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "ensemble": str(run),
        "model": meta.get("model"),
        "temperature_K": T,
        "seeds": data.counts(),
        "seeds_failed": {str(k): v for k, v in data.status.failed.items()},
        "seeds_missing": list(data.status.missing),
        "seeds_corrupt": {str(k): v for k, v in data.status.corrupt.items()},
        "seeds_excluded": {str(k): v for k, v in data.excluded.items()},
        "diffusion": res.to_dict(),
    }
    n_li, vol = meta.get("n_li"), meta.get("volume_A3")
    if n_li and vol:
        s = nernst_einstein_mScm(res.D_cm2s, int(n_li), float(vol), T)
        lo, hi = (nernst_einstein_mScm(x, int(n_li), float(vol), T) for x in res.ci95_cm2s)
        summary["conductivity_NE_HR1_mScm"] = {"value": s, "ci95": [lo, hi]}
    conv = None
    if data.n_done >= 2:
        conv = convergence_analysis(res.per_seed_D_cm2s, n_boot=200)
        summary["convergence"] = conv.to_dict()
        time_ps = float(meta.get("time_ps", data.t_msd[-1]))
        summary["seeds_needed"] = {
            f"{p:g}": seeds_needed(p, res.per_seed_D_cm2s, time_ps).__dict__ for p in (0.05, 0.01)
        }
    pos_out = _position_analysis(data, res.window_ps, n_boot) if positions else None
    if pos_out is not None:
        pos_out.pop("_results", None)
        summary["positions"] = pos_out
    (out_dir / "analysis.json").write_text(json.dumps(summary, indent=2, default=float))
    with open(out_dir / "analysis.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["seed", "D_cm2s"])
        for seed, d in zip(data.seeds, res.per_seed_D_cm2s, strict=True):
            w.writerow([int(seed), f"{d:.6e}"])
    mean = data.msd_total.mean(axis=0)
    sem = (data.msd_total.std(axis=0, ddof=1) / np.sqrt(data.n_done) if data.n_done > 1
           else np.full_like(mean, np.nan))
    np.savetxt(out_dir / "msd_mean.csv", np.column_stack([data.t_msd, mean, sem]),
               delimiter=",", header="t_ps,msd_mean_A2,msd_sem_A2", comments="")
    if figures:
        from . import plots

        title = f"{meta.get('model', '?')} {T:g} K"
        plots.plot_msd_fan(data.t_msd, data.msd_total, res, out_dir / "msd_fan", title)
        if conv is not None:
            plots.plot_convergence(conv, out_dir / "convergence", title)
    return summary


def _print_summary(s: dict[str, Any]) -> None:
    d = s["diffusion"]
    c = s["seeds"]
    click.echo(f"{s['ensemble']}: model {s['model']}, T = {s['temperature_K']:g} K")
    click.echo(f"  seeds: {c['done']} done, {c['failed']} failed, {c['missing']} missing, "
               f"{c['corrupt']} corrupt, {c['excluded']} excluded")
    click.echo(f"  D = {_fmt(d['D_cm2s'])} +- {_fmt(d['stderr_cm2s'])} cm^2/s (1 sigma, seeds), "
               f"95% CI [{_fmt(d['ci95_cm2s'][0])}, {_fmt(d['ci95_cm2s'][1])}]; "
               f"window {d['window_ps'][0]:.3g}-{d['window_ps'][1]:.3g} ps")
    click.echo(f"  window: alpha = {_fmt(d['alpha_window'], '.3f')}, "
               f"relative error {_fmt(100 * d['rel_stderr'], '.2f')} %")
    if "conductivity_NE_HR1_mScm" in s:
        sg = s["conductivity_NE_HR1_mScm"]
        click.echo(f"  sigma (Nernst-Einstein, H_R = 1) = {_fmt(sg['value'], '.4g')} mS/cm")
    if "convergence" in s:
        cv = s["convergence"]
        need = s["seeds_needed"]["0.01"]
        click.echo(f"  convergence: per-seed CV {_fmt(cv['cv'], '.3f')}, delta_N ~ "
                   f"{_fmt(cv['amplitude_fit'], '.3f')}/sqrt(N); 1 % (1 sigma) needs "
                   f"{need['n_seeds']} seeds ({need['total_ns']:.1f} ns)")
    p = s.get("positions") or {}
    if "haven_ratio" in p:
        h = p["haven_ratio"]
        click.echo(f"  Haven ratio (multi-origin) = {_fmt(h['value'], '.3f')} "
                   f"[{_fmt(h['ci95'][0], '.3f')}, {_fmt(h['ci95'][1], '.3f')}]")
    for w in d["warnings"]:
        click.echo(f"  WARNING: {w}")


@click.command("analyze")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--window", nargs=2, type=float, default=None,
              help="Fit window START END in ps (default: ensemble.json, else 15/70-65/70 of t).")
@click.option("--n-boot", default=1000, show_default=True, help="Bootstrap resamples over seeds.")
@click.option("--no-positions", is_flag=True, help="Skip the position-based analyses.")
@click.option("--no-figures", is_flag=True, help="Do not write figures.")
@_friendly
def analyze(run: Path, window: tuple[float, float] | None, n_boot: int, no_positions: bool,
            no_figures: bool) -> None:
    """Diffusion coefficient of one ensemble RUN (runs/<model>/T<T>K), with errors."""
    if not run.is_dir():
        raise click.ClickException(f"{run} is not a directory; pass runs/<model>/T<T>K")
    s = analyze_ensemble(run, window or None, n_boot, not no_positions, not no_figures)
    _print_summary(s)
    click.echo(f"  wrote {run / 'analysis'}/analysis.json, analysis.csv, msd_mean.csv"
               + ("" if no_figures else ", figures"))


def left_out_of_fit(rows: list[tuple[float, DiffusionResult, EnsembleData]]) -> dict[float, str]:
    """Temperatures an Arrhenius fit cannot use, with the reason (never dropped silently)."""
    out = {}
    for T, r, _ in rows:
        if not r.D_cm2s > 0:
            out[T] = f"D = {r.D_cm2s:.3g} cm^2/s is not positive"
        elif not math.isfinite(r.stderr_cm2s):
            out[T] = f"no error bar ({r.n_seeds} seed); run >= 2 seeds"
    return out


def _model_fit(
    runs: Path, model: str, tag: str | None, n_boot: int
) -> tuple[list[tuple[float, DiffusionResult, EnsembleData]], ArrheniusFit | None]:
    ens = find_ensembles(runs, model, tag)
    if not ens:
        raise ValueError(f"no ensembles under {runs / model}/T*K; check --runs and --model")
    rows = []
    for T, path in ens:
        data, res = _fit(path, n_boot, None, load_positions=False)
        rows.append((T, res, data))
    left_out = left_out_of_fit(rows)
    usable = [(T, r) for T, r, _ in rows if T not in left_out]
    fit = None
    if len(usable) >= 2:
        fit = fit_arrhenius([u[0] for u in usable], [u[1].D_cm2s for u in usable],
                            [u[1].stderr_cm2s for u in usable])
    return rows, fit


@click.command("arrhenius")
@click.option("--model", required=True, help="Model name (directory under --runs).")
@click.option("--runs", "runs", default=lambda: str(runs_dir()),
              show_default="runs/ of the project", type=click.Path(path_type=Path))
@click.option("--tag", default=None, help="Only ensembles T<T>K-<tag> (default: untagged).")
@click.option("--at", "T_eval", default=300.0, show_default=True, help="Temperature (K) to "
              "extrapolate D and sigma to.")
@click.option("--haven", default=1.0, show_default=True, help="Haven ratio for sigma.")
@click.option("--n-boot", default=1000, show_default=True)
@_friendly
def arrhenius(model: str, runs: Path, tag: str | None, T_eval: float, haven: float,
              n_boot: int) -> None:
    """Arrhenius fit of D(T) for one model: Ea, D and sigma at --at K."""
    rows, fit = _model_fit(runs, model, tag, n_boot)
    click.echo(f"{model}: {'T (K)':>8} {'D (cm^2/s)':>12} {'stderr':>10} {'seeds':>6}")
    for T, r, _ in rows:
        click.echo(f"{'':{len(model) + 1}} {T:8.1f} {_fmt(r.D_cm2s):>12} "
                   f"{_fmt(r.stderr_cm2s, '.2e'):>10} {r.n_seeds:6d}")
    for T, why in left_out_of_fit(rows).items():
        click.echo(f"  left out of the fit: T = {T:g} K ({why})")
    if fit is None:
        raise click.ClickException(
            f"{model}: need >= 2 temperatures with D > 0 and an error (>= 2 seeds); run more T")
    out = _arrhenius_summary(model, fit, rows, T_eval, haven)
    click.echo(f"  Ea = {fit.Ea_eV:.4f} +- {_fmt(fit.Ea_err_eV, '.4f')} eV, "
               f"chi2_red = {_fmt(fit.chi2_red, '.2f')} (dof {fit.dof})")
    dd = out["D_at"]
    click.echo(f"  D({T_eval:g} K) = {_fmt(dd['value'])} cm^2/s, 95% "
               f"[{_fmt(dd['ci95'][0])}, {_fmt(dd['ci95'][1])}]")
    if "sigma_at_mScm" in out:
        sg = out["sigma_at_mScm"]
        click.echo(f"  sigma({T_eval:g} K) = {_fmt(sg['value'], '.4g')} mS/cm, 95% "
                   f"[{_fmt(sg['ci95'][0], '.4g')}, {_fmt(sg['ci95'][1], '.4g')}] "
                   f"(H_R = {haven:g})")
    for w in fit.warnings:
        click.echo(f"  WARNING: {w}")
    (runs / model).mkdir(parents=True, exist_ok=True)
    (runs / model / "arrhenius.json").write_text(json.dumps(out, indent=2, default=float))
    from . import plots

    plots.plot_arrhenius({model: fit}, runs / model / "arrhenius", model)


def _arrhenius_summary(model: str, fit: ArrheniusFit, rows: list, T_eval: float,
                       haven: float) -> dict[str, Any]:
    d, lo, hi = (float(v) for v in fit.predict(T_eval))
    out: dict[str, Any] = {"model": model, "fit": fit.to_dict(), "T_eval_K": T_eval,
                           "D_at": {"value": d, "ci95": [lo, hi]}}
    meta = rows[0][2].meta
    if meta.get("n_li") and meta.get("volume_A3"):
        n_li, vol = int(meta["n_li"]), float(meta["volume_A3"])
        s = [nernst_einstein_mScm(x, n_li, vol, T_eval, haven_ratio=haven) for x in (d, lo, hi)]
        out["sigma_at_mScm"] = {"value": s[0], "ci95": [s[1], s[2]], "haven_ratio": haven,
                                "n_li": n_li, "volume_A3": vol}
    return out


def _models_at(runs: Path, T: float, tag: str | None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if not runs.is_dir():
        raise ValueError(f"{runs} is not a directory; pass --runs")
    for mdir in sorted(p for p in runs.iterdir() if p.is_dir()):
        for t, path in find_ensembles(runs, mdir.name, tag):
            if abs(t - T) < 1e-6:
                out[mdir.name] = path
    return out


def _compare_at(runs: Path, potentials: Path, T: float, tag: str | None, n_boot: int
                ) -> tuple[dict[str, tuple[float, float]], dict[str, DeltaResult],
                           dict[str, DeltaResult]]:
    models = _models_at(runs, T, tag)
    if not models:
        raise ValueError(f"no ensembles at T = {T:g} K under {runs}; check --runs and --T")
    values = {}
    for m, path in models.items():
        _, r = _fit(path, n_boot, None, load_positions=False)
        values[m] = (r.D_cm2s, r.stderr_cm2s)
    cards = load_cards(potentials, list(values))
    return values, delta_xc(values, cards), delta_nn(values, cards)


@click.command("compare")
@click.option("--runs", "runs", default=lambda: str(runs_dir()),
              show_default="runs/ of the project", type=click.Path(path_type=Path))
@click.option("--potentials", default=lambda: str(potentials_dir()),
              show_default="potentials/ of the project",
              type=click.Path(path_type=Path), help="Directory with <model>/card.yaml.")
@click.option("--T", "T", default=700.0, show_default=True, help="Temperature, K.")
@click.option("--tag", default=None, help="Only ensembles T<T>K-<tag> (default: untagged).")
@click.option("--n-boot", default=1000, show_default=True)
@_friendly
def compare(runs: Path, potentials: Path, T: float, tag: str | None, n_boot: int) -> None:
    """Delta_XC per architecture and Delta_NN per functional at one temperature."""
    values, xc, nn = _compare_at(runs, potentials, T, tag, n_boot)
    click.echo(f"T = {T:g} K")
    for m, (d, s) in sorted(values.items()):
        click.echo(f"  {m:24s} D = {_fmt(d)} +- {_fmt(s, '.2e')} cm^2/s")
    for name, res in [*((f"Delta_XC[{k}]", v) for k, v in xc.items()),
                      *((f"Delta_NN[{k}]", v) for k, v in nn.items())]:
        click.echo(f"  {name:24s} {100 * res.value:6.1f} % +- {100 * res.err_mc:.1f} % "
                   f"(95% [{100 * res.ci95[0]:.1f}, {100 * res.ci95[1]:.1f}] %)")
    if not xc and not nn:
        click.echo("  nothing to compare: need a PBE/HSE pair or >= 2 architectures per functional")
    out = {"T_K": T, "D": {m: list(v) for m, v in values.items()},
           "delta_xc": {k: v.to_dict() for k, v in xc.items()},
           "delta_nn": {k: v.to_dict() for k, v in nn.items()},
           "normalisation": "Delta_XC = |D_PBE - D_HSE| / D_HSE; Delta_NN = (max - min) / min"}
    (runs / f"compare_T{T:g}K.json").write_text(json.dumps(out, indent=2, default=float))
    from . import plots

    plots.plot_deltas(xc, nn, runs / f"compare_T{T:g}K", f"T = {T:g} K")


@click.command("report")
@click.option("--runs", "runs", default=lambda: str(runs_dir()),
              show_default="runs/ of the project", type=click.Path(path_type=Path))
@click.option("--potentials", default=lambda: str(potentials_dir()),
              show_default="potentials/ of the project",
              type=click.Path(path_type=Path))
@click.option("--out", "out", default="report.md", show_default=True,
              type=click.Path(path_type=Path))
@click.option("--at", "T_eval", default=300.0, show_default=True)
@click.option("--n-boot", default=1000, show_default=True)
@_friendly
def report(runs: Path, potentials: Path, out: Path, T_eval: float, n_boot: int) -> None:
    """One Markdown page: D per model and T, Arrhenius fits, Delta_XC/Delta_NN, figures."""
    if not runs.is_dir():
        raise click.ClickException(f"{runs} is not a directory; pass --runs")
    fig_dir = out.parent / (out.stem + "_figures")
    lines = [f"# lpsc-lmp report ({runs})", "",
             "D from the seed-mean MSD (OLS over the window / 6); errors from the spread of "
             "per-seed D (1 sigma = std/sqrt(n)); 95 % intervals by bootstrap over seeds.", "",
             "## Diffusion coefficients", "",
             "| model | T (K) | seeds done/failed/missing | D (cm^2/s) | stderr | 95 % CI | "
             "window (ps) | warnings |", "|---|---|---|---|---|---|---|---|"]
    fits: dict[str, ArrheniusFit] = {}
    arr_rows = []
    notes: list[str] = []
    temps: set[float] = set()
    for mdir in sorted(p for p in runs.iterdir() if p.is_dir()):
        if not find_ensembles(runs, mdir.name):
            continue
        rows, fit = _model_fit(runs, mdir.name, None, n_boot)
        for T, r, data in rows:
            temps.add(T)
            c = data.counts()
            lines.append(
                f"| {mdir.name} | {T:g} | {c['done']}/{c['failed']}/{c['missing']} | "
                f"{_fmt(r.D_cm2s)} | {_fmt(r.stderr_cm2s, '.2e')} | [{_fmt(r.ci95_cm2s[0])}, "
                f"{_fmt(r.ci95_cm2s[1])}] | {r.window_ps[0]:.3g}-{r.window_ps[1]:.3g} | "
                f"{'; '.join(r.warnings) or '-'} |")
        for T, why in left_out_of_fit(rows).items():
            notes.append(f"- {mdir.name}, T = {T:g} K: left out of the Arrhenius fit ({why})")
        if fit is not None:
            fits[mdir.name] = fit
            arr_rows.append(_arrhenius_summary(mdir.name, fit, rows, T_eval, 1.0))
    if len(lines) == 8:
        raise click.ClickException(f"no ensembles under {runs}/<model>/T*K; run some first")
    lines += ["", "## Arrhenius fits", "", *notes, *([""] if notes else [])]
    if fits:
        from . import plots

        plots.plot_arrhenius(fits, fig_dir / "arrhenius", "Arrhenius")
        lines += [f"| model | Ea (eV) | D({T_eval:g} K) (cm^2/s), 95 % | "
                  f"sigma({T_eval:g} K) (mS/cm, H_R = 1), 95 % | chi2_red |",
                  "|---|---|---|---|---|"]
        for a in arr_rows:
            f = a["fit"]
            dd = a["D_at"]
            sg = a.get("sigma_at_mScm", {"value": float("nan"), "ci95": [float("nan")] * 2})
            lines.append(
                f"| {a['model']} | {f['Ea_eV']:.3f} +- {_fmt(f['Ea_err_eV'], '.3f')} | "
                f"{_fmt(dd['value'])} [{_fmt(dd['ci95'][0])}, {_fmt(dd['ci95'][1])}] | "
                f"{_fmt(sg['value'], '.3g')} [{_fmt(sg['ci95'][0], '.3g')}, "
                f"{_fmt(sg['ci95'][1], '.3g')}] | {_fmt(f['chi2_red'], '.2f')} |")
        lines += ["", f"![Arrhenius]({fig_dir.name}/arrhenius.png)"]
    else:
        lines.append("No model has >= 2 temperatures with errors yet.")
    lines += ["", "## Functional and architecture effects", "",
              "Delta_XC = |D_PBE - D_HSE| / D_HSE per architecture; Delta_NN = (max - min) / min "
              "over architectures per functional; errors by Monte-Carlo propagation of the D "
              "errors.", ""]
    for T in sorted(temps):
        try:
            _, xc, nn = _compare_at(runs, potentials, T, None, n_boot)
        except ValueError as exc:
            lines.append(f"- T = {T:g} K: skipped ({exc})")
            continue
        if not xc and not nn:
            continue
        from . import plots

        plots.plot_deltas(xc, nn, fig_dir / f"deltas_T{T:g}K", f"T = {T:g} K")
        lines += [f"### T = {T:g} K", "", "| quantity | value (%) | MC error (%) | 95 % (%) |",
                  "|---|---|---|---|"]
        for name, res in [*((f"Delta_XC {k}", v) for k, v in xc.items()),
                          *((f"Delta_NN {k}", v) for k, v in nn.items())]:
            lines.append(f"| {name} | {100 * res.value:.1f} | {100 * res.err_mc:.1f} | "
                         f"[{100 * res.ci95[0]:.1f}, {100 * res.ci95[1]:.1f}] |")
        lines += ["", f"![Deltas at {T:g} K]({fig_dir.name}/deltas_T{T:g}K.png)", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    click.echo(f"wrote {out}" + (f" and {fig_dir}/" if fig_dir.exists() else ""))


COMMANDS = [analyze, arrhenius, compare, report]
