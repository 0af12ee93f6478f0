"""A protocol for a target precision: how many seeds of what length minimise the MD time.

From a pilot ensemble, the coefficient of variation of the per-seed D is measured at several
trajectory lengths L (each seed cut to L, the estimator refitted as it would be for a run of
that length) and modelled as ``CV(L)^2 = a^2 / L + b^2``: ``a`` the part that shrinks as a
trajectory sees more hops (He et al., npj Comput. Mater. 2018: ~3.43 / sqrt(N_hops)), ``b``
the scatter between seeds that a longer trajectory does not remove. ``n`` seeds of length L
give a relative standard error ``CV(L) / sqrt(n)``; each seed costs ``L + s`` of MD time
(``s``: its start-up, in ps of MD). For a target precision p the cost
``n (L + s) = (a^2 / L + b^2)(L + s) / p^2`` is smallest at ``L* = a sqrt(s) / b``; L is kept
within [L_min, CAP x the pilot's length] (beyond it the model is an extrapolation) and n is at
least :data:`MIN_SEEDS` (fewer seeds make the error bar itself unreliable).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import AnalysisError
from ..protocol import PAPER_SEEDS, PAPER_TIME_PS, default_window
from .ensemble_data import EnsembleData
from .estimators import estimate

#: Fewest seeds the advice gives (the seed-based error bar needs them).
MIN_SEEDS = 10
#: Longest trajectory the advice gives, as a multiple of the pilot's length.
CAP = 4.0
#: Fractions of the pilot's length the CV is measured at.
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
#: Start-up of one seed in seconds of wall time (process start shared by 4 seeds, LAMMPS and
#: model set-up, writing): bench/results/throughput.md.
SEED_OVERHEAD_S = 4.2


@dataclass(frozen=True)
class Advice:
    """Seeds x length (ps) that reach ``target`` (relative 1-sigma error of D) at the least MD
    time, for one estimator, and the model it rests on."""

    estimator: str
    target: float
    n_seeds: int
    time_ps: float
    total_ns: float
    paper_total_ns: float
    cv_at_pilot: float
    a: float
    b: float
    lengths_ps: tuple[float, ...]
    cvs: tuple[float, ...]
    trusted_ps: tuple[float, ...] = ()
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def truncated(data: EnsembleData, length_ps: float) -> EnsembleData:
    """``data`` as if every seed had run ``length_ps``."""
    from dataclasses import replace

    km = data.t_msd <= length_ps + 1e-9
    kw = {"t_msd": data.t_msd[km], "msd": data.msd[:, km]}
    if data.t_pos is not None:
        kp = data.t_pos <= length_ps + 1e-9
        kw.update(t_pos=data.t_pos[kp], li_unwrapped=data.li_unwrapped[:, kp],
                  framework_com=data.framework_com[:, kp]
                  if data.framework_com is not None else None)
    return replace(data, **kw)


def at_lengths(data: EnsembleData, estimator: str, fractions=FRACTIONS
               ) -> list[tuple[float, float, bool]]:
    """(length ps, per-seed CV of D, trusted) at fractions of the pilot's length, the
    estimator refitted with its own windows for each length. Trusted: the window is diffusive
    (:attr:`~lpsc_lmp.analysis.diffusion.DiffusionResult.diffusive`: log-log slope near 1 and
    no bend), for the paper's estimator also on the multi-origin MSD of the same length (the
    same physics, measured with far less noise, so a bend the single-origin curve hides in its
    scatter still counts), and D consistent with the full length's (paired over the seeds)."""
    total = float(data.t_msd[-1])
    rows = []
    for f in fractions:
        length = f * total
        cut = truncated(data, length)
        paper_w = default_window(length)
        try:
            res = estimate(cut, estimator, None, n_boot=0, paper_window=paper_w).result
        except AnalysisError:
            continue
        shape_ok = res.diffusive
        if estimator != "multi-origin" and cut.li_unwrapped is not None:
            try:
                multi = estimate(cut, "multi-origin", None, n_boot=0).result
                shape_ok = shape_ok and multi.diffusive
            except AnalysisError:  # too short for the multi-origin window: its own check only
                pass
        d = res.per_seed_D_cm2s
        if d.size >= 2 and np.mean(d) > 0:
            rows.append((length, d, shape_ok))
    if not rows:
        return []
    full = rows[-1][1]
    out = []
    for length, d, shape_ok in rows:
        diff = d - full
        se = float(np.std(diff, ddof=1) / math.sqrt(d.size)) if np.any(diff) else 0.0
        consistent = abs(float(np.mean(diff))) <= 2.0 * se + 1e-30
        out.append((length, float(np.std(d, ddof=1) / np.mean(d)),
                    bool(consistent and shape_ok)))
    return out


