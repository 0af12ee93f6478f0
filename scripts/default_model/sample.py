"""Sample LPSC configurations by MD with SevenNet-0 and label them (energy, forces, stress).

Runs in the `label` environment (torch 2.13 CPU + sevenn 0.13.0, weights ship in the wheel).
Each trajectory: the ordered 52-atom cell under a random strain (diagonal +-3%, shear +-1%),
Langevin MD at T (2 fs, friction 0.02/fs, velocities drawn at T), 30 steps of warm-up,
then one frame every 8 steps. Trajectories are listed in PLAN; the training and test sets come
from different trajectories, so no test frame is a near copy of a training frame.

Usage: python sample.py OUTDIR [--part K --nparts N]   (writes OUTDIR/<name>.extxyz per trajectory)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase import units  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402
from ase.io import write  # noqa: E402
from ase.md.langevin import Langevin  # noqa: E402
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary  # noqa: E402

from lpsc_lmp.structure import build_lpsc  # noqa: E402

TEMPS_TRAIN = [600, 700, 800, 900, 1000, 1100, 1200]
# (name, split, T/K, seed, frames)
PLAN = ([(f"train_T{t}_s{s}", "train", t, 100 * t + s, 22) for t in TEMPS_TRAIN for s in (1, 2)]
        + [(f"test_T{t}_s9", "test", t, 100 * t + 9, 20) for t in (700, 900, 1100)])
WARMUP, STRIDE, DT_FS = 30, 8, 2.0


def strained_cell(seed: int):
    rng = np.random.default_rng(seed)
    atoms = build_lpsc()
    eps = np.diag(rng.uniform(-0.03, 0.03, 3))
    off = rng.uniform(-0.01, 0.01, 3)
    eps[0, 1] = eps[1, 0] = off[0]
    eps[0, 2] = eps[2, 0] = off[1]
    eps[1, 2] = eps[2, 1] = off[2]
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return atoms


def run_one(name: str, temp: float, seed: int, frames: int, calc, out: Path) -> None:
    atoms = strained_cell(seed)
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=temp, rng=np.random.default_rng(seed))
    Stationary(atoms)
    dyn = Langevin(atoms, DT_FS * units.fs, temperature_K=temp, friction=0.02 / units.fs,
                   rng=np.random.default_rng(seed + 1))
    dyn.run(WARMUP)
    got = []
    for _ in range(frames):
        dyn.run(STRIDE)
        snap = atoms.copy()
        snap.calc = SinglePointCalculator(
            snap, energy=atoms.get_potential_energy(), forces=atoms.get_forces(),
            stress=atoms.get_stress(voigt=True))
        snap.info.update(temperature_K=temp, trajectory=name)
        got.append(snap)
    tmp = out / f"{name}.extxyz.tmp"
    write(tmp, got, format="extxyz")
    tmp.replace(out / f"{name}.extxyz")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--part", type=int, default=0)
    ap.add_argument("--nparts", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator("7net-0", device="cpu")
    args.outdir.mkdir(parents=True, exist_ok=True)
    for i, (name, _split, temp, seed, frames) in enumerate(PLAN):
        if i % args.nparts != args.part or (args.outdir / f"{name}.extxyz").exists():
            continue
        t0 = time.time()
        run_one(name, temp, seed, frames, calc, args.outdir)
        print(f"{name}: {frames} frames in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
