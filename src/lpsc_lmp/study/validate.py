"""A model against its teacher: the same seeds in LAMMPS with the student and with the universal
potential that labelled its training data (``lpsc-lmp validate``).

Both run as ordinary ensembles (the teacher through the python-callback route with its own ASE
calculator, :mod:`lpsc_lmp.study.teachers`), from the same structure and, seed for seed, the
same initial velocities (LAMMPS ``velocity ... loop geom`` with the seed number), in one seed
queue; their directories are tagged ``validate``. Compared: D of each (the chosen estimator,
errors from the seeds), their ratio with its propagated error, the paired per-seed ratio, and
the seed-mean MSD curves (figure). Teachers cost about 0.4 s per step of a 52-atom cell on one
core, so a validation is a few seeds of a few ps at a high temperature.

Written to ``<runs>/<model>/validate_T<T>K.json`` and ``.png``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.ensemble_data import read_ensemble
from ..analysis.estimators import DESCRIPTION, estimate
from ..files import write_text_atomic
from ..models.registry import load_card
from ..paths import runs_dir
from ..runs.settings import EnsembleSettings
from ..runs.sweep import run_sweep
from .teachers import teacher_of

TAG = "validate"


def ratio_with_error(a: float, sa: float, b: float, sb: float) -> tuple[float, float]:
    """a / b and its first-order error."""
    r = a / b
    return r, abs(r) * math.sqrt((sa / a) ** 2 + (sb / b) ** 2)


def validate(model: str, teacher: str | None = None, temperature_K: float = 1200.0,
             seeds: int = 2, time_ps: float = 4.0, workers: int = 2, runs: str | None = None,
             estimator: str = "multi-origin", n_boot: int = 1000, echo=print
             ) -> dict[str, Any]:
    """Run (or resume) the student's and the teacher's ensembles and compare them."""
    card = load_card(model)
    teacher = teacher or teacher_of(card)
    load_card(teacher)  # a clear error now if it is not registered
    settings = [EnsembleSettings(model=m, temperature_K=temperature_K, seeds=seeds,
                                 time_ps=time_ps, workers=workers, runs=runs, tag=TAG,
                                 gpus="none") for m in (teacher, model)]
    edir_t, edir_s = run_sweep(settings, echo=echo)
    data = {"teacher": read_ensemble(edir_t), "student": read_ensemble(edir_s)}
    common = sorted(set(data["teacher"].seeds.tolist()) & set(data["student"].seeds.tolist()))
    out: dict[str, Any] = {"model": model, "teacher": teacher, "temperature_K": temperature_K,
                           "time_ps": time_ps, "estimator": estimator,
                           "estimator_description": DESCRIPTION[estimator],
                           "seeds": common}
    per_seed = {}
    curves = {}
    for who, d in data.items():
        est = estimate(d, estimator, n_boot=n_boot,
                       paper_window=tuple(d.meta["fit_window_ps"]))
        r = est.result
        out[who] = {"name": teacher if who == "teacher" else model, "D_cm2s": r.D_cm2s,
                    "stderr_cm2s": r.stderr_cm2s, "ci95_cm2s": list(r.ci95_cm2s),
                    "n_seeds": r.n_seeds, "warnings": list(r.warnings),
                    "alpha_window": r.alpha_window, "slope_drop": r.slope_drop,
                    "diffusive": r.diffusive,
                    "pressure_GPa": (d.pressure_GPa() or (None, None))[0]}
        per_seed[who] = dict(zip(d.seeds.tolist(), r.per_seed_D_cm2s, strict=True))
        curves[who] = (d.t_msd, d.msd_total.mean(axis=0),
                       d.msd_total.std(axis=0, ddof=1) / math.sqrt(d.n_done)
                       if d.n_done > 1 else np.zeros_like(d.t_msd))
    s, t = out["student"], out["teacher"]
    out["ratio"], out["ratio_err"] = ratio_with_error(s["D_cm2s"], s["stderr_cm2s"] or 0.0,
                                                      t["D_cm2s"], t["stderr_cm2s"] or 0.0)
    pr = np.array([per_seed["student"][k] / per_seed["teacher"][k] for k in common])
    out["paired_ratio"] = float(pr.mean()) if pr.size else float("nan")
    out["paired_ratio_err"] = float(pr.std(ddof=1) / math.sqrt(pr.size)) if pr.size > 1 \
        else float("nan")
    folder = Path(runs).resolve() if runs else runs_dir().resolve()
    stem = folder / model / f"validate_T{temperature_K:g}K"
    write_text_atomic(stem.with_suffix(".json"), json.dumps(out, indent=1, default=float))
    plot_curves(curves, out, stem)
    return out


def plot_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                out: dict[str, Any], stem: Path) -> None:
    """Seed-mean MSD of student and teacher with their standard errors."""
    from ..analysis.plots import plt, save

    fig, ax = plt.subplots(figsize=(5.0, 3.8))
    for who, color in (("teacher", "k"), ("student", "tab:red")):
        t, m, se = curves[who]
        ax.plot(t, m, color=color, lw=1.2, label=f"{out[who]['name']} ({who})")
        ax.fill_between(t, m - se, m + se, color=color, alpha=0.2)
    ax.set_xlabel("t (ps)")
    ax.set_ylabel(r"Li MSD ($\AA^2$)")
    ax.set_title(f"{out['model']} vs {out['teacher']}, {out['temperature_K']:g} K, "
                 f"{len(out['seeds'])} seeds", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, stem)
