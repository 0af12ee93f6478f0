"""D from a batched and an ordinary ensemble of the same model, T and seeds, side by side.

Issue 7 asks that D from a batched ensemble (``--batch K``: K seeds per worker in lock step, one
batched model call per step) agree with the ordinary mode (one LAMMPS process per seed) within
error. This runs both through ``lpsc_lmp.runs.sweep.run_ensemble`` exactly as the CLI does
(``lpsc-lmp ensemble --route python-callback [--batch K]``, the same workers, seeds and
``result.npz``), then fits each with the paper's estimator
(lpsc_lmp.analysis.diffusion.fit_ensemble) and reports:
- per mode: seeds done, wall time of the whole ensemble (worker start-up and model loading
  included), aggregate trajectory-steps/s = seeds x steps / that wall, D with its seed standard
  error and bootstrap 95 % interval;
- ``z``: (D_batched - D_ordinary) / sqrt(se_b^2 + se_o^2), agreement within error is |z| < 2;
- the paired per-seed difference: seed k starts from the same velocities in both modes
  (``loop geom`` with LAMMPS seed k), so mean(D_b,k - D_o,k) +- its s.e. tests the same thing
  with the seeds' common part removed;
- how long paired trajectories stay together: the mean over seeds of the RMS Li position
  difference at each stored frame, and the first time it passes 0.01, 0.1 and 1 A (the batched
  model sums in another order, so round-off separates the trajectories within picoseconds;
  after that the two ensembles are independent samples of the same dynamics).

Usage:
    .venv/dp/bin/python bench/bench_batched_diffusion.py [--model nequip-7net] [--T 1000]
        [--seeds 16] [--time 5] [--workers 2] [--batch 8] [--gpus none|auto] [--keep DIR]
Writes bench/results/batched_diffusion[_TAG].{md,json}; the ensembles go to a scratch folder
under runs/ (removed at the end unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "src"))

from lpsc_lmp.analysis.diffusion import fit_ensemble  # noqa: E402
from lpsc_lmp.analysis.ensemble_data import read_ensemble  # noqa: E402
from lpsc_lmp.runs.settings import EnsembleSettings  # noqa: E402
from lpsc_lmp.runs.sweep import run_ensemble  # noqa: E402

THRESHOLDS_A = (0.01, 0.1, 1.0)


def run_mode(a: argparse.Namespace, runs: Path, batch: int
             ) -> tuple[EnsembleSettings, Path, float]:
    """One ensemble of ``a.seeds`` seeds (batched when ``batch`` > 0): its settings, directory
    and wall time (s)."""
    s = EnsembleSettings(model=a.model, temperature_K=a.T, seeds=a.seeds, time_ps=a.time,
                         workers=a.workers, runs=str(runs), tag="batched" if batch else "ordinary",
                         gpus=a.gpus, batch=batch, route="python-callback",
                         workers_per_gpu=a.workers)
    t0 = time.perf_counter()
    edir = run_ensemble(s, echo=lambda *x, **k: None)
    return s, edir, time.perf_counter() - t0


def separation(ens_b, ens_o, ib: np.ndarray, io: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over paired seeds (rows ``ib`` of the batched, ``io`` of the ordinary ensemble) of
    the RMS Li position difference (A) at each stored frame."""
    d = ens_b.li_unwrapped[ib].astype(np.float64) - ens_o.li_unwrapped[io].astype(np.float64)
    rms = np.sqrt((d ** 2).sum(axis=-1).mean(axis=-1))  # (seeds, frames)
    return ens_b.t_pos, rms.mean(axis=0)


