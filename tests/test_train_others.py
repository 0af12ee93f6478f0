"""``lpsc-lmp train --arch mace|nequip|allegro`` and ``lpsc-lmp evaluate`` for those models.

Tiny trainings (2 epochs on 10 frames of data/lpsc-7net) through the CLI, each giving a
registered model that LAMMPS runs through the python-callback route with the same energies and
forces as the model's own ASE calculator (``route_checks parity`` in the model's env). NequIP and
Allegro spend most of their ~2 min in ``nequip-compile`` (AOTInductor), hence ``slow``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read, write
from click.testing import CliRunner

from lpsc_lmp.cli import main
from lpsc_lmp.environments import thread_env
from lpsc_lmp.md.route_checks import run_check
from lpsc_lmp.paths import env_python
from lpsc_lmp.templating import render_template

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "lpsc-7net"
BUNDLED = {"dp-7net": "deepmd", "mace-7net": "mace", "nequip-7net": "nequip"}

needs_data = pytest.mark.skipif(not (DATA / "train.extxyz").is_file(),
                                reason="data/lpsc-7net missing")


def _needs_env(env: str):
    return pytest.mark.skipif(not env_python(env).exists(), reason=f".venv/{env} missing")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Data root with dataset 'tiny' (10 train / 3 test frames of lpsc-7net), an empty
    potentials folder, and the environment pointing there."""
    if not (DATA / "train.extxyz").is_file():
        pytest.skip("data/lpsc-7net missing")
    tmp = tmp_path_factory.mktemp("train_others")
    ds = tmp / "data" / "tiny"
    ds.mkdir(parents=True)
    write(ds / "train.extxyz", read(DATA / "train.extxyz", index="::31"), format="extxyz")
    write(ds / "test.extxyz", read(DATA / "test.extxyz", index="::20"), format="extxyz")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"LPSC_LMP_POTENTIALS": str(tmp / "potentials"), **thread_env(1)}.items():
            mp.setenv(k, v)
        yield {"tmp": tmp, "data": tmp / "data", "pot": tmp / "potentials", "mp": mp}


def _train(tiny, arch: str) -> dict:
    name = f"tiny-{arch}"
    t0 = time.perf_counter()
    r = CliRunner().invoke(main, ["train", "--arch", arch, "--dataset", "tiny", "--name", name,
                                  "--reference", "7net", "--epochs", "2",
                                  "--data-root", str(tiny["data"])])
    seconds = time.perf_counter() - t0
    assert r.exit_code == 0, r.output[-3000:]
    assert f"registered {tiny['pot'] / name}" in r.output
    model = tiny["pot"] / name
    card = yaml.safe_load((model / "card.yaml").read_text())
    return {"name": name, "model": model, "card": card, "output": r.output, "seconds": seconds}


def _check_registered(tiny, res: dict, arch: str, env: str, files: set[str]) -> None:
    from lpsc_lmp.models.registry import load_card

    card = res["card"]
    assert card["architecture"] == arch and card["env"] == env
    assert card["route"][0] == arch and card["route"][-1] == "python-callback"
    assert card["reference"] == "7net" and card["dataset"] == "tiny"
    assert card["type_map"] == ["Li", "P", "S", "Cl"] and card["cutoff_A"] == 5.0
    assert card["training"]["frames"] == {"train": 10, "test": 3}
    assert card["training"]["epochs"] == 2
    for split in ("train", "test"):
        e = card["errors"][split]
        assert np.isfinite(e["energy_rmse_meV_atom"]) and e["energy_rmse_meV_atom"] > 0
        assert np.isfinite(e["force_rmse_eV_A"]) and e["force_rmse_eV_A"] > 0
    assert files <= {p.name for p in res["model"].iterdir()}
    assert not [p for p in tiny["pot"].iterdir() if p.name.startswith(".")]  # no staging left
    c = load_card(res["name"])
    assert c.deploy_file.is_file()
    # the trainer's output was streamed through the command
    assert "trainer output follows" in res["output"]


def _check_lammps_route(name: str, env: str) -> None:
    """LAMMPS (fix external, python-callback) = the model's ASE calculator on test frames."""
    res = run_check(env, ["parity", name, "--index", "::30"])
    assert res["frames"] >= 2
    assert res["max_dE_eV_atom"] < 1e-5
    assert res["max_dF_eV_A"] < 1e-4
    assert res["max_dvirial_eV"] < 1e-3
    e = [r["energy_eV"] / 52 for r in res["rows"]]  # a real model: about -4 eV/atom, not 0
    assert all(-6.0 < x < -2.0 for x in e), e


@_needs_env("mace")
def test_train_mace_registers_a_model_lammps_runs(tiny):
    res = _train(tiny, "mace")
    _check_registered(tiny, res, "mace", "mace", {"model.model", "training_args.txt",
                                                  "train.log", "card.yaml"})
    args = (res["model"] / "training_args.txt").read_text()
    assert "--max_num_epochs=2" in args and "--r_max=5.0" in args
    _check_lammps_route(res["name"], "mace")


