"""D over many ensembles: the fit of each run, D(T) and its Arrhenius fit per model, and the
functional / architecture comparison at one temperature.

Every D here is the paper's estimator (:func:`lpsc_lmp.analysis.diffusion.fit_ensemble` on the
seed-mean MSD from t = 0) over the ensemble's own fit window. Units: D in cm^2/s, T in K, Ea in
eV, sigma in mS/cm.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import AnalysisError
from ..protocol import default_window
from .arrhenius import ArrheniusFit, fit_arrhenius
from .compare import DeltaResult, committee_spread, delta_nn, delta_xc, load_cards
from .conductivity import nernst_einstein_mScm
from .diffusion import DiffusionResult
from .ensemble_data import EnsembleData, find_ensembles, read_ensemble
from .estimators import check_estimator, estimate


def window_for(data: EnsembleData, window: tuple[float, float] | None) -> tuple[float, float]:
    """Explicit window, else ``fit_window_ps`` of ensemble.json, else the paper's scaled one."""
    if window:
        return (float(window[0]), float(window[1]))
    w = data.meta.get("fit_window_ps")
    if w:
        return (float(w[0]), float(w[1]))
    time_ps = float(data.meta.get("time_ps", data.t_msd[-1]))
    return default_window(time_ps)


def fit_run(
    path: Path, n_boot: int = 1000, window: tuple[float, float] | None = None,
    load_positions: bool = False, estimator: str = "paper",
) -> tuple[EnsembleData, DiffusionResult]:
    """Read an ensemble and fit D with ``estimator`` (:mod:`lpsc_lmp.analysis.estimators`):
    the paper's over the ensemble's window (:func:`window_for`), or the multi-origin one over
    its own lag window (``window`` overrides either)."""
    check_estimator(estimator)
    data = read_ensemble(path, load_positions=load_positions or estimator != "paper")
    est = estimate(data, estimator, window, n_boot=n_boot,
                   paper_window=window_for(data, window))
    return data, est.result


def left_out_of_fit(rows: list[tuple[float, DiffusionResult, EnsembleData]]) -> dict[float, str]:
    """Temperatures an Arrhenius fit cannot use, with the reason (never dropped silently)."""
    out = {}
    for T, r, _ in rows:
        if not r.D_cm2s > 0:
            out[T] = f"D = {r.D_cm2s:.3g} cm^2/s is not positive"
        elif not math.isfinite(r.stderr_cm2s):
            out[T] = f"no error bar ({r.n_seeds} seed); run >= 2 seeds"
    return out


def model_arrhenius(
    runs: Path, model: str, tag: str | None = None, n_boot: int = 1000,
    estimator: str = "paper",
) -> tuple[list[tuple[float, DiffusionResult, EnsembleData]], ArrheniusFit | None]:
    """D at every temperature of ``model`` under ``runs`` (by ``estimator``) and the Arrhenius
    fit of those that can be used (None with fewer than two)."""
    ens = find_ensembles(runs, model, tag)
    if not ens:
        raise AnalysisError(f"no ensembles under {runs / model}/T*K; check --runs and --model")
    rows = []
    for T, path in ens:
        data, res = fit_run(path, n_boot, estimator=estimator)
        rows.append((T, res, data))
    left_out = left_out_of_fit(rows)
    usable = [(T, r) for T, r, _ in rows if T not in left_out]
    fit = None
    if len(usable) >= 2:
        fit = fit_arrhenius([u[0] for u in usable], [u[1].D_cm2s for u in usable],
                            [u[1].stderr_cm2s for u in usable])
    return rows, fit


def arrhenius_summary(model: str, fit: ArrheniusFit, rows: list, T_eval: float,
                      haven: float) -> dict[str, Any]:
    """The fit, D at ``T_eval`` and (with the cell of the runs) the Nernst-Einstein
    conductivity there, with 95 % intervals from the fit's covariance."""
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


def models_at(runs: Path, T: float, tag: str | None = None) -> dict[str, Path]:
    """The ensemble of every model under ``runs`` at temperature ``T`` (K)."""
    out: dict[str, Path] = {}
    if not runs.is_dir():
        raise AnalysisError(f"{runs} is not a directory; pass --runs")
    for mdir in sorted(p for p in runs.iterdir() if p.is_dir()):
        for t, path in find_ensembles(runs, mdir.name, tag):
            if abs(t - T) < 1e-6:
                out[mdir.name] = path
    return out


def compare_at(runs: Path, potentials: Path, T: float, tag: str | None = None,
               n_boot: int = 1000, estimator: str = "paper"
               ) -> tuple[dict[str, tuple[float, float]], dict[str, DeltaResult],
                          dict[str, DeltaResult], dict[str, DeltaResult]]:
    """D (value, 1 sigma) of every model at ``T``, the functional (Delta_XC) and architecture
    (Delta_NN) effects between them, and the spread of each committee (training seeds)."""
    models = models_at(runs, T, tag)
    if not models:
        raise AnalysisError(f"no ensembles at T = {T:g} K under {runs}; check --runs and --T")
    values = {}
    for m, path in models.items():
        _, r = fit_run(path, n_boot, estimator=estimator)
        values[m] = (r.D_cm2s, r.stderr_cm2s)
    cards = load_cards(potentials, list(values))
    return (values, delta_xc(values, cards), delta_nn(values, cards),
            committee_spread(values, cards))


def write_arrhenius(runs: Path, model: str, fit: ArrheniusFit, summary: dict[str, Any]
                    ) -> Path:
    """``<runs>/<model>/arrhenius.json`` and the Arrhenius figure beside it."""
    from . import plots

    out = runs / model
    out.mkdir(parents=True, exist_ok=True)
    (out / "arrhenius.json").write_text(json.dumps(summary, indent=2, default=float))
    plots.plot_arrhenius({model: fit}, out / "arrhenius", model)
    return out / "arrhenius.json"


#: How Delta_XC and Delta_NN are normalised (the paper's exact normalisation was lost).
NORMALISATION = ("Delta_XC = |D_low - D_high| / D_high between two functionals of one "
                 "architecture (high: higher rung, the reference); Delta_NN = (max - min) / min "
                 "over architectures; committee = (max - min) / min over training seeds")


def write_comparison(runs: Path, T: float, values: dict[str, tuple[float, float]],
                     xc: dict[str, DeltaResult], nn: dict[str, DeltaResult],
                     committees: dict[str, DeltaResult] | None = None,
                     estimator: str = "paper") -> Path:
    """``<runs>/compare_T<T>K.json`` and its figure."""
    from . import plots

    out = {"T_K": T, "estimator": estimator, "D": {m: list(v) for m, v in values.items()},
           "delta_xc": {k: v.to_dict() for k, v in xc.items()},
           "delta_nn": {k: v.to_dict() for k, v in nn.items()},
           "committees": {k: v.to_dict() for k, v in (committees or {}).items()},
           "normalisation": NORMALISATION}
    path = runs / f"compare_T{T:g}K.json"
    path.write_text(json.dumps(out, indent=2, default=float))
    plots.plot_deltas(xc, nn, runs / f"compare_T{T:g}K", f"T = {T:g} K")
    return path
