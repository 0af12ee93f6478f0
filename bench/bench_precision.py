"""Precision of D per ns of MD, and calibration of its error bars, for each estimator.

For one large ensemble of a model at each temperature (run through the CLI's own
``run_ensemble``, or an existing one), per estimator (:mod:`lpsc_lmp.analysis.estimators`):

- the coefficient of variation of the per-seed D (CV) and the relative standard error of D per
  ns of MD, ``CV * sqrt(seed length in ns)``: the relative 1-sigma error one ns of MD buys
  (lower is better); the ratio of MD time the two estimators need for one precision is
  ``(CV_paper / CV_multi)^2`` at equal seed length;
- calibration on disjoint sub-ensembles of ``--sub`` seeds (``--partitions`` random partitions
  of the seeds): the sub-ensemble's D against the D of all the other seeds. Bias: mean of
  (D_sub - D_rest) / D_rest with its standard error. Coverage: the fraction of sub-ensembles
  whose 68 % / 95 % interval, widened by the rest's own error (``sqrt(se_sub^2 + se_rest^2)``),
  holds D_rest, with normal quantiles (1, 1.96) and with Student-t quantiles of n_sub - 1
  degrees of freedom;
- the estimators against each other on the same seeds (paired per-seed differences: the start
  of each seed from the crystal is in both), and the multi-origin D against the equilibration
  left out before the first origin and against the lag window;
- the protocol advice for 1 % (:mod:`lpsc_lmp.analysis.advisor`): seeds x length and total ns
  against the paper's 300 x 70 ps = 21 ns.

Usage:
    .venv/dp/bin/python bench/bench_precision.py [--model dp-7net] [--temps 1000,1200]
        [--seeds 32] [--time 8] [--workers 2] [--sub 4] [--partitions 40]
        [--runs bench/work/precision] [--no-run]
Writes bench/results/precision.{md,json}. The ensembles stay in --runs (resumable; not
committed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "src"))

from lpsc_lmp.analysis.advisor import advise  # noqa: E402
from lpsc_lmp.analysis.diffusion import per_seed_slopes, window_diagnostic  # noqa: E402
from lpsc_lmp.analysis.ensemble_data import read_ensemble  # noqa: E402
from lpsc_lmp.analysis.estimators import (  # noqa: E402
    ESTIMATORS,
    MULTI_ORIGIN_WINDOW,
    T_EQ_FRACTION,
    multi_origin_curves,
    multi_origin_window,
)
from lpsc_lmp.protocol import default_window  # noqa: E402
from lpsc_lmp.runs.settings import EnsembleSettings  # noqa: E402
from lpsc_lmp.runs.sweep import run_ensemble  # noqa: E402

A2PS_TO_CM2S = 1e-4


def per_seed_D(data, estimator: str, t_eq_frac: float = T_EQ_FRACTION,
               window_frac: tuple[float, float] | None = None) -> np.ndarray:
    """Per-seed D (cm^2/s) by an estimator, with its windows as fractions of the run."""
    return per_seed_D_alpha(data, estimator, t_eq_frac, window_frac)[0]


def per_seed_D_alpha(data, estimator: str, t_eq_frac: float = T_EQ_FRACTION,
                     window_frac: tuple[float, float] | None = None,
                     window_ps: tuple[float, float] | None = None
                     ) -> tuple[np.ndarray, float]:
    """Per-seed D (cm^2/s) and the log-log slope alpha of the seed-mean curve in the window
    (the analysis warns below 1 - ALPHA_TOLERANCE). The multi-origin window: ``window_ps``
    (lags, ps), else ``window_frac`` of the span after equilibration, else the default."""
    time_ps = float(data.t_msd[-1])
    if estimator == "paper":
        t, curves, w = data.t_msd, data.msd_total, default_window(time_ps)
    else:
        t, curves = multi_origin_curves(data, t_eq_frac * time_ps)
        span = float(t[-1])
        w = window_ps or ((window_frac[0] * span, window_frac[1] * span) if window_frac
                          else multi_origin_window(span))
    alpha = window_diagnostic(t, curves.mean(axis=0), w).alpha_window
    return per_seed_slopes(t, curves, w) / 6 * A2PS_TO_CM2S, float(alpha)


def calibration(d: np.ndarray, sub: int, partitions: int, rng: np.random.Generator
                ) -> dict:
    """Bias and interval coverage of sub-ensembles of ``sub`` seeds against the other seeds."""
    n = d.size
    rel, cover = [], {k: 0 for k in ("n68", "n95", "t68", "t95")}
    total = 0
    t68, t95 = (float(stats.t.ppf(0.5 + p / 2, sub - 1)) for p in (0.6827, 0.95))
    for _ in range(partitions):
        perm = rng.permutation(n)
        for k in range(n // sub):
            idx = perm[k * sub:(k + 1) * sub]
            rest = np.setdiff1d(np.arange(n), idx)
            ds, dr = d[idx].mean(), d[rest].mean()
            se_s = d[idx].std(ddof=1) / math.sqrt(sub)
            se_r = d[rest].std(ddof=1) / math.sqrt(rest.size)
            width = math.sqrt(se_s ** 2 + se_r ** 2)
            dev = abs(ds - dr)
            rel.append((ds - dr) / dr)
            cover["n68"] += dev <= width
            cover["n95"] += dev <= 1.96 * width
            cover["t68"] += dev <= t68 * width
            cover["t95"] += dev <= t95 * width
            total += 1
    rel_a = np.array(rel)
    return {"sub": sub, "subensembles": total, "partitions": partitions,
            "bias_rel": float(rel_a.mean()),
            "bias_rel_se": float(rel_a.std(ddof=1) / math.sqrt(n // sub)),
            **{f"coverage_{k}": v / total for k, v in cover.items()}}


def paired(a: np.ndarray, b: np.ndarray) -> dict:
    """(b - a) / mean(a) per seed: mean and standard error (the seeds are paired)."""
    r = (b - a) / a.mean()
    return {"rel_diff": float(r.mean()), "rel_diff_se": float(r.std(ddof=1) / math.sqrt(r.size))}


def study(edir: Path, sub: int, partitions: int) -> dict:
    data = read_ensemble(edir, load_positions=True)
    time_ps = float(data.t_msd[-1])
    out = {"ensemble": str(edir), "T_K": data.temperature_K, "seeds": data.n_done,
           "time_ps": time_ps, "total_ns": data.n_done * time_ps / 1000.0, "estimators": {}}
    rng = np.random.default_rng(1)
    per = {}
    for est in ESTIMATORS:
        d, alpha = per_seed_D_alpha(data, est)
        per[est] = d
        cv = float(d.std(ddof=1) / d.mean())
        adv = advise(data, est, 0.01).to_dict()
        out["estimators"][est] = {
            "D_cm2s": float(d.mean()), "se_cm2s": float(d.std(ddof=1) / math.sqrt(d.size)),
            "alpha": alpha,
            "cv": cv, "rel_se_per_ns": cv * math.sqrt(time_ps / 1000.0),
            "calibration": calibration(d, sub, partitions, rng), "advice_1pc": adv}
    e = out["estimators"]
    out["md_time_ratio_paper_over_multi"] = (e["paper"]["cv"] / e["multi-origin"]["cv"]) ** 2
    out["multi_vs_paper_paired"] = paired(per["paper"], per["multi-origin"])
    base = per["multi-origin"]
    def scan_row(x: np.ndarray, alpha: float) -> dict:
        return {"D_cm2s": float(x.mean()), **paired(base, x), "alpha": alpha,
                "cv": float(x.std(ddof=1) / x.mean())}

    # equilibration left out, at the default's lags (the window fixed in ps), so that only the
    # start of the origins moves: a non-equilibrium start of each seed shows as a trend here
    span = time_ps * (1.0 - T_EQ_FRACTION)
    lags = multi_origin_window(span)
    out["t_eq_scan"] = {f"{f:g}": scan_row(*per_seed_D_alpha(data, "multi-origin", f,
                                                            window_ps=lags))
                        for f in (0.0, 0.05, 0.1, 0.2, 0.3) if time_ps * (1 - f) >= lags[1]}
    out["window_scan"] = {f"{lo:g}-{hi:g}": scan_row(*per_seed_D_alpha(
        data, "multi-origin", T_EQ_FRACTION, (lo, hi)))
        for lo, hi in ((0.05, 0.3), (0.1, 0.3), (0.1, 0.5), (0.2, 0.6), (0.2, 0.7),
                       (0.25, 0.75), (0.3, 0.8), (0.4, 0.9), (0.1, 0.9))}
    return out


def table(results: list[dict], meta: dict) -> str:
    lines = ["# Precision of D per ns of MD, and calibration of its error bars", "",
             f"Model {meta['model']}, trajectories of {meta['time']:g} ps ("
             + ", ".join(f"{r['T_K']:g} K: {r['seeds']} seeds, {r['total_ns']:.2f} ns"
                         for r in results)
             + f"), sub-ensembles of {meta['sub']} seeds ({meta['partitions']} random "
             "partitions); `.venv/dp/bin/python bench/bench_precision.py "
             f"--temps {','.join(format(r['T_K'], 'g') for r in results)} --seeds {meta['seeds']} "
             f"--time {meta['time']:g} --sub {meta['sub']}` ({meta['date']}).", "",
             "| T (K) | estimator | D (cm^2/s) | s.e. | alpha | per-seed CV | rel. s.e. per ns | "
             "bias (sub - rest) | cover 68 % (z / t) | cover 95 % (z / t) | 1 % needs | x less "
             "than paper |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for name, e in r["estimators"].items():
            c, a = e["calibration"], e["advice_1pc"]
            lines.append(
                f"| {r['T_K']:g} | {name} | {e['D_cm2s']:.3e} | {e['se_cm2s']:.1e} | "
                f"{e['alpha']:.2f} | {e['cv']:.3f} | {e['rel_se_per_ns']:.4f} | "
                f"{100 * c['bias_rel']:+.1f} +- "
                f"{100 * c['bias_rel_se']:.1f} % | {100 * c['coverage_n68']:.0f} / "
                f"{100 * c['coverage_t68']:.0f} % | {100 * c['coverage_n95']:.0f} / "
                f"{100 * c['coverage_t95']:.0f} % | {a['n_seeds']} x {a['time_ps']:.0f} ps = "
                f"{a['total_ns']:.1f} ns | {a['paper_total_ns'] / a['total_ns']:.1f} |")
    lines += ["", "MD time for equal precision, paper / multi-origin (same seed length): "
              + ", ".join(f"{r['T_K']:g} K {r['md_time_ratio_paper_over_multi']:.1f}x"
                          for r in results), "",
              "Multi-origin vs paper on the same seeds (paired, relative to the paper's D): "
              + ", ".join(f"{r['T_K']:g} K {100 * r['multi_vs_paper_paired']['rel_diff']:+.1f}"
                          f" +- {100 * r['multi_vs_paper_paired']['rel_diff_se']:.1f} %"
                          for r in results), "",
              "## Multi-origin: equilibration left out (fraction of the run, at the default's "
              "lags in ps) and lag window (fractions of the span after equilibration)", "",
              f"Default: equilibration {T_EQ_FRACTION:g} of the run, lag window "
              f"{MULTI_ORIGIN_WINDOW[0]:g}-{MULTI_ORIGIN_WINDOW[1]:g} of the remaining span. "
              "alpha: log-log slope of the seed-mean MSD in the window (the analysis warns "
              "below 0.75: too few hops past the cage).", "",
              "| T (K) | setting | D (cm^2/s) | vs default (paired) | alpha | per-seed CV |",
              "|---|---|---|---|---|---|"]
    for r in results:
        for kind, scan in (("t_eq", r["t_eq_scan"]), ("window", r["window_scan"])):
            for k, v in scan.items():
                lines.append(f"| {r['T_K']:g} | {kind} {k} | {v['D_cm2s']:.3e} | "
                             f"{100 * v['rel_diff']:+.1f} +- {100 * v['rel_diff_se']:.1f} % | "
                             f"{v['alpha']:.2f} | {v['cv']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="dp-7net")
    ap.add_argument("--temps", default="1000,1200")
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--time", type=float, default=8.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sub", type=int, default=4)
    ap.add_argument("--partitions", type=int, default=40)
    ap.add_argument("--runs", default=str(ROOT / "bench" / "work" / "precision"))
    ap.add_argument("--no-run", action="store_true", help="analyse existing ensembles only")
    a = ap.parse_args()
    t0 = time.time()
    results = []
    for T in (float(x) for x in a.temps.split(",")):
        s = EnsembleSettings(model=a.model, temperature_K=T, seeds=a.seeds, time_ps=a.time,
                             workers=a.workers, runs=a.runs, tag="precision", gpus="none")
        edir = Path(a.runs) / a.model / f"T{T:g}K-precision"
        if not a.no_run:
            edir = run_ensemble(s)
        results.append(study(edir, a.sub, a.partitions))
    meta = {"model": a.model, "seeds": a.seeds, "time": a.time, "sub": a.sub,
            "partitions": a.partitions, "date": time.strftime("%Y-%m-%d"),
            "wall_h": (time.time() - t0) / 3600.0}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "precision.json").write_text(json.dumps({"meta": meta, "results": results},
                                                   indent=1, default=float))
    text = table(results, meta)
    (OUT / "precision.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