class _LimitStrikes:
    """Stands in for the training's time-limit timer (threading.Timer): instead of after a
    wall time, the limit "strikes" when ``ready()`` says so, so the test does not depend on
    how fast the machine trains."""

    def __init__(self, ready):
        self.ready = ready

    def __call__(self, interval, function):
        outer = self

        class Timer(threading.Thread):
            daemon = True

            def __init__(self):
                super().__init__()
                self.cancelled = threading.Event()

            def run(self):
                while not self.cancelled.is_set():
                    if outer.ready():
                        function()
                        return
                    time.sleep(0.2)

            def cancel(self):
                self.cancelled.set()

        return Timer()


def _checkpoints(pot: Path) -> list[Path]:
    return list(pot.glob(".*.staging/work/checkpoints/*_epoch-*.pt"))


@_needs_env("mace")
def test_train_mace_time_limit_writes_model_from_last_checkpoint(tiny, monkeypatch):
    """--max-minutes for MACE: mace_run_train is stopped at the limit and MACE itself writes the
    model from the newest checkpoint (--restart_latest, no further epoch). The limit strikes
    once the first checkpoint exists, whatever the machine's speed."""
    from lpsc_lmp.training import common

    monkeypatch.setattr(common.threading, "Timer",
                        _LimitStrikes(lambda: bool(_checkpoints(tiny["pot"]))))
    name = "tiny-mace-timed"
    r = CliRunner().invoke(main, ["train", "--arch", "mace", "--dataset", "tiny", "--name", name,
                                  "--reference", "7net", "--max-minutes", "60",
                                  "--data-root", str(tiny["data"])])
    assert r.exit_code == 0, r.output[-3000:]
    card = yaml.safe_load((tiny["pot"] / name / "card.yaml").read_text())
    stopped = card["training"]["stopped"]
    epoch = int(stopped.split("epoch ")[1].split()[0])
    assert epoch % 5 == 0  # checkpoints come at validation epochs
    assert card["training"]["max_minutes"] == 60 and card["training"]["epochs"] is None
    log = (tiny["pot"] / name / "train.log").read_text()
    assert "--restart_latest" in log and "stopped after the time limit" in log
    # the model is that checkpoint: MACE's validation (= test split) at that epoch, as logged
    logged = float(log.split(f"Epoch {epoch}:")[1].split("RMSE_F=")[1].split()[0]) / 1000
    assert card["errors"]["test"]["force_rmse_eV_A"] == pytest.approx(logged, abs=2e-4)
    assert "--max-minutes 60" in card["regenerate"]


@_needs_env("mace")
def test_train_mace_time_limit_before_any_checkpoint_fails_cleanly(tiny, monkeypatch):
    from lpsc_lmp.training import common

    monkeypatch.setattr(common.threading, "Timer", _LimitStrikes(lambda: True))  # at once
    r = CliRunner().invoke(main, ["train", "--arch", "mace", "--dataset", "tiny", "--name",
                                  "tiny-mace-none", "--reference", "7net", "--max-minutes",
                                  "60", "--data-root", str(tiny["data"])])
    assert r.exit_code == 1 and "saved no checkpoint" in r.output.strip().splitlines()[-1]
    assert "--max-minutes" in r.output.strip().splitlines()[-1]
    assert not (tiny["pot"] / "tiny-mace-none").exists()
    assert not [p for p in tiny["pot"].iterdir() if p.name.startswith(".")]


@pytest.mark.slow
@_needs_env("nequip")
def test_train_nequip_registers_a_model_lammps_runs(tiny):
    res = _train(tiny, "nequip")
    _check_registered(tiny, res, "nequip", "nequip",
                      {"model.nequip.pt2", "tiny-nequip.nequip.zip", "training_config.yaml"})
    assert res["card"]["derive"] == {
        "model.nequip.pt2": {"from": "tiny-nequip.nequip.zip", "tool": "nequip-compile"},
        "model-pair.nequip.pt2": {"from": "tiny-nequip.nequip.zip", "tool": "nequip-compile",
                                  "target": "pair_nequip", "route": "nequip"}}
    cfg = yaml.safe_load((res["model"] / "training_config.yaml").read_text())
    assert cfg["training_module"]["model"]["_target_"] == "nequip.model.NequIPGNNModel"
    _check_lammps_route(res["name"], "nequip")


@pytest.mark.slow
@_needs_env("nequip")
def test_train_allegro_registers_a_model_lammps_runs(tiny):
    res = _train(tiny, "allegro")
    _check_registered(tiny, res, "allegro", "nequip",
                      {"model.nequip.pt2", "tiny-allegro.nequip.zip", "training_config.yaml"})
    cfg = yaml.safe_load((res["model"] / "training_config.yaml").read_text())
    assert cfg["training_module"]["model"]["_target_"] == "allegro.model.AllegroModel"
    _check_lammps_route(res["name"], "nequip")


