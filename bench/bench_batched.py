"""Aggregate MD throughput of the batched mode (lpsc_lmp.md.lockstep) against one process per seed.

For each model (MACE, NequIP and DeePMD through the python-callback route, the 52-atom cell,
NVT Nose-Hoover at 1000 K, 1 fs) and each batch size K, one process runs K replicas in lock step
(one batched model call per step) and reports trajectory-steps/s = K x steps / wall. Baselines:
(a) ``sequential``: the ordinary runner (lpsc_lmp.md.runner.run_md), one seed in one process, one
at a time: aggregate = its steps/s; on the python-callback route (the reference of the ratios)
and, on a CPU where this LAMMPS has the model's native pair style (plugins of
scripts/lammps_plugins; pair_style deepmd), on that route too; (b) ``procs P``: P ordinary
processes sharing the device at the same time (started together after their set-up):
aggregate = P x steps / wall.
(c) ``--ceiling``: the same lock-step runs with a model that costs nothing (zero forces): the
host-side cost per replica-step (K LAMMPS instances, the ``fix external`` callbacks, the
hand-offs between replica threads) alone, i.e. the most any GPU could give this design at that
K; once with the replica threads on one CPU (the default) and once left to the OS.
(d) ``--batched-procs P``: P batched processes of K replicas each at once, sharing the device
(the host-side work of the lock step spread over P cores; ``sweep --batch K`` with
``--workers-per-gpu P``).
Process start-up, model loading, a warm-up evaluation and the LAMMPS set-up of the decks are
excluded everywhere (each case is timed from its first model call, the ``run`` set-up, to its
end); the sampling between chunks is included. Each case runs in its own
process of the model's environment with ``--threads`` torch/OpenMP threads. Rows are written as
they come (a run cut short keeps what it measured).

Usage:
    python bench/bench_batched.py [--device cpu|cuda] [--sizes 1,2,4,8,16] [--procs 2]
        [--models mace-7net,nequip-7net] [--steps-mace 20] [--steps-nequip 50] [--threads 1]
        [--edges auto|vesin|torch] [--ceiling] [--batched-procs 2,4]
On a GPU: --device cuda --sizes 1,2,4,8,16,32,64,128,300 --procs 2,4,8 (the NequIP files for
the GPU are compiled first, once: lpsc_lmp.models.derive.derive_for_device; the whole GPU run is
scripts/device/gpu_bench.sh). Writes bench/results/batched.{json,md} (``--tag`` adds a suffix).
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
    from lpsc_lmp.models.registry import load_card
    from lpsc_lmp.runs.ensemble import render_for_seed
    from lpsc_lmp.runs.settings import EnsembleSettings
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


class NoModel:
    """The evaluator interface of lpsc_lmp.models.batch_eval.BatchedEvaluator at zero cost:
    zero energy, forces and virial (the replicas move as an ideal gas under the thermostat)."""

    mode, device, graph = "no model (ceiling)", "cpu", "-"

    def __init__(self) -> None:
        self.calls, self.seconds = 0, 0.0

    def evaluate(self, atoms_list: list) -> dict:
        import numpy as np

        k, n = len(atoms_list), len(atoms_list[0])
        self.calls += 1
        return {"energy": np.zeros(k), "forces": np.zeros((k, n, 3)),
                "stress": np.zeros((k, 3, 3)), "virial": np.zeros((k, 6))}


def _wait_for_go(sync: str | None) -> None:
    """Processes of one case start together: say ready, wait for the driver's go."""
    if sync:
        Path(sync, f"ready_{os.getpid()}").touch()
        while not Path(sync, "go").exists():
            time.sleep(0.01)


def case_batched(model: str, k: int, steps: int, device: str, edges: str = "auto",
                 sync: str | None = None) -> dict:
    from ase.io import read

    from lpsc_lmp.md.lockstep import run_md_batch
    from lpsc_lmp.models.batch_eval import BatchedEvaluator

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        decks, m = _decks(model, k, steps, tmp)
        ev = (NoModel() if edges == "ceiling" else
              BatchedEvaluator(m["architecture"], m["model_file"], device=device, edges=edges))
        warm = read(ROOT / "data" / "lpsc-7net" / "test.extxyz", index="0")
        warm.calc = None
        ev.evaluate([warm] * k)  # warm-up (CUDA context, kernels, allocator)
        ev.calls, ev.seconds = 0, 0.0
        dirs = []
        for i in range(k):
            (tmp / f"r{i}").mkdir()
            dirs.append(tmp / f"r{i}")
        stamps: list[float] = []

        def start() -> None:
            _wait_for_go(sync)
            stamps.append(time.time())

        res, summary = run_md_batch(decks, dirs, ev, m["type_map"], m["li_type"],
                                    m["temperature_K"], m["timestep_ps"], m["msd_every"],
                                    m["pos_every"], m["thermo_every"], before_production=start)
        t1 = time.time()
    failed = [str(r) for r in res if isinstance(r, Exception)]
    return {"wall_s": summary["production_seconds"], "t0": stamps[0], "t1": t1,
            "steps": steps, "replicas": k, "failed": failed,
            "mode": summary["batch_mode"], "model_s": summary["model_seconds"],
            "graph": ev.graph}


