"""``report.md``: every ensemble under a runs folder on one Markdown page, with figures.

D per model and temperature (the paper's estimator, errors from the seeds), Arrhenius fits with
D and sigma extrapolated to ``T_eval``, and Delta_XC / Delta_NN at every temperature where
models can be compared.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import AnalysisError
from .arrhenius import ArrheniusFit
from .collect import (
    NORMALISATION,
    arrhenius_summary,
    compare_at,
    left_out_of_fit,
    model_arrhenius,
)
from .ensemble_data import find_ensembles
from .estimators import DESCRIPTION


def fmt(x: float | None, spec: str = ".3e") -> str:
    """A number for tables: ``nan`` for None or non-finite values."""
    return "nan" if x is None or not math.isfinite(x) else format(x, spec)


def write_report(runs: Path, potentials: Path, out: Path, T_eval: float = 300.0,
                 n_boot: int = 1000, estimator: str = "paper") -> Path:
    """One Markdown page ``out``: D per model and T, Arrhenius fits, Delta_XC/Delta_NN, and
    the figures in ``<out stem>_figures/``. Returns ``out``."""
    if not runs.is_dir():
        raise AnalysisError(f"{runs} is not a directory; pass --runs")
    fig_dir = out.parent / (out.stem + "_figures")
    lines = [f"# lpsc-lmp report ({runs})", "",
             f"D by the {estimator} estimator ({DESCRIPTION[estimator]}); errors from the "
             "spread of per-seed D (1 sigma = std/sqrt(n)); 95 % intervals Student-t over "
             "seeds.", "",
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
        rows, fit = model_arrhenius(runs, mdir.name, None, n_boot, estimator)
        for T, r, data in rows:
            temps.add(T)
            c = data.counts()
            lines.append(
                f"| {mdir.name} | {T:g} | {c['done']}/{c['failed']}/{c['missing']} | "
                f"{fmt(r.D_cm2s)} | {fmt(r.stderr_cm2s, '.2e')} | [{fmt(r.ci95_cm2s[0])}, "
                f"{fmt(r.ci95_cm2s[1])}] | {r.window_ps[0]:.3g}-{r.window_ps[1]:.3g} | "
                f"{'; '.join(r.warnings) or '-'} |")
        for T, why in left_out_of_fit(rows).items():
            notes.append(f"- {mdir.name}, T = {T:g} K: left out of the Arrhenius fit ({why})")
        if fit is not None:
            fits[mdir.name] = fit
            arr_rows.append(arrhenius_summary(mdir.name, fit, rows, T_eval, 1.0))
    if len(lines) == 8:
        raise AnalysisError(f"no ensembles under {runs}/<model>/T*K; run some first")
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
                f"| {a['model']} | {f['Ea_eV']:.3f} +- {fmt(f['Ea_err_eV'], '.3f')} | "
                f"{fmt(dd['value'])} [{fmt(dd['ci95'][0])}, {fmt(dd['ci95'][1])}] | "
                f"{fmt(sg['value'], '.3g')} [{fmt(sg['ci95'][0], '.3g')}, "
                f"{fmt(sg['ci95'][1], '.3g')}] | {fmt(f['chi2_red'], '.2f')} |")
        lines += ["", f"![Arrhenius]({fig_dir.name}/arrhenius.png)"]
    else:
        lines.append("No model has >= 2 temperatures with errors yet.")
    lines += ["", "## Functional and architecture effects", "",
              f"{NORMALISATION}; errors by Monte-Carlo propagation of the D errors.", ""]
    for T in sorted(temps):
        try:
            _, xc, nn, committees = compare_at(runs, potentials, T, None, n_boot, estimator)
        except AnalysisError as exc:
            lines.append(f"- T = {T:g} K: skipped ({exc})")
            continue
        if not xc and not nn and not committees:
            continue
        from . import plots

        plots.plot_deltas(xc, nn, fig_dir / f"deltas_T{T:g}K", f"T = {T:g} K")
        lines += [f"### T = {T:g} K", "",
                  "| quantity | what | value (%) | MC error (%) | 95 % (%) |",
                  "|---|---|---|---|---|"]
        for name, res in [*((f"Delta_XC {k}", v) for k, v in xc.items()),
                          *((f"Delta_NN {k}", v) for k, v in nn.items()),
                          *((f"committee {k}", v) for k, v in committees.items())]:
            lines.append(f"| {name} | {res.label} | {100 * res.value:.1f} | "
                         f"{100 * res.err_mc:.1f} | [{100 * res.ci95[0]:.1f}, "
                         f"{100 * res.ci95[1]:.1f}] |")
        lines += ["", f"![Deltas at {T:g} K]({fig_dir.name}/deltas_T{T:g}K.png)", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out

