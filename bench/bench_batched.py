"""Aggregate MD throughput of the batched mode (lpsc_lmp.batched) against one process per seed.

For each model (MACE, NequIP and DeePMD through the python-callback route, the 52-atom cell,
NVT Nose-Hoover at 1000 K, 1 fs) and each batch size K, one process runs K replicas in lock step
(one batched model call per step) and reports trajectory-steps/s = K x steps / wall. Baselines:
(a) ``sequential``: the ordinary runner (lpsc_lmp.runner.run_md), one seed in one process, one
at a time: aggregate = its steps/s; on the python-callback route (the reference of the ratios)
and, on a CPU where this LAMMPS has the model's native pair style (plugins of
scripts/lammps_plugins; pair_style deepmd), on that route too; (b) ``procs P``: P ordinary
processes sharing the device at the same time (started together after their set-up):
aggregate = P x steps / wall.
Process start-up, model loading and a warm-up evaluation are excluded everywhere; the LAMMPS
set-up of the decks and the sampling between chunks are included. Each case runs in its own
process of the model's environment with ``--threads`` torch/OpenMP threads.

Usage:
    python bench/bench_batched.py [--device cpu|cuda] [--sizes 1,2,4,8,16] [--procs 2]
        [--models mace-7net,nequip-7net] [--steps-mace 20] [--steps-nequip 50] [--threads 1]
On a GPU: --device cuda --sizes 1,2,4,8,16,32,64,128,300 --procs 2,4,8 (NequIP needs its batch
package compiled for the GPU: nequip-compile ... --device cuda --target batch; the CPU one will
not run there). Writes bench/results/batched.{json,md} (``--tag`` adds a suffix).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "src"))


# ------------------------------------------------------------------ cases (model env)
def _decks(model: str, k: int, steps: int, workdir: Path, route: str | None = "python-callback"
           ) -> tuple[list[str], dict]:
    from lpsc_lmp.ensemble import EnsembleSettings, render_for_seed
    from lpsc_lmp.registry import load_card
    from lpsc_lmp.structure import build_lpsc, write_lammps_data

    card = load_card(model, route=route)  # None: the card's first route this LAMMPS runs
    s = EnsembleSettings(model=model, temperature_K=1000.0, time_ps=steps / 1000.0,
                         msd_every_steps=10, pos_every_steps=steps, thermo_every_steps=10)
    data = workdir / "structure.data"
    write_lammps_data(build_lpsc(), data, card.type_map)
    decks = [render_for_seed(s, card, data, seed).text for seed in range(1, k + 1)]
    meta = {"architecture": card.architecture, "model_file": str(card.lammps_file),
            "route": card.route,
            "type_map": list(card.type_map), "li_type": card.type_map.index("Li") + 1,
            "temperature_K": 1000.0, "timestep_ps": 0.001, "msd_every": 10,
            "pos_every": steps, "thermo_every": 10}
    return decks, meta


def case_batched(model: str, k: int, steps: int, device: str) -> dict:
    from ase.io import read

    from lpsc_lmp.batched import BatchedEvaluator, run_md_batch

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        decks, m = _decks(model, k, steps, tmp)
        ev = BatchedEvaluator(m["architecture"], m["model_file"], device=device)
        warm = read(ROOT / "data" / "lpsc-7net" / "test.extxyz", index="0")
        warm.calc = None
        ev.evaluate([warm] * k)  # warm-up (CUDA context, kernels, allocator)
        ev.calls, ev.seconds = 0, 0.0
        dirs = []
        for i in range(k):
            (tmp / f"r{i}").mkdir()
            dirs.append(tmp / f"r{i}")
        t0 = time.perf_counter()
        res, summary = run_md_batch(decks, dirs, ev, m["type_map"], m["li_type"],
                                    m["temperature_K"], m["timestep_ps"], m["msd_every"],
                                    m["pos_every"], m["thermo_every"])
        wall = time.perf_counter() - t0
    failed = [str(r) for r in res if isinstance(r, Exception)]
    return {"wall_s": wall, "steps": steps, "replicas": k, "failed": failed,
            "mode": summary["batch_mode"], "model_s": summary["model_seconds"]}


def case_native(model: str, steps: int) -> dict:
    """The ordinary runner on the card's native route (pair style inside LAMMPS): the time of
    ``steps`` steps as the difference of runs of 2 x steps and steps (drops set-up and model
    loading, which happen in pair_coeff)."""
    from lpsc_lmp import runner

    walls = {}
    for n in (steps, 2 * steps):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            decks, m = _decks(model, 1, n, tmp, route=None)
            t0 = time.time()
            runner.run_md(decks[0], tmp, m["li_type"], m["temperature_K"], m["timestep_ps"],
                          m["msd_every"], m["pos_every"], m["thermo_every"], route=m["route"],
                          route_meta=m)
            walls[n] = time.time() - t0
    return {"wall_s": walls[2 * steps] - walls[steps], "steps": steps, "route": m["route"]}


def case_ordinary(model: str, steps: int, device: str, sync: str | None) -> dict:
    from ase.io import read

    from lpsc_lmp import routes, runner

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        decks, m = _decks(model, 1, steps, tmp)
        calc = routes.load_calculator(m["architecture"], m["model_file"], device=device)
        warm = read(ROOT / "data" / "lpsc-7net" / "test.extxyz", index="0")
        calc.calculate(warm, ["energy", "forces", "stress"])
        routes.load_calculator = lambda *a, **kw: calc  # the warm one, on `device`
        if sync:  # wait until every process of the case is ready, start together
            Path(sync, f"ready_{os.getpid()}").touch()
            while not Path(sync, "go").exists():
                time.sleep(0.01)
        t0 = time.time()
        runner.run_md(decks[0], tmp, m["li_type"], m["temperature_K"], m["timestep_ps"],
                      m["msd_every"], m["pos_every"], m["thermo_every"],
                      route="python-callback", route_meta=m)
        t1 = time.time()
    return {"t0": t0, "t1": t1, "wall_s": t1 - t0, "steps": steps}


# ------------------------------------------------------------------ driver
def _env_python(model: str) -> str:
    from lpsc_lmp.paths import env_python
    from lpsc_lmp.registry import load_card

    return str(env_python(load_card(model).env))


def _child(py: str, args: list[str], threads: int) -> subprocess.Popen:
    from lpsc_lmp.paths import thread_env
    from lpsc_lmp.routes import env_for_subprocess

    env = dict(env_for_subprocess(py), **thread_env(threads))
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.Popen([py, __file__, "--case", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(p: subprocess.Popen) -> dict:
    out, err = p.communicate()
    if p.returncode:
        raise RuntimeError(f"case failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_all(a: argparse.Namespace) -> list[dict]:
    rows = []
    for model in a.models.split(","):
        py = _env_python(model)
        steps = (a.steps_mace if "mace" in model else a.steps_deepmd if "dp" in model
                 else a.steps_nequip)
        r = _result(_child(py, ["ordinary", model, "1", str(steps), a.device, ""], a.threads))
        seq = r["steps"] / r["wall_s"]
        rows.append({"model": model, "case": "sequential (a), python-callback", "replicas": 1,
                     "steps": steps, "wall_s": round(r["wall_s"], 3),
                     "agg_steps_per_s": round(seq, 2), "vs_sequential": 1.0})
        print(rows[-1], flush=True)
        if a.device == "cpu":  # the native pair style, where this LAMMPS has it
            from lpsc_lmp.registry import load_card

            if load_card(model).route != "python-callback":
                r = _result(_child(py, ["native", model, "1", str(steps), a.device, ""],
                                   a.threads))
                agg = r["steps"] / r["wall_s"]
                rows.append({"model": model, "case": f"sequential (a), {r['route']}",
                             "replicas": 1, "steps": steps, "wall_s": round(r["wall_s"], 3),
                             "agg_steps_per_s": round(agg, 2),
                             "vs_sequential": round(agg / seq, 2)})
                print(rows[-1], flush=True)
        for p in [int(x) for x in a.procs.split(",") if x]:
            with tempfile.TemporaryDirectory() as sync:
                procs = [_child(py, ["ordinary", model, "1", str(steps), a.device, sync],
                                a.threads) for _ in range(p)]
                while len(list(Path(sync).glob("ready_*"))) < p:
                    if any(x.poll() not in (None, 0) for x in procs):
                        raise RuntimeError(procs[0].stderr.read()[-2000:])
                    time.sleep(0.05)
                Path(sync, "go").touch()
                res = [_result(x) for x in procs]
            wall = max(x["t1"] for x in res) - min(x["t0"] for x in res)
            agg = p * steps / wall
            rows.append({"model": model, "case": f"procs (b), {p} sharing", "replicas": p,
                         "steps": steps, "wall_s": round(wall, 3),
                         "agg_steps_per_s": round(agg, 2), "vs_sequential": round(agg / seq, 2)})
            print(rows[-1], flush=True)
        for k in [int(x) for x in a.sizes.split(",") if x]:
            r = _result(_child(py, ["batched", model, str(k), str(steps), a.device, ""],
                               a.threads))
            agg = k * steps / r["wall_s"]
            rows.append({"model": model, "case": f"batched K={k} ({r['mode']})", "replicas": k,
                         "steps": steps, "wall_s": round(r["wall_s"], 3),
                         "agg_steps_per_s": round(agg, 2), "vs_sequential": round(agg / seq, 2),
                         "model_s": r["model_s"], "failed": r["failed"]})
            print(rows[-1], flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | case | replicas | steps each | wall (s) | trajectory-steps/s | "
             "x sequential |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['case']} | {r['replicas']} | {r['steps']} | "
                     f"{r['wall_s']:.2f} | {r['agg_steps_per_s']:.1f} | {r['vs_sequential']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="1,2,4,8,16")
    ap.add_argument("--procs", default="2")
    ap.add_argument("--models", default="mace-7net,nequip-7net,dp-7net")
    ap.add_argument("--steps-mace", type=int, default=20)
    ap.add_argument("--steps-nequip", type=int, default=50)
    ap.add_argument("--steps-deepmd", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    if a.case:
        kind, model, k, steps, device, sync = a.case
        if kind == "batched":
            out = case_batched(model, int(k), int(steps), device)
        elif kind == "native":
            out = case_native(model, int(steps))
        else:
            out = case_ordinary(model, int(steps), device, sync or None)
        print(json.dumps(out))
        return 0
    rows = run_all(a)
    md = table(rows)
    print(md)
    info = {"device": a.device, "threads_per_process": a.threads, "host": platform.node(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = f"_{a.tag}" if a.tag else ""
    (OUT / f"batched{suffix}.json").write_text(json.dumps(info, indent=1) + "\n")
    (OUT / f"batched{suffix}.md").write_text(
        f"# Batched vs per-process MD throughput ({a.device}, {a.threads} thread(s) per "
        f"process, {os.cpu_count()} CPUs, {info['date']})\n\n"
        "52-atom Li6PS5Cl cell, NVT 1000 K, 1 fs; start-up, model load and warm-up excluded. "
        "Written by bench/bench_batched.py.\n\n" + md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
