"""``lpsc-lmp status``: one line per ensemble under a runs directory (or for one ensemble).

Columns: model, temperature, tag, seeds done/failed/running/todo of the number last asked for
(recorded in ``.lock``), ns simulated by the finished seeds, and ns/day per worker (simulated time
over the summed ``wall_s`` of the manifests, each seed of a lock-step batch counting 1/K of the
batch's wall time). A seed directory without manifest counts as
running while a live process holds the ensemble's lock, else as todo (interrupted).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..files import read_json
from ..paths import runs_dir
from ..rundir import (
    ENSEMBLE_FILE,
    MANIFEST,
    batch_share,
    parse_ensemble_dirname,
    read_manifest,
    seed_dirs,
    seed_state,
)
from .lock import is_locked, read_lock


@dataclass
class EnsembleStatus:
    path: str
    model: str
    temperature_K: float
    tag: str | None
    target: int
    done: int
    failed: int
    running: int
    todo: int
    ns: float
    ns_per_day: float | None
    locked: bool


def find_ensemble_dirs(path: Path) -> list[Path]:
    """``path`` itself if it is an ensemble, else every ``*/T*K*`` and ``T*K*`` below it."""
    path = Path(path)
    if (path / ENSEMBLE_FILE).is_file():
        return [path]
    found = {p.parent for p in path.glob(f"*/{ENSEMBLE_FILE}")}
    found |= {p.parent for p in path.glob(f"*/*/{ENSEMBLE_FILE}")}
    return sorted((d for d in found if parse_ensemble_dirname(d.name)),
                  key=lambda d: (d.parent.name, parse_ensemble_dirname(d.name)[0], d.name))


def ensemble_status(edir: Path) -> EnsembleStatus:
    """Seed counts, ns simulated and ns/day of one ensemble."""
    info = read_json(edir / ENSEMBLE_FILE) or {}
    parsed = parse_ensemble_dirname(edir.name) or (info.get("temperature_K", 0.0), None)
    locked = is_locked(edir)
    counts = {"done": 0, "failed": 0, "running": 0, "todo": 0}
    sim_ps = wall = 0.0
    top = 0
    for num, sdir in seed_dirs(edir).items():
        top = max(top, num)
        st = seed_state(sdir)
        if st == "todo" and locked and not (sdir / MANIFEST).is_file():
            st = "running"
        counts[st] += 1
        if st == "done":
            m = read_manifest(sdir)
            if m is None:
                continue
            sim_ps += float(m.get("time_ps", info.get("time_ps", 0.0)))
            wall += float(m.get("wall_s") or 0.0) / batch_share(m)
    target = max(int(read_lock(edir).get("seeds") or 0), int(info.get("n_seeds") or 0), top)
    known = counts["done"] + counts["failed"] + counts["running"]
    todo = max(0, target - known)
    return EnsembleStatus(
        path=str(edir), model=info.get("model", edir.parent.name),
        temperature_K=float(info.get("temperature_K", parsed[0])), tag=parsed[1],
        target=target, done=counts["done"], failed=counts["failed"],
        running=counts["running"], todo=todo, ns=sim_ps / 1000.0,
        ns_per_day=(sim_ps / wall * 86400.0 / 1000.0) if wall else None, locked=locked)


def status_rows(path: Path | None = None) -> list[EnsembleStatus]:
    """One :class:`EnsembleStatus` per ensemble under ``path`` (default: the runs folder)."""
    return [ensemble_status(d) for d in find_ensemble_dirs(Path(path) if path else runs_dir())]


def format_table(rows: list[EnsembleStatus]) -> str:
    """The rows as a text table with totals."""
    head = (f"{'model':16s} {'T/K':>7s} {'tag':8s} {'done':>6s} {'failed':>6s} {'running':>7s} "
            f"{'todo':>6s} {'ns':>9s} {'ns/day/worker':>13s}")
    lines = [head, "-" * len(head)]
    tot = {"done": 0, "failed": 0, "running": 0, "todo": 0, "ns": 0.0}
    for r in rows:
        rate = "-" if r.ns_per_day is None else f"{r.ns_per_day:.2f}"
        lines.append(f"{r.model:16s} {r.temperature_K:7g} {(r.tag or '-'):8s} {r.done:6d} "
                     f"{r.failed:6d} {r.running:7d} {r.todo:6d} {r.ns:9.3f} {rate:>13s}"
                     + ("  (running)" if r.locked else ""))
        for k in tot:
            tot[k] += getattr(r, k)
    lines.append("-" * len(head))
    lines.append(f"{'total':16s} {'':7s} {'':8s} {tot['done']:6d} {tot['failed']:6d} "
                 f"{tot['running']:7d} {tot['todo']:6d} {tot['ns']:9.3f}")
    return "\n".join(lines)


def as_json(rows: list[EnsembleStatus]) -> str:
    """The rows as indented JSON."""
    return json.dumps([asdict(r) for r in rows], indent=1)