def case_native(model: str, steps: int) -> dict:
    """The ordinary runner on the card's native route (pair style inside LAMMPS): the time of
    ``steps`` steps as the difference of runs of 2 x steps and steps (drops set-up and model
    loading, which happen in pair_coeff)."""
    from lpsc_lmp.md import runner

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

    from lpsc_lmp.md import callback as routes
    from lpsc_lmp.md import runner

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        decks, m = _decks(model, 1, steps, tmp)
        calc = routes.load_calculator(m["architecture"], m["model_file"], device=device)
        warm = read(ROOT / "data" / "lpsc-7net" / "test.extxyz", index="0")
        calc.calculate(warm, ["energy", "forces", "stress"])
        routes.load_calculator = lambda *a, **kw: calc  # the warm one, on `device`
        first: list[float] = []  # the first model call: the deck's set-up is done
        callback = routes.PythonCallback.__call__

        def timed(self, *args):
            if not first:
                first.append(time.time())
            return callback(self, *args)

        routes.PythonCallback.__call__ = timed
        _wait_for_go(sync)  # every process of the case ready: start together
        runner.run_md(decks[0], tmp, m["li_type"], m["temperature_K"], m["timestep_ps"],
                      m["msd_every"], m["pos_every"], m["thermo_every"],
                      route="python-callback", route_meta=m)
        t1 = time.time()
    return {"t0": first[0], "t1": t1, "wall_s": t1 - first[0], "steps": steps}


# ------------------------------------------------------------------ driver
def _env_python(model: str) -> str:
    from lpsc_lmp.models.registry import load_card
    from lpsc_lmp.paths import env_python

    return str(env_python(load_card(model).env))


