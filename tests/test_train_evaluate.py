"""A tiny DeePMD training through the CLI: card layout, LAMMPS = DeePMD's ASE calculator,
evaluation table/plots, and the refusals of ``train``."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.calculators.lj import LennardJones
from ase.io import read, write
from click.testing import CliRunner

from lpsc_lmp.cli import main
from lpsc_lmp.environments import thread_env

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data" / "lpsc-7net" / "train.extxyz"

#: keys of the card written by scripts/default_model/train_default.py
CARD_KEYS = ["name", "architecture", "reference", "reference_method", "type_map", "cutoff_A",
             "route", "env", "files", "derive", "frozen_sha256", "descriptor", "training",
             "errors", "regenerate"]
TRAINING_KEYS = ["program", "steps", "seconds", "input", "dataset", "dataset_sha256", "frames",
                 "sampling", "labelling"]


def orthorhombic(at):
    """LAMMPS rotates non-orthorhombic cells: keep the diagonal part (as test_parity_deepmd)."""
    at = at.copy()
    at.set_cell(np.diag(np.diag(at.cell.array)), scale_atoms=False)
    at.wrap()
    return at


def twenty_frames():
    """20 labelled LPSC frames: from data/lpsc-7net when present, else rattled and strained
    52-atom cells with Lennard-Jones labels (enough to train and deploy a model)."""
    if BUNDLED.is_file():
        frames = read(BUNDLED, index=":20")
        if len(frames) == 20:
            return frames, "data/lpsc-7net"
    from lpsc_lmp.structure import build_lpsc

    rng = np.random.default_rng(7)
    out = []
    for _ in range(20):
        at = build_lpsc()
        at.set_cell(at.cell.array * (1 + rng.uniform(-0.02, 0.02, 3))[:, None],
                    scale_atoms=True)
        at.rattle(0.08, seed=int(rng.integers(1 << 30)))
        at.calc = LennardJones(sigma=1.8, epsilon=0.02, rc=6.0)
        at.get_potential_energy()
        at.get_forces()
        at.get_stress()
        out.append(at)
    return out, "synthetic LJ"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    data, pot = tmp / "data", tmp / "potentials"
    frames, origin = twenty_frames()
    write(tmp / "src.extxyz", frames, format="extxyz")
    env = {"LPSC_LMP_POTENTIALS": str(pot), **thread_env(1)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        run = CliRunner().invoke
        r = run(main, ["data", "import", str(tmp / "src.extxyz"), "--name", "tiny",
                       "--data-root", str(data)])
        assert r.exit_code == 0, r.output
        r = run(main, ["data", "split", "tiny", "--test", "4", "--seed", "0",
                       "--data-root", str(data)])
        assert r.exit_code == 0, r.output
        t0 = time.perf_counter()
        r = run(main, ["train", "--arch", "deepmd", "--dataset", "tiny", "--name", "tiny-dp",
                       "--reference", "PBE", "--steps", "50", "--data-root", str(data)])
        seconds = time.perf_counter() - t0
        assert r.exit_code == 0, r.output
        yield {"tmp": tmp, "data": data, "pot": pot, "model": pot / "tiny-dp", "mp": mp,
               "output": r.output, "seconds": seconds, "origin": origin, "frames": frames}


def test_card_layout(trained):
    from lpsc_lmp.models.registry import load_card

    card = yaml.safe_load((trained["model"] / "card.yaml").read_text())
    assert set(CARD_KEYS) <= set(card) and set(TRAINING_KEYS) <= set(card["training"])
    assert card["dataset"] == "tiny" and card["reference"] == "PBE"
    assert card["architecture"] == "deepmd" and card["env"] == "dp"
    assert card["route"] == ["deepmd", "python-callback"]
    assert card["files"] == {"frozen": "frozen.pth", "deploy": "compressed.pth",
                             "checkpoint": "checkpoint.pt"}
    assert card["type_map"] == ["Li", "P", "S", "Cl"] and card["cutoff_A"] == 6.0
    assert card["training"]["frames"] == {"train": 16, "test": 4}
    assert card["training"]["steps"] == 50
    for split in ("train", "test", "test_compressed"):
        e = card["errors"][split]
        assert np.isfinite(e["energy_rmse_meV_atom"]) and np.isfinite(e["force_rmse_eV_A"])
    for f in ("frozen.pth", "compressed.pth", "checkpoint.pt", "training_input.json",
              "lcurve.out"):
        assert (trained["model"] / f).is_file()
    assert json.loads((trained["model"] / "training_input.json").read_text())[
        "training"]["numb_steps"] == 50
    c = load_card("tiny-dp")  # the registry accepts it
    assert c.deploy_file.is_file() and c.reference == "PBE"
    assert not [p for p in trained["pot"].iterdir() if p.name.startswith(".")]  # no staging


def test_lammps_equals_deepmd_ase_calculator(trained):
    from deepmd.calculator import DP

    from lpsc_lmp.md.singlepoint import lammps_singlepoint
    from lpsc_lmp.models.registry import load_card

    card = load_card("tiny-dp")
    calc = DP(str(card.require_deploy_file()))
    for at in trained["frames"][:3]:
        at = orthorhombic(at)
        lmp = lammps_singlepoint(at, card)
        assert np.isfinite(lmp["energy"]) and np.isfinite(lmp["forces"]).all()
        at.calc = calc
        assert lmp["energy"] == pytest.approx(at.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(lmp["forces"], at.get_forces(), atol=1e-6)
        assert np.abs(lmp["forces"]).max() > 0  # a real model, not zeros


def test_evaluate_table_files_and_plots(trained):
    from lpsc_lmp.training.deepmd import evaluate_dp
    from lpsc_lmp.training.evaluate import predict_deepmd

    out = trained["tmp"] / "evaluation"
    r = CliRunner().invoke(main, ["evaluate", "--model", "tiny-dp", "--data-root",
                                  str(trained["data"]), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "E train" in r.output and "F test" in r.output and "tiny-dp" in r.output
    card = yaml.safe_load((trained["model"] / "card.yaml").read_text())
    rows = list(csv.DictReader((out / "errors_tiny-dp.csv").open()))
    assert len(rows) == 1 and rows[0]["reference"] == "PBE"
    for split in ("train", "test"):
        e = card["errors"][split]
        assert float(rows[0][f"E_{split}_meV_atom"]) == pytest.approx(
            e["energy_rmse_meV_atom"], abs=2e-3)
        assert float(rows[0][f"F_{split}_eV_A"]) == pytest.approx(e["force_rmse_eV_A"],
                                                                  abs=2e-4)
    rec = json.loads((out / "errors_tiny-dp.json").read_text())
    assert rec["rows"][0]["frames"] == {"train": 16, "test": 4}
    for p in rec["rows"][0]["plots"]:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(rec["rows"][0]["plots"]) == 2
    # the parity-plot predictions are the same inference as evaluate_dp
    test = trained["data"] / "tiny" / "test.extxyz"
    pred = predict_deepmd(trained["model"] / "frozen.pth", test, ["Li", "P", "S", "Cl"])
    ref = evaluate_dp(trained["model"] / "frozen.pth", test, ["Li", "P", "S", "Cl"])
    rmse_e = np.sqrt(np.mean((pred["e_pred"] - pred["e_ref"]) ** 2)) * 1000
    rmse_f = np.sqrt(np.mean((pred["f_pred"] - pred["f_ref"]) ** 2))
    assert rmse_e == pytest.approx(ref["energy_rmse_meV_atom"], rel=1e-9)
    assert rmse_f == pytest.approx(ref["force_rmse_eV_A"], rel=1e-9)


def test_evaluate_all_skips_cards_without_dataset(trained):
    extra = trained["pot"] / "nodata"
    extra.mkdir()
    card = yaml.safe_load((trained["model"] / "card.yaml").read_text())
    card.pop("dataset")
    card["training"].pop("dataset")
    card["name"] = "nodata"
    (extra / "card.yaml").write_text(yaml.safe_dump(card))
    try:
        out = trained["tmp"] / "eval-all"
        r = CliRunner().invoke(main, ["evaluate", "--data-root", str(trained["data"]),
                                      "--out", str(out), "--no-plots"])
        assert r.exit_code == 0, r.output
        assert "nodata: its card names no dataset" in r.output
        rows = list(csv.DictReader((out / "errors.csv").open()))
        assert [row["model"] for row in rows] == ["tiny-dp"]
    finally:
        (extra / "card.yaml").unlink()
        extra.rmdir()


def test_train_refuses_existing_model(trained):
    before = (trained["model"] / "card.yaml").read_bytes()
    r = CliRunner().invoke(main, ["train", "--arch", "deepmd", "--dataset", "tiny", "--name",
                                  "tiny-dp", "--reference", "PBE", "--steps", "5",
                                  "--data-root", str(trained["data"])])
    assert r.exit_code == 2 and "--force" in r.output
    assert (trained["model"] / "card.yaml").read_bytes() == before


@pytest.mark.parametrize("arch", ["nequip", "allegro", "mace"])
def test_other_architectures_need_a_split(arch, tmp_path, monkeypatch):
    """(Their trainings: tests/test_train_others.py.)"""
    monkeypatch.setenv("LPSC_LMP_POTENTIALS", str(tmp_path / "pot"))
    r = CliRunner().invoke(main, ["train", "--arch", arch, "--dataset", "x", "--name", "m",
                                  "--reference", "PBE", "--data-root", str(tmp_path)])
    assert r.exit_code == 2
    assert "data split x" in r.output
    assert len(r.output.strip().splitlines()[-1]) < 200
    assert not (tmp_path / "pot").exists()


def test_train_needs_a_split(tmp_path, monkeypatch):
    monkeypatch.setenv("LPSC_LMP_POTENTIALS", str(tmp_path / "pot"))
    r = CliRunner().invoke(main, ["train", "--arch", "deepmd", "--dataset", "none", "--name",
                                  "m", "--reference", "PBE", "--data-root", str(tmp_path)])
    assert r.exit_code == 2 and "data split none" in r.output


def test_train_reports_progress_and_result(trained):
    out = trained["output"]
    assert "training deepmd 'tiny-dp'" in out and "dp output follows" in out
    assert "registered" in out and "meV/atom" in out
    print(f"tiny training ({trained['origin']}): {trained['seconds']:.1f} s")


def test_card_dataset_fallback():
    from lpsc_lmp.models.registry import ModelCard
    from lpsc_lmp.training.evaluate import card_dataset, resolve_dataset

    def card(raw):
        return ModelCard("m", "deepmd", "7net", ("Li",), 6.0, "deepmd", "dp", Path("."),
                         {"deploy": "x"}, raw)

    assert card_dataset(card({"dataset": "mine"})) == "mine"
    old = card({"training": {"dataset": "data/lpsc-7net (train.extxyz, test.extxyz)"}})
    assert card_dataset(old) == "data/lpsc-7net"
    assert resolve_dataset("data/lpsc-7net") == ROOT / "data" / "lpsc-7net"
    assert resolve_dataset("mine", Path("/x")) == Path("/x/mine")
    assert card_dataset(card({})) is None


@pytest.mark.slow
def test_force_retrain_replaces_and_keeps_provenance(trained):
    import shutil

    from lpsc_lmp.files import sha256_file

    src, dst = trained["model"], trained["pot"] / "tiny-dp2"
    shutil.copytree(src, dst)
    card = yaml.safe_load((dst / "card.yaml").read_text())
    card["name"], card["reference_method"] = "tiny-dp2", "hand-written provenance"
    (dst / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    old_sha = sha256_file(dst / "frozen.pth")
    r = CliRunner().invoke(main, ["train", "--arch", "deepmd", "--dataset", "tiny", "--name",
                                  "tiny-dp2", "--reference", "PBE", "--steps", "5", "--seed",
                                  "2", "--force", "--data-root", str(trained["data"])])
    assert r.exit_code == 0, r.output
    new = yaml.safe_load((dst / "card.yaml").read_text())
    assert new["training"]["steps"] == 5 and new["frozen_sha256"] != old_sha
    assert new["frozen_sha256"] == sha256_file(dst / "frozen.pth")
    assert new["reference_method"] == "hand-written provenance"
    assert not [p for p in trained["pot"].iterdir() if p.name.startswith(".")]