def fit_cv_model(lengths: list[float], cvs: list[float]) -> tuple[float, float]:
    """``a``, ``b`` of ``CV^2 = a^2 / L + b^2`` (non-negative least squares)."""
    x, y = 1.0 / np.asarray(lengths), np.asarray(cvs) ** 2
    if x.size == 1:
        return float(np.sqrt(y[0] / x[0])), 0.0
    design = np.column_stack([x, np.ones_like(x)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    a2, b2 = coef
    if b2 < 0:  # no persistent scatter seen: all of it falls as 1/L
        a2, b2 = float(np.dot(x, y) / np.dot(x, x)), 0.0
    if a2 < 0:  # no fall with length seen
        a2, b2 = 0.0, float(np.mean(y))
    return float(np.sqrt(a2)), float(np.sqrt(b2))


def advise(data: EnsembleData, estimator: str, target: float = 0.01,
           overhead_ps: float | None = None) -> Advice:
    """The cheapest seeds x length for ``target`` by ``estimator``, from the pilot ``data``.
    ``overhead_ps``: start-up of one seed in ps of MD (default: :data:`SEED_OVERHEAD_S` at the
    pilot's own rate from its manifests)."""
    if not target > 0:
        raise AnalysisError("the target precision must be > 0 (e.g. 0.01 for 1 %)")
    if data.n_done < 3:
        raise AnalysisError("advice needs a pilot of at least 3 seeds")
    rows = at_lengths(data, estimator)
    if not rows:
        raise AnalysisError(f"{data.path}: no positive D at any length; run longer")
    lengths, cvs = [r[0] for r in rows], [r[1] for r in rows]
    trusted = [r[0] for r in rows if r[2]]
    a, b = fit_cv_model(lengths, cvs)
    pilot = lengths[-1]
    if overhead_ps is None:
        overhead_ps = SEED_OVERHEAD_S * pilot_rate(data)
    s = max(float(overhead_ps), 1e-6)
    lo = min(trusted) if trusted else pilot
    hi = CAP * pilot
    best = a * math.sqrt(s) / b if b > 0 else hi
    length = min(max(best, lo), hi)
    notes = []
    if not trusted:
        notes.append("no length of the pilot is diffusive and consistent: the advice may be "
                     "biased; run a longer pilot")
    elif b == 0 or best > hi:
        notes.append(f"longer seeds would be cheaper still; capped at {CAP:g}x the pilot")
    cv2 = a * a / length + b * b
    n = max(MIN_SEEDS, math.ceil(cv2 / target ** 2))
    return Advice(estimator, target, n, round(length, 2), round(n * length / 1000.0, 2),
                  round(PAPER_SEEDS * PAPER_TIME_PS / 1000.0, 2), cvs[-1], a, b,
                  tuple(round(x, 2) for x in lengths), tuple(round(c, 4) for c in cvs),
                  tuple(round(x, 2) for x in trusted), "; ".join(notes))


def pilot_rate(data: EnsembleData) -> float:
    """Production rate of the pilot, ps of MD per second of wall time per worker (from its
    seeds' manifests; 0.0875, a 52-atom DeePMD cell on one core, if they do not say)."""
    from ..rundir import batch_share, read_manifest

    rates = []
    for seed in data.seeds:
        m = read_manifest(data.path / "seeds" / f"seed_{int(seed):06d}") or {}
        if m.get("wall_s") and m.get("time_ps"):
            rates.append(float(m["time_ps"]) / (float(m["wall_s"]) / batch_share(m)))
    return float(np.median(rates)) if rates else 0.0875