def first_time_over(t: np.ndarray, y: np.ndarray, level: float) -> float | None:
    """First time (ps) at which ``y`` exceeds ``level``; None if it never does."""
    over = np.nonzero(y > level)[0]
    return float(t[over[0]]) if over.size else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="nequip-7net")
    ap.add_argument("--T", type=float, default=1000.0)
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--time", type=float, default=5.0, help="ps per seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=0,
                    help="seeds per batched worker (default seeds / workers)")
    ap.add_argument("--gpus", default="none")
    ap.add_argument("--keep", type=Path, help="keep the ensembles in this folder (resumable)")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    batch = a.batch or max(1, -(-a.seeds // a.workers))
    if a.keep:
        runs = a.keep.resolve()
        runs.mkdir(parents=True, exist_ok=True)
    else:
        (ROOT / "runs").mkdir(exist_ok=True)
        runs = Path(tempfile.mkdtemp(prefix="bench-batched-diffusion-", dir=ROOT / "runs"))
    try:
        rows, ens = [], {}
        for mode, k in (("ordinary", 0), ("batched", batch)):
            s, edir, wall = run_mode(a, runs, k)
            e = read_ensemble(edir)
            res = fit_ensemble(e.t_msd, e.msd_total, s.window())
            ens[mode] = (e, res)
            rows.append({"mode": mode if not k else f"batched K={k}", "seeds": e.n_done,
                         "failed": len(e.status.failed), "wall_s": round(wall, 1),
                         "agg_steps_per_s": round(e.n_done * s.nsteps / wall, 1),
                         "D_cm2s": res.D_cm2s, "stderr_cm2s": res.stderr_cm2s,
                         "ci95_cm2s": list(res.ci95_cm2s), "window_ps": list(res.window_ps),
                         "alpha_window": res.alpha_window, "warnings": list(res.warnings)})
            print(rows[-1], flush=True)
        (eb, rb), (eo, ro) = ens["batched"], ens["ordinary"]
        z = (rb.D_cm2s - ro.D_cm2s) / float(np.hypot(rb.stderr_cm2s, ro.stderr_cm2s))
        common, ib, io = np.intersect1d(eb.seeds, eo.seeds, return_indices=True)
        diff = rb.per_seed_D_cm2s[ib] - ro.per_seed_D_cm2s[io]
        paired = {"seeds": int(common.size), "mean_cm2s": float(diff.mean()),
                  "stderr_cm2s": float(diff.std(ddof=1) / np.sqrt(diff.size))
                  if diff.size > 1 else float("nan")}
        t_pos, sep = separation(eb, eo, ib, io)
        sep_times = {f"{x:g}": first_time_over(t_pos, sep, x) for x in THRESHOLDS_A}
        info = {"model": a.model, "T_K": a.T, "time_ps": a.time, "workers": a.workers,
                "batch": batch, "route": "python-callback", "gpus": a.gpus,
                "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                "rows": rows, "z": z, "paired": paired,
                "separation_first_over_A": sep_times,
                "separation_rms_A": {"t_ps": t_pos.tolist(), "rms_A": sep.tolist()}}
        write(info, a.tag)
        print(markdown(info))
    finally:
        if not a.keep:
            shutil.rmtree(runs, ignore_errors=True)
    return 0


def markdown(info: dict) -> str:
    lines = [f"# D batched vs ordinary: {info['model']}, {info['T_K']:g} K, "
             f"{info['rows'][0]['seeds']} seeds x {info['time_ps']:g} ps ({info['date']})", "",
             f"Route python-callback, {info['workers']} workers ({info['cpus']} CPUs, GPUs: "
             f"{info['gpus']}), 1 thread each; the batched run: {info['workers']} workers of "
             f"K = {info['batch']} seeds in lock step. Fit window "
             f"{info['rows'][0]['window_ps'][0]:.2f}-{info['rows'][0]['window_ps'][1]:.2f} ps. "
             "Written by bench/bench_batched_diffusion.py.", "",
             "| mode | seeds (failed) | wall (s) | trajectory-steps/s | D (cm^2/s) | 1 s.e. | "
             "95 % CI | alpha |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in info["rows"]:
        lo, hi = r["ci95_cm2s"]
        lines.append(f"| {r['mode']} | {r['seeds']} ({r['failed']}) | {r['wall_s']:.0f} | "
                     f"{r['agg_steps_per_s']:.0f} | {r['D_cm2s']:.3e} | {r['stderr_cm2s']:.2e} | "
                     f"[{lo:.2e}, {hi:.2e}] | {r['alpha_window']:.2f} |")
    p = info["paired"]
    sep = ", ".join(f"{k} A: {'never' if v is None else f'{v:g} ps'}"
                    for k, v in info["separation_first_over_A"].items())
    lines += ["", f"z = (D_batched - D_ordinary) / combined s.e. = {info['z']:+.2f} "
              "(|z| < 2: agreement within error).",
              f"Paired over {p['seeds']} seeds (same initial velocities): mean D_b - D_o = "
              f"{p['mean_cm2s']:+.2e} +- {p['stderr_cm2s']:.2e} cm^2/s.",
              f"Paired trajectories separate (mean RMS Li position difference first over): {sep}."]
    return "\n".join(lines) + "\n"


def write(info: dict, tag: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    stem = OUT / ("batched_diffusion" + (f"_{tag}" if tag else ""))
    stem.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(info))


if __name__ == "__main__":
    sys.exit(main())
