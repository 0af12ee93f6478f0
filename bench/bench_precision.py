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
  against the paper's 300 x 70 ps = 21 ns;
- the hop-count reference of He et al. (npj Comput. Mater. 2018): an OLS fit of the MSD of
  one trajectory has a relative standard deviation of about 3.43 / sqrt(N_eff), N_eff the
  number of Li hops it holds, estimated as ``N_Li 6 D t / a^2`` with ``a`` the mean of the
  cell's intra- and inter-cage jump lengths (:func:`lpsc_lmp.study.barriers.jump_targets`);
  per ns of MD that is ``3.43 a / sqrt(N_Li 6 D 1000 ps)``;
- generalised least squares (:mod:`lpsc_lmp.analysis.gls`, random-walk covariance of the
  multi-origin MSD points) on the same curves, over the default lags and wider windows, against
  the default OLS fit (paired): the efficiency it buys and the bias it brings where the MSD
  still bends.

Usage:
    .venv/dp/bin/python bench/bench_precision.py [--model dp-7net] [--temps 1000,1200]
        [--seeds 32] [--time 8] [--workers 2] [--sub 4] [--partitions 40]
        [--runs bench/work/precision] [--no-run] [--out precision]
Writes bench/results/<out>.{md,json}. The ensembles stay in --runs (resumable; not
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

from lpsc_lmp.analysis.advisor import advise, truncated  # noqa: E402
from lpsc_lmp.analysis.diffusion import per_seed_slopes, window_diagnostic  # noqa: E402
from lpsc_lmp.analysis.ensemble_data import read_ensemble  # noqa: E402
from lpsc_lmp.analysis.estimators import (  # noqa: E402
    ESTIMATORS,
    MULTI_ORIGIN_WINDOW,
    T_EQ_FRACTION,
    multi_origin_curves,
    multi_origin_window,
)
from lpsc_lmp.analysis.gls import fit_points, gls_weights_for_frames  # noqa: E402
from lpsc_lmp.protocol import default_window  # noqa: E402
from lpsc_lmp.runs.settings import EnsembleSettings  # noqa: E402
from lpsc_lmp.runs.sweep import run_ensemble  # noqa: E402
from lpsc_lmp.structure import A_EXPERIMENT  # noqa: E402
from lpsc_lmp.study.barriers import jump_targets  # noqa: E402

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


def per_seed_D_gls(data, window_frac: tuple[float, float]) -> np.ndarray:
    """Per-seed D (cm^2/s): GLS line through the multi-origin MSD over ``window_frac`` of the
    span after the default equilibration."""
    t, curves = multi_origin_curves(data, T_EQ_FRACTION * float(data.t_msd[-1]))
    span = float(t[-1])
    idx = np.where((t >= window_frac[0] * span - 1e-9) & (t <= window_frac[1] * span + 1e-9))[0]
    idx = idx[fit_points(idx.size)]
    dt = float(t[1] - t[0])
    frames = np.round(t[idx] / dt).astype(int)
    w = gls_weights_for_frames(frames, dt, t.size - 1)
    return curves[:, idx] @ w[1] / 6 * A2PS_TO_CM2S


def hop_length_A() -> float:
    """Mean of the intra- and inter-cage jump lengths of the ordered cell (A)."""
    pos = jump_targets()
    from lpsc_lmp.structure import build_lpsc

    li = build_lpsc(A_EXPERIMENT).positions[0]
    return float(np.mean([np.linalg.norm(pos[k][0] - li) for k in ("intracage", "intercage")]))


def he_rel_se_per_ns(d_cm2s: float, n_li: int, hop_A: float) -> float:
    """He et al.'s 3.43 / sqrt(N_eff) for one ns of MD of a cell with ``n_li`` Li."""
    n_eff = n_li * 6 * d_cm2s / A2PS_TO_CM2S * 1000.0 / hop_A ** 2
    return 3.43 / math.sqrt(n_eff)


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
    n_li = int(data.li_unwrapped.shape[2])
    hop = hop_length_A()
    out["he_reference"] = {"n_li": n_li, "hop_A": hop, "rel_se_per_ns": {
        k: he_rel_se_per_ns(v["D_cm2s"], n_li, hop) for k, v in e.items()}}
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
    # D against trajectory length: every seed cut to L and refitted with the estimator's own
    # windows for L; a D that keeps falling with L comes from a window that is not yet diffusive
    out["length_scan"] = {}
    for est in ESTIMATORS:
        rows = {}
        for f in (0.25, 0.5, 0.75, 1.0):
            cut = truncated(data, f * time_ps)
            x, alpha = per_seed_D_alpha(cut, est)
            rows[f"{f * time_ps:g}"] = {**paired(per[est], x), "D_cm2s": float(x.mean()),
                                        "alpha": alpha, "cv": float(x.std(ddof=1) / x.mean())}
        out["length_scan"][est] = rows
    out["gls_scan"] = {}
    for lo, hi in ((0.25, 0.75), (0.25, 0.95), (0.15, 0.95), (0.05, 0.95)):
        x = per_seed_D_gls(data, (lo, hi))
        out["gls_scan"][f"{lo:g}-{hi:g}"] = {
            **scan_row(x, float("nan")), "rel_se_per_ns":
            float(x.std(ddof=1) / x.mean()) * math.sqrt(time_ps / 1000.0)}
    return out


def paired_cells(v: dict) -> str:
    """``D | change +- s.e. %`` of a scan row (the change paired per seed)."""
    return (f"{v['D_cm2s']:.3e} | {100 * v['rel_diff']:+.1f} +- {100 * v['rel_diff_se']:.1f} "
            "%")


def table(results: list[dict], meta: dict) -> str:
    lines = ["# Precision of D per ns of MD, and calibration of its error bars", "",
             f"Model {meta['model']}, trajectories of {meta['time']:g} ps ("
             + ", ".join(f"{r['T_K']:g} K: {r['seeds']} seeds, {r['total_ns']:.2f} ns"
                         for r in results)
             + f"), sub-ensembles of {meta['sub']} seeds ({meta['partitions']} random "
             "partitions); `.venv/dp/bin/python bench/bench_precision.py "
             f"--temps {','.join(format(r['T_K'], 'g') for r in results)} --seeds {meta['seeds']} "
             f"--time {meta['time']:g} --sub {meta['sub']}{meta['extra']}` ({meta['date']}).", "",
             "| T (K) | estimator | D (cm^2/s) | s.e. | alpha | per-seed CV | rel. s.e. per ns | "
             "He et al. per ns | bias (sub - rest) | cover 68 % (z / t) | cover 95 % (z / t) | "
             "1 % needs | x less than paper |", "|---|---|---|---|---|---|---|---|---|---|---|---|"
             "---|"]
    for r in results:
        for name, e in r["estimators"].items():
            c, a = e["calibration"], e["advice_1pc"]
            lines.append(
                f"| {r['T_K']:g} | {name} | {e['D_cm2s']:.3e} | {e['se_cm2s']:.1e} | "
                f"{e['alpha']:.2f} | {e['cv']:.3f} | {e['rel_se_per_ns']:.4f} | "
                f"{r['he_reference']['rel_se_per_ns'][name]:.4f} | "
                f"{100 * c['bias_rel']:+.1f} +- "
                f"{100 * c['bias_rel_se']:.1f} % | {100 * c['coverage_n68']:.0f} / "
                f"{100 * c['coverage_t68']:.0f} % | {100 * c['coverage_n95']:.0f} / "
                f"{100 * c['coverage_t95']:.0f} % | {a['n_seeds']} x {a['time_ps']:.0f} ps = "
                f"{a['total_ns']:.1f} ns | {a['paper_total_ns'] / a['total_ns']:.1f} |")
    h = results[0]["he_reference"]
    lines += ["", f"He et al. per ns: 3.43 / sqrt(N_eff) for one ns of MD, N_eff = N_Li 6 D t / "
              f"a^2 with N_Li = {h['n_li']} and a = {h['hop_A']:.2f} A (mean of the intra- and "
              "inter-cage jump lengths): the scatter an OLS fit of a trajectory's MSD has from "
              "the finite number of hops alone.", "",
              "MD time for equal precision, paper / multi-origin (same seed length): "
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
                lines.append(f"| {r['T_K']:g} | {kind} {k} | {paired_cells(v)} | "
                             f"{v['alpha']:.2f} | {v['cv']:.3f} |")
    lines += ["", "## D against trajectory length", "",
              "Every seed cut to L ps and refitted with the estimator's windows for L; change "
              "relative to the full length, paired per seed. A D that keeps falling with L "
              "comes from windows that are not yet diffusive.", "",
              "| T (K) | estimator | L (ps) | D (cm^2/s) | vs full length | alpha | per-seed CV |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        for est, rows in r["length_scan"].items():
            for length, v in rows.items():
                lines.append(f"| {r['T_K']:g} | {est} | {length} | {paired_cells(v)} | "
                             f"{v['alpha']:.2f} | {v['cv']:.3f} |")
    lines += ["", "## Generalised least squares over the multi-origin MSD points", "",
              "GLS with the covariance of a random walk's multi-origin MSD "
              "(`lpsc_lmp.analysis.gls`) on the same curves, windows as fractions of the span "
              "after equilibration, against the default OLS fit (0.25-0.75), paired per seed.",
              "", "| T (K) | GLS window | D (cm^2/s) | vs OLS default (paired) | per-seed CV | "
              "rel. s.e. per ns |", "|---|---|---|---|---|---|"]
    for r in results:
        for k, v in r["gls_scan"].items():
            lines.append(f"| {r['T_K']:g} | {k} | {paired_cells(v)} | "
                         f"{v['cv']:.3f} | {v['rel_se_per_ns']:.4f} |")
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
    ap.add_argument("--out", default="precision",
                    help="stem of the results in bench/results (e.g. precision-20ps)")
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
            "wall_h": (time.time() - t0) / 3600.0,
            "extra": "".join(f" --{k} {v}" for k, v in (("runs", a.runs), ("out", a.out))
                             if v != ap.get_default(k))}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{a.out}.json").write_text(json.dumps({"meta": meta, "results": results},
                                                   indent=1, default=float))
    text = table(results, meta)
    (OUT / f"{a.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
