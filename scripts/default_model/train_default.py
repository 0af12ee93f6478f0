"""Train the bundled default model dp-7net on data/lpsc-7net and write its card (dp env).

Usage: python train_default.py [--steps N]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from lpsc_lmp.files import sha256_file
from lpsc_lmp.models.derive import dp_compress
from lpsc_lmp.training.deepmd import evaluate_dp, train

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "lpsc-7net"
OUT = ROOT / "potentials" / "dp-7net"
WORK = ROOT / "scripts" / "default_model" / "work" / "train"
TYPE_MAP = ["Li", "P", "S", "Cl"]


def label_versions() -> dict[str, str]:
    py = ROOT / ".venv" / "label" / "bin" / "python"
    code = ("from importlib import metadata as m; "
            "print(m.version('sevenn'), m.version('torch'), m.version('ase'))")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True)
    sevenn, torch, ase = out.stdout.split()
    return {"sevenn": sevenn, "torch": torch, "ase": ase}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20000)
    args = ap.parse_args()
    if WORK.exists():
        shutil.rmtree(WORK)
    res = train(DATA, WORK, TYPE_MAP, steps=args.steps)
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(res["frozen"], OUT / "frozen.pth")
    errors = {split: evaluate_dp(OUT / "frozen.pth", DATA / f"{split}.extxyz", TYPE_MAP)
              for split in ("train", "test")}
    dp_compress(OUT / "frozen.pth", OUT / "compressed.pth")
    errors_c = evaluate_dp(OUT / "compressed.pth", DATA / "test.extxyz", TYPE_MAP)
    card = {
        "name": "dp-7net",
        "architecture": "deepmd",
        "reference": "7net",
        "reference_method": "SevenNet-0 (sevenn 7net-0), a universal potential trained on PBE "
                            "data of the Materials Project; no DFT was run for this model",
        "type_map": TYPE_MAP,
        "cutoff_A": 6.0,
        "route": ["deepmd", "python-callback"],
        "env": "dp",
        "files": {"frozen": "frozen.pth", "deploy": "compressed.pth"},
        "derive": {"compressed.pth": {"from": "frozen.pth", "tool": "dp-compress"}},
        "frozen_sha256": sha256_file(OUT / "frozen.pth"),
        "descriptor": "se_e2_a, rcut 6.0 A (smooth from 0.5 A), embedding [16, 32, 64], "
                      "fitting [64, 64, 64]",
        "training": {
            "program": f"deepmd-kit {metadata.version('deepmd-kit')} (PyTorch backend, torch "
                       f"{metadata.version('torch')})",
            "steps": res["steps"], "seconds": res["train_seconds"],
            "input": "templates/train/deepmd.json.j2 (rendered copy in training_input.json)",
            "dataset": "data/lpsc-7net (train.extxyz, test.extxyz)",
            "dataset_sha256": {s: hashlib.sha256((DATA / f"{s}.extxyz").read_bytes()).hexdigest()
                               for s in ("train", "test")},
            "frames": {"train": res["train_frames"], "test": res["test_frames"]},
            "sampling": "SevenNet-0 Langevin MD of the ordered 52-atom cell, 600-1200 K, "
                        "random strain (diagonal +-3%, shear +-1%); split by trajectory "
                        "(scripts/default_model/sample.py)",
            "labelling": label_versions(),
        },
        "errors": {
            "train": {"energy_rmse_meV_atom": round(errors["train"]["energy_rmse_meV_atom"], 3),
                      "force_rmse_eV_A": round(errors["train"]["force_rmse_eV_A"], 4)},
            "test": {"energy_rmse_meV_atom": round(errors["test"]["energy_rmse_meV_atom"], 3),
                     "force_rmse_eV_A": round(errors["test"]["force_rmse_eV_A"], 4)},
            "test_compressed": {
                "energy_rmse_meV_atom": round(errors_c["energy_rmse_meV_atom"], 3),
                "force_rmse_eV_A": round(errors_c["force_rmse_eV_A"], 4)},
        },
        "regenerate": "make default-model",
    }
    (OUT / "training_input.json").write_text(res["input"])
    (OUT / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    print(yaml.safe_dump(card["errors"], sort_keys=False))


if __name__ == "__main__":
    main()
