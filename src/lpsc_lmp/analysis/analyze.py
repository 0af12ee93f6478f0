"""Full analysis of one ensemble: D with errors, convergence, conductivity, position-based
tracer and collective diffusion, figures; written to ``<run>/analysis/``.

Units: D in cm^2/s, sigma in mS/cm, T in K, time in ps.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AnalysisError
from ..files import write_atomic, write_text_atomic
from . import msd as msdmod
from .advisor import advise
from .collect import window_for
from .conductivity import haven_ratio_from_seeds, nernst_einstein_mScm
from .convergence import convergence_analysis, seeds_needed
from .diffusion import fit_ensemble
from .ensemble_data import EnsembleData, read_ensemble
from .estimators import DESCRIPTION, ESTIMATORS, Estimate, check_estimator, estimate


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


#: Mean pressure (GPa) above which analyze warns that the cell is not the model's own.
PRESSURE_WARN_GPA = 1.0


def analyze_ensemble(
    run: Path,
    window: tuple[float, float] | None = None,
    n_boot: int = 1000,
    positions: bool = True,
    figures: bool = True,
    out_dir: Path | None = None,
    estimator: str = "paper",
    target: float = 0.01,
) -> dict[str, Any]:
    """Full analysis of one ensemble with ``estimator`` for the headline D (every estimator
    the data allow is reported beside it, with the protocol that reaches ``target`` relative
    precision at the least MD time); writes ``out_dir`` (default ``RUN/analysis/``) and
    returns the JSON dictionary."""
    check_estimator(estimator)
    out_dir = Path(out_dir) if out_dir is not None else run / "analysis"
    data = read_ensemble(run, load_positions=positions or estimator != "paper")
    paper_w = window_for(data, window if estimator == "paper" else None)
    est = estimate(data, estimator, window if estimator != "paper" else None, n_boot=n_boot,
                   paper_window=paper_w)
    res = est.result
    meta = data.meta
    T = float(meta["temperature_K"])
    writable_folder(out_dir)
    summary: dict[str, Any] = {
        "ensemble": str(run),
        "model": meta.get("model"),
        "temperature_K": T,
        "estimator": estimator,
        "estimator_description": DESCRIPTION[estimator],
        "seeds": data.counts(),
        "seeds_failed": {str(k): v for k, v in data.status.failed.items()},
        "seeds_missing": list(data.status.missing),
        "seeds_corrupt": {str(k): v for k, v in data.status.corrupt.items()},
        "seeds_excluded": {str(k): v for k, v in data.excluded.items()},
        "diffusion": est.to_dict(),
        "estimators": {},
        "advice": {},
    }
    for name in ESTIMATORS:
        if name == estimator:
            other = est
        elif data.li_unwrapped is None:
            continue
        else:
            try:
                other = estimate(data, name, None, n_boot=n_boot, paper_window=paper_w)
            except AnalysisError as exc:
                summary["estimators"][name] = {"skipped": str(exc)}
                continue
        summary["estimators"][name] = other.to_dict()
        if data.n_done >= 3:
            try:
                summary["advice"][name] = advise(data, name, target).to_dict()
            except AnalysisError as exc:
                summary["advice"][name] = {"skipped": str(exc)}
    pressure = data.pressure_GPa()
    if pressure is not None:
        summary["pressure_GPa"] = {"mean": pressure[0], "stderr": pressure[1],
                                   "cell": meta.get("cell") or {"lattice_A": meta.get("lattice_A")}}
        if abs(pressure[0]) > PRESSURE_WARN_GPA:
            summary["diffusion"]["warnings"] = [*summary["diffusion"]["warnings"], (
                f"the cell is at {pressure[0]:+.1f} GPa at this temperature: the model's own "
                "volume differs from this cell's; compare with --cell model, which warns when "
                "that volume lies outside the model's training data (docs/study.md, The cell)")]
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
    pos_out = _position_analysis(data, paper_w, n_boot) if positions else None
    if pos_out is not None:
        pos_out.pop("_results", None)
        summary["positions"] = pos_out
    write_outputs(out_dir, summary, data.seeds, est, figures, conv,
                  f"{meta.get('model', '?')} {T:g} K ({estimator})")
    return summary


def writable_folder(out_dir: Path) -> None:
    """Create ``out_dir``, or refuse in one line naming ``--out``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnalysisError(f"cannot write the analysis to {out_dir} ({exc.strerror}); pass "
                            "--out DIR with a writable folder") from None
    if not os.access(out_dir, os.W_OK):
        raise AnalysisError(f"{out_dir} is not writable; pass --out DIR with a writable folder")


def write_outputs(out_dir: Path, summary: dict[str, Any], seeds: np.ndarray, est: Estimate,
                  figures: bool, conv: Any, title: str) -> None:
    """analysis.json, analysis.csv (per-seed D), msd_mean.csv (the estimator's curve), and
    the figures, each written atomically."""
    res = est.result
    write_text_atomic(out_dir / "analysis.json", json.dumps(summary, indent=2, default=float))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["seed", "D_cm2s"])  # by the estimator named in analysis.json
    for seed, d in zip(seeds, res.per_seed_D_cm2s, strict=True):
        w.writerow([int(seed), f"{d:.6e}"])
    write_text_atomic(out_dir / "analysis.csv", buf.getvalue())
    n = est.msd.shape[0]
    mean = est.msd.mean(axis=0)
    sem = est.msd.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full_like(mean, np.nan)
    axis = "t_ps" if est.estimator == "paper" else "lag_ps"
    write_atomic(out_dir / "msd_mean.csv", lambda tmp: np.savetxt(
        tmp, np.column_stack([est.t_ps, mean, sem]), delimiter=",",
        header=f"{axis},msd_mean_A2,msd_sem_A2", comments=""))
    if figures:
        from . import plots

        plots.plot_msd_fan(est.t_ps, est.msd, res, out_dir / "msd_fan", title)
        if conv is not None:
            plots.plot_convergence(conv, out_dir / "convergence", title)
