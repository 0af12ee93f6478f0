"""MD speed of the default model: LAMMPS (pair_style deepmd) vs DeePMD's ASE calculator.

Each case runs in its own process with one thread (OMP/torch/DeePMD), NVT Nose-Hoover at
1000 K, 1 fs, on the 52-atom cell and its 2x2x2 supercell (416 atoms). Warm-up steps are
excluded. Prints a table and writes bench/results/md_speed.{json,md}.

Usage: python bench/bench_md_speed.py [--steps52 400] [--steps416 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "src"))


def case_lammps(model: str, deploy: str, supercell: int, steps: int) -> float:
    import tempfile

    from lpsc_lmp.lammps_env import open_lammps
    from lpsc_lmp.md.singlepoint import pair_lines
    from lpsc_lmp.models.registry import load_card
    from lpsc_lmp.structure import build_lpsc, write_lammps_data

    card = load_card(model)
    card.files["deploy"] = deploy
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "x.data"
        write_lammps_data(build_lpsc(supercell=supercell), data, card.type_map)
        lmp = open_lammps()
        lmp.commands_string(f"units metal\natom_style atomic\natom_modify map array\n"
                            f"read_data {data}\n{pair_lines(card)}\n"
                            "neighbor 2.0 bin\ntimestep 0.001\n"
                            "velocity all create 1000 1 mom yes dist gaussian\n"
                            "fix 1 all nvt temp 1000 1000 0.1\nthermo 1000\nrun 20\n")
        t0 = time.perf_counter()
        lmp.command(f"run {steps} pre no post no")
        dt = time.perf_counter() - t0
        lmp.close()
    return steps / dt


def case_ase(model: str, deploy: str, supercell: int, steps: int) -> float:
    import numpy as np
    from ase import units
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from deepmd.calculator import DP

    from lpsc_lmp.models.registry import load_card
    from lpsc_lmp.structure import build_lpsc

    card = load_card(model)
    atoms = build_lpsc(supercell=supercell)
    atoms.calc = DP(str(card.directory / deploy))
    MaxwellBoltzmannDistribution(atoms, temperature_K=1000, rng=np.random.default_rng(1))
    Stationary(atoms)
    dyn = NoseHooverChainNVT(atoms, 1.0 * units.fs, temperature_K=1000, tdamp=100 * units.fs)
    dyn.run(20)
    t0 = time.perf_counter()
    dyn.run(steps)
    return steps / (time.perf_counter() - t0)


def run_case(engine: str, deploy: str, supercell: int, steps: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               DP_INTRA_OP_PARALLELISM_THREADS="1", DP_INTER_OP_PARALLELISM_THREADS="1")
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import bench_md_speed as b;"
            f"print(b.case_{engine}('dp-7net', {deploy!r}, {supercell}, {steps}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps52", type=int, default=400)
    ap.add_argument("--steps416", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for supercell, steps in ((1, args.steps52), (2, args.steps416)):
        for engine, deploy in (("lammps", "compressed.pth"), ("lammps", "frozen.pth"),
                               ("ase", "compressed.pth"), ("ase", "frozen.pth")):
            # cases interleaved over repeats; the best of the repeats is reported
            rates = [run_case(engine, deploy, supercell, steps) for _ in range(args.repeats)]
            rows.append({"atoms": 52 * supercell**3, "engine": engine, "model_file": deploy,
                         "steps": steps, "steps_per_s_best": max(rates),
                         "steps_per_s_all": [round(r, 2) for r in rates]})
            print(f"{rows[-1]['atoms']:4d} atoms  {engine:6s} {deploy:15s} "
                  f"{max(rates):8.1f} steps/s", flush=True)
    ref = {(r["atoms"], r["model_file"]): r["steps_per_s_best"] for r in rows
           if r["engine"] == "ase"}
    lines = ["| atoms | engine | model file | steps/s | vs ASE, same file | ns/day |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ratio = r["steps_per_s_best"] / ref[(r["atoms"], r["model_file"])]
        r["ratio_vs_ase_same_file"] = round(ratio, 3)
        lines.append(f"| {r['atoms']} | {r['engine']} | {r['model_file']} | "
                     f"{r['steps_per_s_best']:.1f} | {ratio:.2f}x | "
                     f"{r['steps_per_s_best'] * 86400 * 1e-6:.2f} |")
    text = "\n".join(lines)
    print("\n" + text)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "host": platform.node(),
            "cpu_count": os.cpu_count(), "threads": 1, "timestep_fs": 1.0, "ensemble": "NVT 1000 K",
            "note": "best of repeats; the machine is shared, so spreads are wide"}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "md_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (OUT / "md_speed.md").write_text(f"# MD speed of dp-7net, one thread\n\n{json.dumps(meta)}\n\n"
                                     f"{text}\n")


if __name__ == "__main__":
    main()
