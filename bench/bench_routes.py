"""MD speed per architecture and LAMMPS route, LAMMPS vs the model's own ASE MD, side by side.

For each bundled model, each route of its card that the LAMMPS of its environment can run
(dp-7net: pair_style deepmd; nequip-7net: pair_style nequip with the plugin of
scripts/lammps_plugins, and python-callback; mace-7net: pair_style mace with the plugin, and
python-callback) and each cell (52 atoms; 2x2x2 = 416 atoms) this runs, in the model's
environment with one thread (`python -m lpsc_lmp.route_checks speed`): a short warm-up, then NVE
MD in LAMMPS through the route and the same number of velocity-Verlet steps in ASE with the
model's own calculator (1 fs, start at 1000 K), alternating twice; the best of each is
reported. Prints a table and writes bench/results/routes.{json,md}.

    .venv/dp/bin/python bench/bench_routes.py [--models dp-7net mace-7net nequip-7net]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from lpsc_lmp.errors import RegistryError
from lpsc_lmp.md.route_checks import run_check
from lpsc_lmp.models.derive import derive_route_file
from lpsc_lmp.models.registry import load_card
from lpsc_lmp.models.routes import env_pair_styles, route_available, route_preferences

OUT = Path(__file__).resolve().parent / "results"
#: MD steps timed per cell size (52, 416 atoms)
STEPS = {1: 200, 2: 40}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["dp-7net", "nequip-7net", "mace-7net"])
    ap.add_argument("--supercells", nargs="+", type=int, default=[1, 2])
    a = ap.parse_args()
    rows = []
    for name in a.models:
        try:
            card = load_card(name)
            card.require_deploy_file()
        except RegistryError as exc:
            print(f"skip {name}: {exc}")
            continue
        have = env_pair_styles(card.env)
        runnable = [r for r in route_preferences(card.raw["route"]) if route_available(r, have)]
        for route, sc in [(r, sc) for r in runnable for sc in a.supercells]:
            if derive_route_file(load_card(name, route=route), echo=print):
                print(f"{name}: made the export of route {route}")
            steps = STEPS.get(sc, 10)
            t0 = time.perf_counter()
            r = run_check(card.env, ["speed", name, "--supercell", str(sc), "--steps",
                                      str(steps), "--route", route])
            r.update(env=card.env, wall_s=round(time.perf_counter() - t0, 1))
            rows.append(r)
            print(f"{name:12s} {r['natoms']:4d} atoms  LAMMPS ({r['route']}) "
                  f"{r['lammps_steps_per_s']:8.2f} steps/s   ASE {r['ase_verlet_steps_per_s']:8.2f}"
                  " steps/s", flush=True)
    OUT.mkdir(exist_ok=True)
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared, noisy), 1 thread "
                       "per process", "timestep_fs": 1.0, "T_start_K": 1000.0,
            "note": "steps/s of NVE MD after a warm-up, best of 2 alternating repeats; "
                    "LAMMPS = the card's route"}
    (OUT / "routes.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# MD speed: LAMMPS route vs the model's own ASE MD (1 thread)", "",
             f"{meta['date']}; {meta['machine']}; NVE, 1 fs, from 1000 K.", "",
             "| model | architecture | atoms | LAMMPS route | LAMMPS steps/s | ASE steps/s | "
             "ratio |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ratio = r["lammps_steps_per_s"] / r["ase_verlet_steps_per_s"]
        lines.append(f"| {r['model']} | {r['architecture']} | {r['natoms']} | {r['route']} | "
                     f"{r['lammps_steps_per_s']:.2f} | {r['ase_verlet_steps_per_s']:.2f} | "
                     f"{ratio:.2f} |")
    (OUT / "routes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
