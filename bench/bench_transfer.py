"""What transfer learning changes: the DeePMD r2SCAN model fine-tuned from the PBE model
(`make matrix`: `train --init-from dp-pbe-mf --steps 2500`) against the same network trained
from scratch on the same r2SCAN labels, for the same number of steps and for the full PBE
schedule: test errors and training time, side by side, in one run.

Usage: .venv/dp/bin/python bench/bench_transfer.py [--steps 2500,10000] [--threads 1]
Writes bench/results/transfer.{md,json}; the scratch models go to bench/work/transfer/
(not committed). The fine-tuned model is trained here again too (same command as make matrix),
so the three rows share one machine and one load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "transfer"
sys.path.insert(0, str(ROOT / "src"))


def train(name: str, steps: int, init: str | None, pot: Path) -> dict:
    from lpsc_lmp.training.train import train_model

    t0 = time.time()
    train_model("deepmd", "lpsc-mf-r2scan", name, "r2SCAN", steps=steps, force=True,
                init_from=init, echo=lambda s: None)
    card = yaml.safe_load((pot / name / "card.yaml").read_text())
    return {"model": name, "steps": steps, "init_from": init, "wall_s": round(time.time() - t0),
            "train_s": card["training"]["seconds"], "test": card["errors"]["test"],
            "train": card["errors"]["train"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="2500,10000")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    for k in ("OMP_NUM_THREADS", "DP_INTRA_OP_PARALLELISM_THREADS"):
        os.environ[k] = str(a.threads)
    os.environ["DP_INTER_OP_PARALLELISM_THREADS"] = "1"
    pot = WORK / "potentials"
    pot.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "potentials" / "dp-pbe-mf", pot / "dp-pbe-mf", dirs_exist_ok=True)
    os.environ["LPSC_LMP_POTENTIALS"] = str(pot)
    steps = [int(s) for s in a.steps.split(",")]
    rows = [train("r2scan-finetuned", steps[0], "dp-pbe-mf", pot)]
    rows += [train(f"r2scan-scratch-{n}", n, None, pot) for n in steps]
    (OUT / "transfer.json").write_text(json.dumps(rows, indent=1))
    lines = ["# Transfer learning: DeePMD r2SCAN model fine-tuned from the PBE model vs from "
             "scratch", "",
             f"`.venv/dp/bin/python bench/bench_transfer.py` ({time.strftime('%Y-%m-%d')}), "
             f"{a.threads} thread(s); data/lpsc-mf-r2scan (308 train / 60 test frames).", "",
             "| model | start | steps | training (s) | test E (meV/atom) | test F (eV/A) | "
             "train E | train F |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['init_from'] or 'scratch'} | {r['steps']} | "
                     f"{r['train_s']:.0f} | {r['test']['energy_rmse_meV_atom']:.2f} | "
                     f"{r['test']['force_rmse_eV_A']:.4f} | "
                     f"{r['train']['energy_rmse_meV_atom']:.2f} | "
                     f"{r['train']['force_rmse_eV_A']:.4f} |")
    (OUT / "transfer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