def test_train_refusals(tiny):
    run = CliRunner().invoke
    base = ["--dataset", "tiny", "--reference", "7net", "--data-root", str(tiny["data"])]
    r = run(main, ["train", "--arch", "mace", "--name", "x", "--max-minutes", "0", *base])
    assert r.exit_code == 2 and "positive" in r.output
    r = run(main, ["train", "--arch", "deepmd", "--name", "x", "--epochs", "2", *base])
    assert r.exit_code == 2 and "--steps" in r.output
    r = run(main, ["train", "--arch", "nequip", "--name", "x", "--epochs", "0", *base])
    assert r.exit_code == 2 and ">= 1" in r.output
    r = run(main, ["train", "--arch", "allegro", "--name", "x", "--epochs", "1", "--dataset",
                   "nope", "--reference", "7net", "--data-root", str(tiny["data"])])
    assert r.exit_code == 2 and "not found" in r.output
    assert not (tiny["pot"] / "x").exists()


def test_nequip_templates_render_the_bundled_config():
    ctx = {"data_dir": "/d", "type_map": ["Li", "P", "S", "Cl"], "r_max": 5.0,
           "max_epochs": 60, "max_time": "00:00:18:00", "val_every": 2, "seed": 456}
    neq = yaml.safe_load(render_template(ctx, "train/nequip.yaml.j2").text)
    assert neq["max_epochs"] == 60 and neq["max_time"] == "00:00:18:00"
    assert neq["chemical_symbols"] == ["Li", "P", "S", "Cl"] and neq["cutoff_radius"] == 5.0
    assert neq["data"]["train_file_path"] == "${data_dir}/train.extxyz"
    model = neq["training_module"]["model"]
    assert model["_target_"] == "nequip.model.NequIPGNNModel" and model["seed"] == 456
    assert (model["num_layers"], model["l_max"], model["num_features"]) == (2, 1, 16)
    assert neq["trainer"]["check_val_every_n_epoch"] == 2
    tuned = yaml.safe_load(render_template(dict(ctx, init_package="/p/m.nequip.zip"),
                                           "train/allegro.yaml.j2").text)
    model = tuned["training_module"]["model"]  # fine-tuning replaces the model block
    assert model["_target_"] == "nequip.model.modify"
    assert model["model"] == {"_target_": "nequip.model.ModelFromPackage",
                              "package_path": "/p/m.nequip.zip"}
    assert model["modifiers"][0]["modifier"] == "modify_PerTypeScaleShift"
    ale = yaml.safe_load(render_template(dict(ctx, max_time=None), "train/allegro.yaml.j2").text)
    assert ale["max_time"] is None
    assert ale["training_module"]["model"]["_target_"] == "allegro.model.AllegroModel"
    assert ale["trainer"] == neq["trainer"] and ale["data"] == neq["data"]
    args = render_template({"name": "m", "seed": 1, "r_max": 5.0, "train_file": "a",
                            "test_file": "b", "atomic_numbers": [3, 15, 16, 17], "epochs": 20,
                            "eval_interval": 5}, "train/mace.args.j2").text.split()
    assert "--max_num_epochs=20" in args and "--num_channels=16" in args and "--ema" in args
    two = render_template({"name": "m", "seed": 1, "r_max": 5.0, "train_file": "a",
                           "test_file": "b", "atomic_numbers": [3, 15, 16, 17], "epochs": 20,
                           "eval_interval": 1, "stage_two": True, "start_stage_two": 15,
                           "init_from": "/p/f.model"}, "train/mace.args.j2").text.split()
    assert {"--stage_two", "--start_stage_two=15", "--stage_two_energy_weight=1000",
            "--foundation_model=/p/f.model", "--multiheads_finetuning=False"} <= set(two)


def _evaluate(tmp: Path, extra: list[str]) -> tuple[dict, str]:
    out = tmp / "evaluation"
    r = CliRunner().invoke(main, ["evaluate", *[a for m in BUNDLED for a in ("--model", m)],
                                  "--no-plots", "--out", str(out), *extra])
    assert r.exit_code == 0, r.output[-3000:]
    js = next(out.glob("errors_*.json"))
    return json.loads(js.read_text()), r.output


@needs_data
@_needs_env("mace")
@_needs_env("nequip")
def test_evaluate_lists_bundled_models_as_their_cards(tmp_path, monkeypatch):
    """Table 1 layout with dp-7net, mace-7net and nequip-7net on data/lpsc-7net (~40 s): each
    model's own inference reproduces the errors in its card."""
    from lpsc_lmp.models.registry import load_card

    monkeypatch.delenv("LPSC_LMP_POTENTIALS", raising=False)
    rec, output = _evaluate(tmp_path, [])
    rows = {r["model"]: r for r in rec["rows"]}
    assert set(rows) == set(BUNDLED) and not rec["skipped"]
    assert "E train" in output and "F test" in output
    for r in rec["rows"]:
        assert r["architecture"] == BUNDLED[r["model"]] and r["model"] in output
        assert r["frames"] == {"train": 308, "test": 60}
        err = load_card(r["model"]).raw["errors"]
        for s in ("train", "test"):
            assert r[f"E_{s}_meV_atom"] == pytest.approx(err[s]["energy_rmse_meV_atom"],
                                                         abs=0.05), r
            assert r[f"F_{s}_eV_A"] == pytest.approx(err[s]["force_rmse_eV_A"], abs=0.001), r
