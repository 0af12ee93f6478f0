"""Train, freeze and evaluate a DeePMD-kit model (PyTorch backend) on an extxyz dataset.

Runs in the ``dp`` environment. The training input is rendered from
``templates/train/deepmd.json.j2``; data are converted to DeePMD's npy format with dpdata.
Errors are computed with DeePMD's own inference (``deepmd.infer.DeepPot``) on the frozen model:
energy RMSE per atom (meV/atom) and force RMSE over all components (eV/A).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase.io import read

from .deck import render_deck


def dp_command() -> str:
    """The ``dp`` executable of this environment (it need not be on PATH)."""
    return str(Path(sys.executable).parent / "dp")


def to_deepmd_npy(extxyz: Path, out: Path, type_map: list[str]) -> int:
    """Convert labelled frames to a DeePMD npy system folder; return the number of frames."""
    import dpdata

    frames = read(extxyz, index=":")
    ms = dpdata.MultiSystems(type_map=type_map)
    for at in frames:
        ms.append(dpdata.LabeledSystem(at, fmt="ase/structure", type_map=type_map))
    if len(ms.systems) != 1:
        raise ValueError(f"{extxyz}: frames of different compositions; expected one")
    system = next(iter(ms.systems.values()))
    system.to("deepmd/npy", str(out))
    return len(frames)


def evaluate_dp(model: Path, extxyz: Path, type_map: list[str]) -> dict[str, float]:
    """Energy (meV/atom) and force (eV/A) RMSE of a frozen DeePMD model on labelled frames."""
    from deepmd.infer import DeepPot

    dp = DeepPot(str(model))
    de, df = [], []
    for at in read(extxyz, index=":"):
        types = np.array([type_map.index(s) for s in at.get_chemical_symbols()])
        e, f, _ = dp.eval(at.get_positions()[None], at.cell.array[None], types)
        de.append((float(e.ravel()[0]) - at.get_potential_energy()) / len(at))
        df.append((f.reshape(-1, 3) - at.get_forces()).ravel())
    return {"energy_rmse_meV_atom": float(np.sqrt(np.mean(np.square(de))) * 1000.0),
            "force_rmse_eV_A": float(np.sqrt(np.mean(np.square(np.concatenate(df))))),
            "frames": len(de)}


def train(dataset: Path, workdir: Path, type_map: list[str], steps: int, rcut_A: float = 6.0,
          sel: list[int] | None = None, seed: int = 1, templates: Path | None = None
          ) -> dict[str, Any]:
    """Train and freeze; return paths and timings. ``dataset`` holds {train,test}.extxyz."""
    workdir, dataset = workdir.resolve(), dataset.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    n_train = to_deepmd_npy(dataset / "train.extxyz", workdir / "train", type_map)
    n_test = to_deepmd_npy(dataset / "test.extxyz", workdir / "test", type_map)
    ctx = {"type_map": type_map, "sel": sel or [48, 12, 36, 12], "rcut_A": rcut_A, "seed": seed,
           "decay_steps": max(steps // 200, 1), "steps": steps,
           "disp_freq": max(steps // 50, 1),
           "train_systems": [str(workdir / "train")], "valid_systems": [str(workdir / "test")]}
    deck = render_deck(ctx, "train/deepmd.json.j2", templates)
    (workdir / "input.json").write_text(deck.text)
    json.loads(deck.text)  # the rendered input must be valid JSON
    t0 = time.perf_counter()
    subprocess.run([dp_command(), "--pt", "train", "input.json"], cwd=workdir, check=True)
    train_s = time.perf_counter() - t0
    subprocess.run([dp_command(), "--pt", "freeze", "-o", "frozen.pth"], cwd=workdir, check=True)
    return {"frozen": workdir / "frozen.pth", "train_frames": n_train, "test_frames": n_test,
            "train_seconds": round(train_s, 1), "input": deck.text, "steps": steps}


def compress(frozen: Path, out: Path) -> None:
    """``dp --pt compress`` (tabulated embedding; about 2x faster MD), written atomically."""
    tmp = out.with_name(out.stem + ".tmp.pth")
    cmd = [dp_command(), "--pt", "compress", "-i", str(frozen), "-o", str(tmp)]
    subprocess.run(cmd, check=True, cwd=out.parent, stdout=subprocess.DEVNULL)
    tmp.replace(out)
