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

import click

from .ensemble import seed_status
from .lock import is_locked, read_lock
from .paths import runs_dir
from .runread import batch_share, parse_ensemble_dirname


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
    if (path / "ensemble.json").is_file():
        return [path]
    found = {p.parent for p in path.glob("*/ensemble.json")}
    found |= {p.parent for p in path.glob("*/*/ensemble.json")}
    return sorted((d for d in found if parse_ensemble_dirname(d.name)),
                  key=lambda d: (d.parent.name, parse_ensemble_dirname(d.name)[0], d.name))


def ensemble_status(edir: Path) -> EnsembleStatus:
    info = json.loads((edir / "ensemble.json").read_text())
    parsed = parse_ensemble_dirname(edir.name) or (info.get("temperature_K", 0.0), None)
    locked = is_locked(edir)
    counts = {"done": 0, "failed": 0, "running": 0, "todo": 0}
    sim_ps = wall = 0.0
    top = 0
    for sdir in sorted((edir / "seeds").glob("seed_*")):
        try:
            top = max(top, int(sdir.name.split("_")[1]))
        except (IndexError, ValueError):
            continue
        st = seed_status(sdir)
        if st == "todo" and locked and not (sdir / "manifest.json").is_file():
            st = "running"
        counts[st] += 1
        if st == "done":
            try:
                m = json.loads((sdir / "manifest.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            sim_ps += float(m.get("time_ps", info.get("time_ps", 0.0)))
            wall += float(m.get("wall_s") or 0.0) / batch_share(m)
    target = max(int(read_lock(edir).get("seeds") or 0), top)
    known = counts["done"] + counts["failed"] + counts["running"]
    todo = max(0, target - known)
    return EnsembleStatus(
        path=str(edir), model=info.get("model", edir.parent.name),
        temperature_K=float(info.get("temperature_K", parsed[0])), tag=parsed[1],
        target=target, done=counts["done"], failed=counts["failed"],
        running=counts["running"], todo=todo, ns=sim_ps / 1000.0,
        ns_per_day=(sim_ps / wall * 86400.0 / 1000.0) if wall else None, locked=locked)


def status_rows(path: Path | None = None) -> list[EnsembleStatus]:
    return [ensemble_status(d) for d in find_ensemble_dirs(Path(path) if path else runs_dir())]


def format_table(rows: list[EnsembleStatus]) -> str:
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
    return json.dumps([asdict(r) for r in rows], indent=1)


@click.command("status")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json_", is_flag=True, help="Machine-readable output.")
def status_command(path: Path | None, as_json_: bool) -> None:
    """Summarise every ensemble under PATH (a runs directory, default runs/) or one ensemble."""
    target = path or runs_dir()
    if not target.exists():
        raise click.ClickException(f"{target} does not exist; pass a runs or ensemble directory")
    rows = status_rows(target)
    if as_json_:
        click.echo(as_json(rows))
    elif not rows:
        click.echo(f"no ensemble under {target}")
    else:
        click.echo(format_table(rows))


STATUS_COMMANDS = [status_command]
