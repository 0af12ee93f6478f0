"""Studies: the study file, the budget, teachers, and a tiny study end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lpsc_lmp.analysis.compare import DeltaResult
from lpsc_lmp.cli import main
from lpsc_lmp.errors import InputError
from lpsc_lmp.models.registry import load_card
from lpsc_lmp.study.budget import budget, verdict
from lpsc_lmp.study.spec import load_spec
from lpsc_lmp.study.teachers import teacher_of


def write(tmp_path: Path, **kw) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"models": ["dp-pbe-mf"], "temperatures": [1200], **kw}))
    return p


@pytest.mark.parametrize("kw,match", [
    ({"temperatures": ["hot"]}, "temperatures must be numbers"),
    ({"temperatures": [-5]}, "positive"),
    ({"seeds": 1}, "seeds must be >= 2"),
    ({"estimator": "x"}, "estimator"),
    ({"colour": 1}, "unknown key"),
    ({"models": ["../x"]}, "plain name"),
])
def test_bad_study_files(tmp_path, kw, match):
    with pytest.raises(InputError, match=match):
        load_spec(write(tmp_path, **kw))


def test_study_file_defaults(tmp_path):
    spec = load_spec(write(tmp_path, committee=["dp-pbe-mf-seed2"]))
    assert spec.name == "s" and spec.estimator == "multi-origin" and spec.cell == "experimental"
    assert spec.committee_temperatures == [1200.0]


def _delta(v, e, label=""):
    return DeltaResult(v, e, (v - 2 * e, v + 2 * e), float("nan"), ("a", "b"), (1.0, 2.0), label)


def test_budget_names_the_dominant_source():
    entries = budget({"a": 0.05, "b": 0.07}, {"dp": _delta(0.1, 0.05, "4 seeds")},
                     {"PBE": _delta(0.8, 0.1, "PBE: deepmd, mace")},
                     {"deepmd": _delta(0.3, 0.1, "PBE vs r2SCAN")}, {"dp": (0.05, 0.04)})
    assert [e.source for e in entries] == ["statistical", "training seed", "architecture",
                                            "functional", "cell"]
    assert entries[0].value == pytest.approx(0.06)
    text = verdict(entries)
    assert text.startswith("architecture dominates")
    assert "architecture effects exceed functional effects" in text
    close = budget({}, {}, {"PBE": _delta(0.3, 0.1)}, {"deepmd": _delta(0.35, 0.1)}, {})
    assert "comparable" in verdict(close) and "equal within their errors" in verdict(close)
    xc = budget({}, {}, {"PBE": _delta(0.1, 0.02)}, {"deepmd": _delta(0.5, 0.05)}, {})
    assert "functional effects exceed architecture effects" in verdict(xc)


def test_teachers_of_the_bundled_models():
    assert teacher_of(load_card("dp-7net")) == "7net-0"
    for m, t in (("dp-pbe-mf", "7net-mf-0-pbe"), ("mace-r2scan-mf", "7net-mf-0-r2scan")):
        if (Path(__file__).parents[1] / "potentials" / m).is_dir():
            assert teacher_of(load_card(m)) == t


def test_tiny_study_end_to_end(tmp_path):
    """Two DeePMD models (PBE and r2SCAN labels) at one temperature: ensembles, D, Delta_XC,
    budget and report, then --report-only rewrites the report from what ran."""
    models = [m for m in ("dp-pbe-mf", "dp-r2scan-mf")
              if (Path(__file__).parents[1] / "potentials" / m).is_dir()]
    if len(models) < 2:
        pytest.skip("needs the bundled dp-pbe-mf and dp-r2scan-mf")
    spec = write(tmp_path, name="tiny", models=models, seeds=2, time_ps=1.5, workers=2,
                 runs=str(tmp_path / "runs"), report=str(tmp_path / "report"))
    r = CliRunner().invoke(main, ["study", str(spec)])
    assert r.exit_code == 0, r.output[-3000:]
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Diffusion coefficients" in text and "dp-r2scan-mf" in text
    assert "functional | deepmd: PBE vs r2SCAN (reference r2SCAN)" in text
    assert (tmp_path / "report" / "figures" / "budget_T1200K.png").is_file()
    s = json.loads((tmp_path / "report" / "study.json").read_text())
    assert {d["model"] for d in s["D"]} == set(models)
    assert all(d["pressure_GPa"] is not None for d in s["D"])
    again = CliRunner().invoke(main, ["study", str(spec), "--report-only"])
    assert again.exit_code == 0, again.output[-2000:]


def test_teacher_table_names_the_teacher_and_flags_short_windows():
    from lpsc_lmp.study.report import validation_section

    side = {"D_cm2s": 7e-5, "stderr_cm2s": 1e-5, "warnings": [], "alpha_window": 0.98,
            "diffusive": True}
    v = {"model": "dp-pbe-mf", "temperature_K": 1200.0, "time_ps": 2.0, "seeds": [1, 2],
         "student": {**side, "name": "dp-pbe-mf"},
         "teacher": {**side, "name": "7net-mf-0-pbe", "alpha_window": 0.67,
                     "diffusive": False},
         "ratio": 1.0, "ratio_err": 0.2, "paired_ratio": 1.0, "paired_ratio_err": 0.1}
    row = validation_section({"dp-pbe-mf": v})[-2]
    assert row.startswith("| dp-pbe-mf | 7net-mf-0-pbe | 1200 | 2 x 2 |")
    assert "teacher not diffusive" in row and "0.67" in row and "{" not in row
    ok = validation_section({"dp-pbe-mf": {**v, "teacher": {**side, "name": "t"}}})[-2]
    assert ok.endswith("| ok |")


def test_diffusive_follows_alpha_and_bend():
    """The one rule behind the window warnings and the report's verdicts."""
    import numpy as np

    from lpsc_lmp.analysis.diffusion import MAX_SLOPE_DROP, DiffusionResult, still_bends

    base = dict(D_A2ps=1.0, D_cm2s=1e-4, stderr_cm2s=1e-5, ci95_cm2s=(0, 1),
                per_seed_D_cm2s=np.ones(3), n_seeds=3, window_ps=(1.0, 2.0))
    assert DiffusionResult(**base, alpha_window=1.0, slope_drop=0.0, slope_drop_err=0.01).diffusive
    assert not DiffusionResult(**base, alpha_window=0.6, slope_drop=0.0,
                               slope_drop_err=0.01).diffusive
    assert not DiffusionResult(**base, alpha_window=1.0, slope_drop=2 * MAX_SLOPE_DROP,
                               slope_drop_err=0.01).diffusive
    assert not still_bends(2 * MAX_SLOPE_DROP, MAX_SLOPE_DROP * 1.5)  # within its error


def test_barrier_table_rows():
    from lpsc_lmp.study.report import barriers_section

    bars = {"7net-0": {"jumps": {
        "doublet": {"unstable_end": True, "end_hop_A": 0.2},
        "intracage": {"barrier_eV": 0.0107, "end_energy_eV": -0.037, "distance_A": 1.46},
        "intercage": {"barrier_eV": 2.81, "end_energy_eV": -0.1, "distance_A": 4.44,
                      "end_from_site_A": 1.8, "converged": False}}}}
    row = barriers_section(bars)[4]
    assert row == ("| 7net-0 | no metastable end | 0.011 (end -0.04 eV, hop 1.5 A) | "
                   "band not converged: 2.810 (end -0.10 eV, hop 4.4 A, off 1.8 A) |")
    lines = barriers_section(bars, ["chgnet"])
    assert "Not computed yet: chgnet (`lpsc-lmp barriers chgnet`, or rerun the study)." in lines
