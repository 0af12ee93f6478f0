"""The bad-input matrix: each case gives exit code 2 (1 where a step failed) and one line
naming the fix, and leaves nothing behind in runs/; physics of other settings is never mixed
into an ensemble."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lpsc_lmp.cli import main
from lpsc_lmp.files import write_text_atomic
from lpsc_lmp.paths import potentials_dir, templates_dir
from lpsc_lmp.rundir import seed_dir

#: the shortest ensemble the checks need: 0.2 ps, fit window 0.04-0.19 ps
SHORT = ["--model", "dp-7net", "--T", "1000", "--time", "0.2", "--workers", "1"]


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env or {})


def error_line(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output[-2000:]
    lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output[-2000:]
    return lines[0]


def nothing_in(path: Path) -> bool:
    return not path.exists() or not any(path.rglob("*"))


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    """A finished 2-seed ensemble of dp-7net (with a copy of the templates that made it)."""
    root = tmp_path_factory.mktemp("finished")
    tpl = root / "tpl"
    shutil.copytree(templates_dir(), tpl)
    r = invoke("ensemble", *SHORT, "--seeds", "2", "--runs", str(root / "runs"),
               "--templates", str(tpl))
    assert r.exit_code == 0, r.output[-3000:]
    return {"runs": root / "runs", "tpl": tpl, "edir": root / "runs" / "dp-7net" / "T1000K"}


def copy_ensemble(ensemble, dest: Path) -> Path:
    shutil.copytree(ensemble["runs"], dest / "runs")
    shutil.copytree(ensemble["tpl"], dest / "tpl")
    return dest / "runs"


@pytest.mark.parametrize("args,match", [
    (["--T", "inf"], "temperature must be a finite number > 0"),
    (["--T", "nan"], "temperature must be a finite number > 0"),
    (["--time", "-1"], "time must be a finite number > 0"),
    (["--tdamp", "0"], "thermostat damping time must be a finite number > 0"),
    (["--a", "0"], "lattice parameter must be a finite number > 0"),
    (["--tag", "../../escape"], "--tag '../../escape' must be a plain name"),
    (["--tag", "a b"], "must be a plain name"),
    (["--model", "../dp-7net"], "must be a plain name"),
    (["--gpus", "0;rm"], "--gpus '0;rm' is not auto, none or a list"),
    (["--max-retries", "-1"], "--max-retries must be >= 0"),
    (["--model", "mace-hse"], "lpsc-lmp models add"),
])
def test_bad_arguments_write_nothing(tmp_path, args, match):
    runs = tmp_path / "runs"
    r = invoke("ensemble", *SHORT, "--seeds", "1", "--runs", str(runs), *args)
    assert match in error_line(r)
    assert not runs.exists()


def test_unknown_model_names_add_and_train(tmp_path):
    line = error_line(invoke("ensemble", *SHORT, "--runs", str(tmp_path / "r"), "--model",
                             "mace-hse"))
    assert "models add" in line and "lpsc-lmp train" in line and "dp-7net" in line


def test_sweep_with_one_bad_model_writes_nothing(tmp_path):
    runs = tmp_path / "runs"
    r = invoke("sweep", "--models", "dp-7net,nope", "--temps", "700", "--seeds", "1",
               "--time", "0.2", "--runs", str(runs))
    assert "unknown model 'nope'" in error_line(r)
    assert not runs.exists()
    r = invoke("sweep", "--models", "dp-7net", "--temps", "700,inf", "--seeds", "1",
               "--time", "0.2", "--runs", str(runs))
    assert "finite number" in error_line(r)
    assert not runs.exists()


def test_lammps_error_in_template_found_by_preflight(tmp_path):
    tpl = tmp_path / "tpl"
    shutil.copytree(templates_dir(), tpl)
    deck = tpl / "nvt.lmp.j2"
    deck.write_text(deck.read_text().replace("md all nvt ", "md all nvtt "))
    runs = tmp_path / "runs"
    line = error_line(invoke("ensemble", *SHORT, "--seeds", "4", "--runs", str(runs),
                             "--templates", str(tpl)))
    assert "preflight" in line and "nvtt" in line and "nvt.lmp.j2" in line
    assert not runs.exists()


def _registry_copy(tmp_path: Path) -> Path:
    pot = tmp_path / "pot"
    shutil.copytree(potentials_dir() / "dp-7net", pot / "dp-7net")
    return pot


def test_model_file_that_does_not_match_its_card(tmp_path):
    pot = _registry_copy(tmp_path)
    frozen = pot / "dp-7net" / "frozen.pth"
    frozen.write_bytes(frozen.read_bytes()[:-100])  # truncated
    runs = tmp_path / "runs"
    line = error_line(invoke("ensemble", *SHORT, "--runs", str(runs),
                             env={"LPSC_LMP_POTENTIALS": str(pot)}))
    assert "does not match the sha256 on its card" in line and "frozen.pth" in line
    assert not runs.exists()


def test_truncated_derived_model_found_by_preflight(tmp_path):
    pot = _registry_copy(tmp_path)
    deploy = pot / "dp-7net" / "compressed.pth"
    deploy.write_bytes(deploy.read_bytes()[:1000])
    runs = tmp_path / "runs"
    line = error_line(invoke("ensemble", *SHORT, "--runs", str(runs),
                             env={"LPSC_LMP_POTENTIALS": str(pot)}))
    assert "preflight of dp-7net" in line
    assert not runs.exists()


def test_broken_card_yaml(tmp_path):
    pot = _registry_copy(tmp_path)
    shutil.copytree(potentials_dir() / "dp-7net", pot / "broken")
    (pot / "broken" / "card.yaml").write_text("name: broken\nroute: [deepmd\n")
    env = {"LPSC_LMP_POTENTIALS": str(pot)}
    line = error_line(invoke("models", "show", "broken", env=env))
    assert "not valid YAML" in line and "line" in line
    listed = invoke("models", "list", env=env)
    assert listed.exit_code == 0 and "dp-7net" in listed.output and "BROKEN" in listed.output


def test_runs_path_under_a_plain_file(tmp_path):
    (tmp_path / "file").write_text("x")
    line = error_line(invoke("ensemble", *SHORT, "--runs", str(tmp_path / "file" / "runs")))
    assert "is a file" in line and "--runs" in line


def test_read_only_runs_folder(tmp_path, monkeypatch):
    """(Simulated: the tests may run as root, whom permissions do not stop.)"""
    runs = tmp_path / "runs"
    runs.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access",
                        lambda p, m: False if Path(p) == runs and m & os.W_OK else real(p, m))
    line = error_line(invoke("ensemble", *SHORT, "--runs", str(runs)))
    assert "not writable" in line and "--runs" in line
    assert nothing_in(runs)


def test_disk_full_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "manifest.json"

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError):
        write_text_atomic(target, "{}")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_filesystem_errors_become_one_line(tmp_path, monkeypatch, ensemble):
    """Whatever the library does not foresee: the command line still says it in one line."""
    from lpsc_lmp.analysis import analyze

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(analyze.np, "savetxt", denied)
    r = invoke("analyze", str(ensemble["edir"]), "--out", str(tmp_path / "a"), "--no-figures")
    line = error_line(r, code=1)
    assert "Permission denied" in line and "writable" in line


def test_analyze_read_only_run_has_out(tmp_path, monkeypatch, ensemble):
    edir = ensemble["edir"]
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == edir / "analysis"
                        and m & os.W_OK else real(p, m))
    line = error_line(invoke("analyze", str(edir), "--no-figures", "--no-positions"), code=1)
    assert "--out DIR" in line
    out = tmp_path / "elsewhere"
    r = invoke("analyze", str(edir), "--no-figures", "--no-positions", "--out", str(out))
    assert r.exit_code == 0 and (out / "analysis.json").is_file()


def test_edited_included_template_is_refused_when_extending(tmp_path, ensemble):
    runs = copy_ensemble(ensemble, tmp_path)
    pair = tmp_path / "tpl" / "pair" / "deepmd.j2"
    pair.write_text(pair.read_text() + "pair_modify     shift yes\n")
    edir = runs / "dp-7net" / "T1000K"
    before = sorted(p.name for p in (edir / "seeds").iterdir())
    line = error_line(invoke("ensemble", *SHORT, "--seeds", "3", "--runs", str(runs),
                             "--templates", str(tmp_path / "tpl")))
    assert "other physics" in line and "pair/deepmd.j2" in line and "--tag" in line
    assert sorted(p.name for p in (edir / "seeds").iterdir()) == before


def test_lost_ensemble_json_other_settings_refused_same_rebuilt(tmp_path, ensemble):
    runs = copy_ensemble(ensemble, tmp_path)
    edir = runs / "dp-7net" / "T1000K"
    old = json.loads((edir / "ensemble.json").read_text())
    (edir / "ensemble.json").unlink()
    tpl = ["--templates", str(tmp_path / "tpl")]
    other = [a if a != "0.2" else "0.1" for a in SHORT]  # --time 0.1
    line = error_line(invoke("ensemble", *other, "--seeds", "2", "--runs", str(runs), *tpl))
    assert "other physics" in line and "--tag" in line
    assert not (edir / "ensemble.json").exists()
    r = invoke("ensemble", *SHORT, "--seeds", "2", "--runs", str(runs), *tpl)
    assert r.exit_code == 0, r.output[-2000:]
    new = json.loads((edir / "ensemble.json").read_text())
    assert new["fingerprint"] == old["fingerprint"] and new["rebuilt_from_manifests"]
    assert "0 to run" in r.output


def test_seeds_of_other_physics_are_never_averaged(tmp_path, ensemble):
    runs = copy_ensemble(ensemble, tmp_path)
    edir = runs / "dp-7net" / "T1000K"
    m = json.loads((seed_dir(edir, 2) / "manifest.json").read_text())
    m["fingerprint"] = "0" * 64  # as if run with another deck
    (seed_dir(edir, 2) / "manifest.json").write_text(json.dumps(m))
    r = invoke("analyze", str(edir), "--no-figures", "--no-positions")
    assert r.exit_code == 0, r.output
    assert "1 done" in r.output and "1 excluded" in r.output


def test_missing_seeds_counted_against_the_request(tmp_path, ensemble):
    runs = copy_ensemble(ensemble, tmp_path)
    edir = runs / "dp-7net" / "T1000K"
    info = json.loads((edir / "ensemble.json").read_text())
    assert info["n_seeds"] == 2
    info["n_seeds"] = 5  # as after `--seeds 5` was interrupted before seeds 3-5 started
    (edir / "ensemble.json").write_text(json.dumps(info))
    r = invoke("analyze", str(edir), "--no-figures", "--no-positions")
    assert "2 done, 0 failed, 3 missing" in r.output
    st = invoke("status", str(edir))
    assert st.exit_code == 0 and "     3" in st.output  # todo


def test_every_option_is_documented():
    from lpsc_lmp.cli.main import COMMANDS

    undocumented = []
    for name in COMMANDS:
        cmd = main.get_command(None, name)
        subs = cmd.commands.values() if hasattr(cmd, "commands") else [cmd]
        for c in subs:
            assert c.help and ("Example" in c.help or hasattr(cmd, "commands")), c.name
            for p in c.params:
                if p.param_type_name == "option" and not p.help and p.name != "help":
                    undocumented.append(f"{name} {c.name} --{p.name}")
    assert not undocumented, undocumented
