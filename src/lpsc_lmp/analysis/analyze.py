"""Full analysis of one ensemble: D with errors, convergence, conductivity, position-based
tracer and collective diffusion, figures; written to ``<run>/analysis/``.

Units: D in cm^2/s, sigma in mS/cm, T in K, time in ps.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from . import msd as msdmod
from .collect import fit_run
from .conductivity import haven_ratio_from_seeds, nernst_einstein_mScm
from .convergence import convergence_analysis, seeds_needed
from .diffusion import fit_ensemble
from .ensemble_data import EnsembleData


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
    data, res = fit_run(run, n_boot, window, positions)
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