def _child(py: str, args: list[str], threads: int, extra_env: dict[str, str] | None = None
           ) -> subprocess.Popen:
    from lpsc_lmp.environments import env_for_subprocess, thread_env

    env = dict(env_for_subprocess(py), **thread_env(threads), **(extra_env or {}))
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.Popen([py, __file__, "--case", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(p: subprocess.Popen) -> dict:
    out, err = p.communicate()
    if p.returncode:
        raise RuntimeError(f"case failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_all(a: argparse.Namespace, rows: list[dict], save) -> list[dict]:
    from lpsc_lmp.models.derive import derive_for_device
    from lpsc_lmp.models.registry import load_card

    for model in a.models.split(","):
        py = _env_python(model)
        # NequIP on a GPU: its python-callback file and batch package compiled for the GPU
        derive_for_device(load_card(model, route="python-callback"), a.device, batch=True)
        steps = (a.steps_mace if "mace" in model else a.steps_deepmd if "dp" in model
                 else a.steps_nequip)
        r = _result(_child(py, ["ordinary", model, "1", str(steps), a.device, "{}"], a.threads))
        seq = r["steps"] / r["wall_s"]
        rows.append({"model": model, "case": "sequential (a), python-callback", "replicas": 1,
                     "steps": steps, "wall_s": round(r["wall_s"], 3),
                     "agg_steps_per_s": round(seq, 2), "vs_sequential": 1.0})
        save(rows)
        if a.device == "cpu":  # the native pair style, where this LAMMPS has it
            if load_card(model).route != "python-callback":
                r = _result(_child(py, ["native", model, "1", str(steps), a.device, "{}"],
                                   a.threads))
                agg = r["steps"] / r["wall_s"]
                rows.append({"model": model, "case": f"sequential (a), {r['route']}",
                             "replicas": 1, "steps": steps, "wall_s": round(r["wall_s"], 3),
                             "agg_steps_per_s": round(agg, 2),
                             "vs_sequential": round(agg / seq, 2)})
                save(rows)
        for p in [int(x) for x in a.procs.split(",") if x]:
            wall = _together(py, p, ["ordinary", model, "1", str(steps), a.device], a.threads)
            agg = p * steps / wall
            rows.append({"model": model, "case": f"procs (b), {p} sharing", "replicas": p,
                         "steps": steps, "wall_s": round(wall, 3),
                         "agg_steps_per_s": round(agg, 2), "vs_sequential": round(agg / seq, 2)})
            save(rows)
        # ceiling, unpinned: the replica threads left to the OS (LPSC_LMP_PIN=0) instead of
        # sharing one CPU (lpsc_lmp.md.lockstep.lockstep_cpu)
        kinds = ["batched"] + (["ceiling", "ceiling-unpinned"] if a.ceiling else [])
        for k in [int(x) for x in a.sizes.split(",") if x]:
            for kind in kinds:
                ceiling = kind.startswith("ceiling")
                edges = "ceiling" if ceiling else a.edges
                n = steps * 4 if ceiling else steps  # (cheap; longer = less noise)
                r = _result(_child(py, ["batched", model, str(k), str(n), a.device,
                                        json.dumps({"edges": edges})], a.threads,
                                   {"LPSC_LMP_PIN": "0"} if kind == "ceiling-unpinned" else
                                   {"LPSC_LMP_SLOT": "0"}))  # (one sweep worker)
                agg = k * n / r["wall_s"]
                label = (f"ceiling K={k} (no model)" if kind == "ceiling" else
                         f"ceiling K={k} (no model), threads unpinned"
                         if kind == "ceiling-unpinned" else
                         f"batched K={k} ({r['mode']}, graph {r['graph']})")
                rows.append({"model": model, "case": label, "replicas": k, "steps": n,
                             "wall_s": round(r["wall_s"], 3), "agg_steps_per_s": round(agg, 2),
                             "vs_sequential": round(agg / seq, 2), "model_s": r["model_s"],
                             "failed": r["failed"]})
                save(rows)
            for p in [int(x) for x in a.batched_procs.split(",") if x]:  # P batches, 1 device
                edges = json.dumps({"edges": a.edges})
                wall = _together(py, p, ["batched", model, str(k), str(steps), a.device],
                                 a.threads, edges)
                agg = p * k * steps / wall
                rows.append({"model": model, "case": f"batched K={k} x {p} procs sharing",
                             "replicas": p * k, "steps": steps, "wall_s": round(wall, 3),
                             "agg_steps_per_s": round(agg, 2),
                             "vs_sequential": round(agg / seq, 2)})
                save(rows)
    return rows


def _together(py: str, p: int, case: list[str], threads: int, extra: str = "{}") -> float:
    """Run ``p`` processes of ``case`` that start their MD together (after every one has set
    up); the wall time from the first start to the last end (s)."""
    with tempfile.TemporaryDirectory() as sync:
        opts = json.dumps(dict(json.loads(extra), sync=sync))
        # one worker slot each, as the sweep gives them (the CPU of a batched lock step)
        procs = [_child(py, [*case, opts], threads, {"LPSC_LMP_SLOT": str(j)})
                 for j in range(p)]
        while len(list(Path(sync).glob("ready_*"))) < p:
            if any(x.poll() not in (None, 0) for x in procs):
                raise RuntimeError(next(x for x in procs if x.poll()).stderr.read()[-2000:])
            time.sleep(0.05)
        Path(sync, "go").touch()
        res = [_result(x) for x in procs]
    return max(x["t1"] for x in res) - min(x["t0"] for x in res)


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
    ap.add_argument("--edges", default="auto", choices=["auto", "vesin", "torch"],
                    help="neighbour lists of the batched graphs "
                         "(lpsc_lmp.models.neighbours.batch_edges)")
    ap.add_argument("--batched-procs", default="",
                    help="also run P batched processes of each K at once (e.g. 2,4): the GPU "
                         "shared by P lock-step batches, the host work spread over P cores")
    ap.add_argument("--ceiling", action="store_true",
                    help="also time each K with a model that costs nothing (host-side ceiling)")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    if a.case:
        kind, model, k, steps, device, extra = a.case
        opts = json.loads(extra)  # edges, sync (a folder: start together with others)
        if kind == "batched":
            out = case_batched(model, int(k), int(steps), device, opts.get("edges", "auto"),
                               opts.get("sync"))
        elif kind == "native":
            out = case_native(model, int(steps))
        else:
            out = case_ordinary(model, int(steps), device, opts.get("sync"))
        print(json.dumps(out))
        return 0
    info = {"device": a.device, "device_name": _device_name(a.device),
            "threads_per_process": a.threads, "host": platform.node(), "cpus": os.cpu_count(),
            "edges": a.edges, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = f"_{a.tag}" if a.tag else ""

    def save(rows: list[dict]) -> None:
        print(rows[-1], flush=True)
        (OUT / f"batched{suffix}.json").write_text(json.dumps(dict(info, rows=rows), indent=1)
                                                   + "\n")
        (OUT / f"batched{suffix}.md").write_text(
            f"# Batched vs per-process MD throughput ({info['device_name']}, {a.threads} "
            f"thread(s) per process, {os.cpu_count()} CPUs, {info['date']})\n\n"
            "52-atom Li6PS5Cl cell, NVT 1000 K, 1 fs; start-up, model load and warm-up excluded. "
            f"Neighbour lists of the batched graphs: {a.edges}. "
            "Written by bench/bench_batched.py.\n\n" + table(rows) + "\n")

    rows = run_all(a, [], save)
    print(table(rows))
    return 0


def _device_name(device: str) -> str:
    """The GPU's name (nvidia-smi) for cuda, else ``cpu``."""
    if device == "cpu":
        return "cpu"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return f"{device}: {out.splitlines()[0]}" if out else device


if __name__ == "__main__":
    sys.exit(main())
