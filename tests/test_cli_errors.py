"""Bad input: a one-line error that names the fix, exit code 2, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lpsc_lmp.cli import main
from lpsc_lmp.paths import potentials_dir, templates_dir


def run(args, env=None):
    return CliRunner().invoke(main, args, env=env or {})


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture()
def runs(tmp_path):
    return tmp_path / "runs"


def base(runs, *extra):
    return ["ensemble", "--model", "dp-7net", "--T", "1000", "--seeds", "2", "--time", "1",
            "--runs", str(runs), *extra]


@pytest.mark.parametrize("args,match", [
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--T", "0"], "temperature must be a finite number > 0"),
    (["--T", "-5"], "temperature must be a finite number > 0"),
    (["--time", "1", "--fit-window", "0.2", "5"], "shorter than the fit window"),
    (["--fit-window", "0.8", "0.2"], "fit window"),
    (["--seeds", "0"], "at least 1 seed"),
    (["--supercell", "0"], "supercell must be >= 1"),
    (["--structure", "/nonexistent/file.cif"], "not found"),
])
def test_bad_ensemble_input(runs, args, match):
    res = run(base(runs, *args))
    assert match in one_line_error(res)
    assert not runs.exists()


def test_missing_model_file(runs, tmp_path):
    pot = tmp_path / "pot"
    shutil.copytree(potentials_dir() / "dp-7net", pot / "dp-7net",
                    ignore=shutil.ignore_patterns("*.pth"))
    res = run(base(runs), env={"LPSC_LMP_POTENTIALS": str(pot)})
    # compressed.pth would be derived on first use, but its source frozen.pth is gone too
    assert "frozen.pth (source of compressed.pth) is missing; restore it" in one_line_error(res)
    assert not runs.exists()


def test_template_error(runs, tmp_path):
    tpl = tmp_path / "tpl"
    shutil.copytree(templates_dir(), tpl)
    (tpl / "nvt.lmp.j2").write_text((tpl / "nvt.lmp.j2").read_text()
                                    .replace("{{ seed }}", "{{ sede }}"))
    res = run(base(runs, "--templates", str(tpl)))
    assert "'sede' is undefined" in one_line_error(res)
    assert not runs.exists()


def test_structure_with_foreign_elements_is_refused(runs, tmp_path):
    from lpsc_lmp.structure import build_lpsc

    atoms = build_lpsc()
    atoms[0].symbol = "Na"
    path = tmp_path / "na.extxyz"
    atoms.write(path)
    res = run(base(runs, "--structure", str(path)))
    assert "['Na']" in one_line_error(res)
    assert not runs.exists()


def test_models_list_and_show():
    res = run(["models", "list"])
    assert res.exit_code == 0 and "dp-7net" in res.output and "deepmd" in res.output
    lines = {ln.split()[0]: ln for ln in res.output.splitlines()}
    assert "labels 7net-0" in lines["dp-7net"]
    if "7net-mf-0-r2scan" in lines:
        assert " teacher " in lines["7net-mf-0-r2scan"]
    if "mace-r2scan-mf" in lines:
        assert "r2SCAN   labels 7net-mf-0 R2SCAN" in lines["mace-r2scan-mf"]
    res = run(["models", "show", "dp-7net"])
    assert res.exit_code == 0 and "type_map" in res.output and "errors" in res.output
    assert "unknown model" in one_line_error(run(["models", "show", "nope"]))


def test_render_prints_deck(runs):
    res = run(["render", "--model", "dp-7net", "--T", "800", "--time", "2", "--seed", "7",
               "--runs", str(runs)])
    assert res.exit_code == 0, res.output
    assert "velocity        all create 800.0 7 " in res.output
    assert "pair_style      deepmd " in res.output
    assert res.output.rstrip().endswith("run             2000")
    assert not runs.exists()


def test_structure_command(tmp_path):
    out = tmp_path / "s.data"
    res = run(["structure", "--supercell", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Li192" in res.output and "416 atoms" in res.output and Path(out).is_file()
