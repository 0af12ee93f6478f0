"""Estimators of D side by side, and the protocol advisor, on synthetic random walks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_analysis_cli import make_ensemble

from lpsc_lmp.analysis.advisor import MIN_SEEDS, advise, fit_cv_model
from lpsc_lmp.analysis.ensemble_data import read_ensemble
from lpsc_lmp.analysis.estimators import estimate
from lpsc_lmp.cli import main
from lpsc_lmp.errors import AnalysisError


@pytest.fixture(scope="module")
def walks(tmp_path_factory) -> Path:
    """24 seeds of 3-D random walks, D = 0.1 A^2/ps, 7 ps, with a drifting framework."""
    return make_ensemble(tmp_path_factory.mktemp("walks"), "m", 1000.0, 0.1, n_seeds=24,
                         rng_seed=3)


def test_both_estimators_find_the_true_D_and_multi_origin_is_not_noisier(walks) -> None:
    """Unbiased on walks; per-seed scatter no larger than the paper's (how much smaller it is
    on the project's dynamics is measured in bench/results/precision.md, not asserted here)."""
    data = read_ensemble(walks)
    paper = estimate(data, "paper", paper_window=tuple(data.meta["fit_window_ps"]))
    multi = estimate(data, "multi-origin")
    for e in (paper, multi):
        r = e.result
        assert abs(r.D_cm2s - 1e-5) < 3.5 * r.stderr_cm2s, (e.estimator, r.D_cm2s)
    cv = {e.estimator: np.std(e.result.per_seed_D_cm2s, ddof=1) / e.result.D_cm2s
          for e in (paper, multi)}
    assert cv["multi-origin"] < 1.1 * cv["paper"], cv
    assert multi.t_eq_ps == pytest.approx(0.7)  # 10 % of the 7 ps run left out
    assert multi.to_dict()["estimator"] == "multi-origin"


def test_multi_origin_needs_positions(walks) -> None:
    data = read_ensemble(walks, load_positions=False)
    with pytest.raises(AnalysisError, match="positions"):
        estimate(data, "multi-origin")
    with pytest.raises(AnalysisError, match="unknown"):
        estimate(data, "nope")


def test_cv_model_fit() -> None:
    lengths = np.array([5.0, 10.0, 20.0, 40.0])
    a, b = 2.0, 0.1
    cvs = np.sqrt(a * a / lengths + b * b)
    fa, fb = fit_cv_model(list(lengths), list(cvs))
    assert fa == pytest.approx(a, rel=1e-6) and fb == pytest.approx(b, rel=1e-6)
    fa, fb = fit_cv_model(list(lengths), list(a / np.sqrt(lengths)))
    assert fa == pytest.approx(a, rel=1e-6) and fb == pytest.approx(0.0, abs=1e-6)


def test_advice_on_random_walks(walks) -> None:
    data = read_ensemble(walks)
    adv = advise(data, "multi-origin", 0.01, overhead_ps=0.4)
    # a random walk has no caged regime: every length is trusted, and the scatter of a window
    # that scales with the run does not fall with length, so short seeds are cheapest
    assert adv.trusted_ps == adv.lengths_ps
    assert adv.time_ps == pytest.approx(adv.lengths_ps[0], rel=0.1)
    assert adv.n_seeds >= MIN_SEEDS
    assert adv.total_ns == pytest.approx(adv.n_seeds * adv.time_ps / 1000.0, rel=0.02)
    assert len(adv.lengths_ps) == len(adv.cvs) >= 3
    paper = advise(data, "paper", 0.01, overhead_ps=0.4)
    assert paper.total_ns > adv.total_ns


def test_advice_refuses_caged_short_lengths(tmp_path) -> None:
    """Walks whose steps grow with time (sub-diffusive early): short lengths are not trusted."""
    ens = make_ensemble(tmp_path, "m", 1000.0, 0.1, n_seeds=12, rng_seed=5)
    data = read_ensemble(ens)
    t = data.t_msd
    caged = data.msd * (1 - np.exp(-t / 0.5))[None, :, None] ** 2  # alpha ~ 3 -> 1
    data = data.__class__(**{**data.__dict__, "msd": caged})
    adv = advise(data, "paper", 0.01, overhead_ps=0.4)
    assert adv.trusted_ps and min(adv.trusted_ps) > adv.lengths_ps[0]
    assert adv.time_ps >= min(adv.trusted_ps)


def test_analyze_estimator_option_prints_estimator_and_advice(walks, tmp_path) -> None:
    out = tmp_path / "a"
    r = CliRunner().invoke(main, ["analyze", str(walks), "--estimator", "multi-origin",
                                  "--no-figures", "--out", str(out), "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    assert "estimator multi-origin" in r.output
    assert "advice: 1% (1 sigma) with the multi-origin estimator" in r.output
    assert "paper estimator: D = " in r.output
    s = json.loads((out / "analysis.json").read_text())
    assert s["estimator"] == "multi-origin" and s["diffusion"]["estimator"] == "multi-origin"
    assert set(s["estimators"]) == {"paper", "multi-origin"}
    assert (out / "msd_mean.csv").read_text().startswith("lag_ps,")


def test_arrhenius_names_its_estimator(tmp_path) -> None:
    for i, T in enumerate((800.0, 1000.0, 1200.0)):
        make_ensemble(tmp_path, "m", T, 0.1 * np.exp(-0.3 / 8.617e-5 * (1 / T - 1 / 1000)),
                      n_seeds=8, rng_seed=10 + i)
    r = CliRunner().invoke(main, ["arrhenius", "--model", "m", "--runs", str(tmp_path),
                                  "--estimator", "multi-origin", "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    assert "multi-origin estimator" in r.output
    assert json.loads((tmp_path / "m" / "arrhenius.json").read_text())["estimator"] == \
        "multi-origin"
