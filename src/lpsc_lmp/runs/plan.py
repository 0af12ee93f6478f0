"""Planning the seeds of a sweep: which to run, as which attempt, and the retry policy.

A sweep is a list of prepared ensembles (:class:`Ensemble`) and one queue of
:class:`SeedTask` (ensemble, seed, attempt). The run directory is the source of truth: every
command plans from what the seed folders hold (:mod:`lpsc_lmp.rundir`).

Retry policy (docs/user-guide.md, "Resuming and failures"):

* a ``done`` seed whose result matches its checksum is never touched;
* a seed without manifest (interrupted, or its worker was killed) or whose ``result.npz`` does
  not match the sha256 in its manifest (truncated, corrupted) is redone;
* a ``failed`` seed (MD crash) is rerun when a later command finds it, as long as it has had at
  most ``max_retries`` retries, i.e. ``attempt <= max_retries`` (``attempt`` in its manifest,
  1 for the first run); after that it stays failed and is counted (``retry_failed`` reruns it
  anyway);
* a seed whose worker process (or batch job) dies while running it is recorded as failed
  (:func:`record_failed`) and, within the budget above, put back in the queue of the same run
  (:func:`may_retry`); seeds of that worker that had not started are requeued without using an
  attempt.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..environments import run_in_env
from ..errors import BatchError, EnsembleError, EnvironmentFailure
from ..files import write_json_atomic
from ..models.registry import ModelCard
from ..models.routes import check_batchable
from ..rundir import MANIFEST, RUN_FORMAT, read_manifest, seed_dir, seed_state
from ..structure import write_lammps_data
from .cell import model_cell
from .ensemble import (
    EnsemblePlan,
    card_for,
    create,
    plan,
    render_for_seed,
    seed_meta,
    worker_python,
)
from .lock import DirLock, is_locked
from .progress import fmt_duration
from .settings import EnsembleSettings


@dataclass
class Ensemble:
    """A prepared ensemble of a sweep."""

    s: EnsembleSettings
    edir: Path
    card: ModelCard
    info: dict[str, Any]
    python: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    #: Wall time of one seed on one worker from the preflight rate (s), None if unmeasured.
    seed_s: float | None = None

    @property
    def label(self) -> str:
        return f"{self.edir.parent.name}/{self.edir.name}"


@dataclass
class SeedTask:
    ens: int          # index into the sweep's ensembles
    seed: int
    attempt: int      # 1 for a first run


def may_retry(s: EnsembleSettings, attempt: int) -> bool:
    """Whether a seed that failed on ``attempt`` is run again (the retry budget)."""
    return s.retry_failed or attempt <= s.max_retries


def plan_seeds(edir: Path, n: int, max_retries: int = 1, retry_failed: bool = False
               ) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """(seed, attempt) pairs to run and counts ``done``/``failed``/``retry``/``todo``.

    ``failed`` counts seeds that stay failed (retries used up); ``retry`` the failed ones rerun.
    """
    counts = {"done": 0, "failed": 0, "retry": 0, "todo": 0}
    out = []
    for seed in range(1, n + 1):
        sdir = seed_dir(edir, seed)
        st = seed_state(sdir)
        if st == "done":
            counts["done"] += 1
            continue
        m = read_manifest(sdir) or {}
        attempt = int(m.get("attempt", 1)) if m else 0
        if st == "failed":
            if not (retry_failed or attempt <= max_retries):
                counts["failed"] += 1
                continue
            counts["retry"] += 1
        else:
            counts["todo"] += 1
        out.append((seed, attempt + 1))
    return out, counts


def attempt_state(sdir: Path, attempt: int) -> str:
    """State of attempt ``attempt`` of a seed: ``done``/``failed`` (its manifest is there),
    ``started`` (directory without manifest) or ``waiting`` (nothing of this attempt yet; a
    manifest of an earlier attempt may still be there)."""
    if not (sdir / MANIFEST).is_file():
        return "started" if sdir.exists() else "waiting"
    m = read_manifest(sdir) or {}
    if int(m.get("attempt", 1)) != attempt:
        return "waiting"
    st = seed_state(sdir)
    return st if st in ("done", "failed") else "started"


def record_failed(edir: Path, seed: int, attempt: int, reason: str) -> None:
    """A failed manifest for a seed that died without writing one (its partial files go)."""
    sdir = seed_dir(edir, seed)
    shutil.rmtree(sdir, ignore_errors=True)
    sdir.mkdir(parents=True)
    write_json_atomic(sdir / MANIFEST, {"format": RUN_FORMAT, "seed": seed, "status": "failed",
                                        "attempt": attempt, "reason": reason})


def job_entries(e: Ensemble, tasks: list[SeedTask], extra: dict[str, Any] | None = None
                ) -> list[dict[str, Any]]:
    """The worker's job file content for ``tasks`` of ensemble ``e``."""
    jobs = []
    for t in tasks:
        deck = render_for_seed(e.s, e.card, e.edir / "structure.data", t.seed)
        meta = dict(seed_meta(e.info, e.s, deck), attempt=t.attempt, **(extra or {}))
        jobs.append({"seed": t.seed, "deck": deck.text, "meta": meta})
    return jobs


def check_writable(path: Path) -> None:
    """Refuse a run directory that cannot be created or written (a read-only folder, a plain
    file in its path) before anything is written."""
    p = Path(path)
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        raise EnsembleError(f"{p} is a file, so {path} cannot be created; pass --runs DIR "
                            "with a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise EnsembleError(f"{p} is not writable, so {path} cannot be written; pass --runs "
                            "DIR with a writable folder")


def preflight_all(plans: dict[int, EnsemblePlan], echo=print) -> dict[int, float | None]:
    """Run the deck and model of each distinct set-up of ``plans`` for a few steps in the
    model's environment (:mod:`lpsc_lmp.md.preflight`); return steps/s by the plans' keys.
    EnsembleError with LAMMPS's first line when a deck or model fails."""
    rates: dict[int, float | None] = {}
    done: dict[tuple, float | None] = {}
    for i, p in plans.items():
        key = (p.card.name, p.card.route, json.dumps(p.info["fingerprint"]["parts"]
                                                     ["templates"], sort_keys=True),
               p.info["structure_sha256"], p.s.thermostat)
        if key not in done:
            with tempfile.TemporaryDirectory(prefix="lpsc-preflight-") as tmp:
                work = Path(tmp)
                write_lammps_data(p.atoms, work / "structure.data", p.card.type_map)
                deck = render_for_seed(p.s, p.card, work / "structure.data", 1)
                job = work / "job.json"
                job.write_text(json.dumps([{"seed": 1, "deck": deck.text,
                                            "meta": seed_meta(p.info, p.s, deck)}]))
                try:
                    out = run_in_env(p.card.env, "lpsc_lmp.md.preflight", [str(job), tmp],
                                     threads=p.s.threads)
                except EnvironmentFailure as exc:
                    raise EnsembleError(f"preflight of {p.card.name} at "
                                        f"{p.s.temperature_K:g} K failed: {exc}; fix the "
                                        f"template or model (templates: "
                                        f"{', '.join(deck.sources)})") from None
            done[key] = out.get("steps_per_s")
            echo(f"preflight {p.card.name} ({p.card.route}): deck and model run, "
                 f"{done[key] or 0:.0f} steps/s")
        rates[i] = done[key]
    return rates


def estimate_line(plans: list[EnsemblePlan], todo: dict[int, int], rates: dict[int, float | None],
                  workers: int) -> str | None:
    """The time the seeds to run will take, from the preflight rates (one line)."""
    seconds = 0.0
    for i, n in todo.items():
        if n and rates.get(i):
            seconds += n * plans[i].s.nsteps / rates[i]
    if not seconds:
        return None
    total = sum(todo.values())
    return (f"estimated time: ~{fmt_duration(seconds / max(1, workers))} for {total} seed(s) on "
            f"{workers} worker(s) (preflight rates; start-up and equilibration not included)")


def prepare_all(settings: list[EnsembleSettings], echo=print, preflight: bool = True
                ) -> tuple[list[Ensemble], list[SeedTask], list[DirLock]]:
    """Check every ensemble (nothing is written until all pass: settings, models, structures,
    templates, existing directories), run each distinct deck and model for a few steps, then
    create and lock the directories and plan their seeds. On any error nothing runs and the
    locks taken so far are released."""
    plans = []
    for s in settings:
        if s.cell == "model" and s.cell_npt is None:  # the model's own cell, found once
            s.validate()
            npt = model_cell(s, card_for(s), echo)
            s.cell_npt = {k: v for k, v in npt.items() if k not in ("key", "a_series_A")}
            s.lattice_A = npt["a_A"]
        if s.batch:
            try:
                check_batchable(card_for(s).route, s.model)
            except BatchError as exc:
                raise EnsembleError(str(exc)) from None
        p = plan(s)
        check_writable(p.edir)
        worker_python(p.card)
        plans.append(p)
    for p in plans:  # a directory in use refuses the whole sweep before anything is written
        if is_locked(p.edir):
            DirLock(p.edir).acquire().release()  # raises LockError naming the holder
    todo = {i: len(plan_seeds(p.edir, p.s.seeds, p.s.max_retries, p.s.retry_failed)[0])
            for i, p in enumerate(plans)}
    rates = preflight_all({i: p for i, p in enumerate(plans) if todo[i]}, echo) \
        if preflight else {}
    ensembles = []
    locks: list[DirLock] = []
    try:
        for p in plans:
            locks.append(DirLock(p.edir, {"seeds": p.s.seeds, "model": p.s.model,
                                          "temperature_K": p.s.temperature_K}).acquire())
            info = create(p)
            ensembles.append(Ensemble(p.s, p.edir, p.card, info, python=worker_python(p.card)))
    except BaseException:
        for lk in locks:
            lk.release()
        raise
    tasks = []
    for i, e in enumerate(ensembles):
        if rates.get(i):
            e.seed_s = e.s.nsteps / rates[i]
        pairs, e.counts = plan_seeds(e.edir, e.s.seeds, e.s.max_retries, e.s.retry_failed)
        tasks.extend(SeedTask(i, seed, att) for seed, att in pairs)
        c = e.counts
        retry = f" ({c['retry']} of them retries)" if c["retry"] else ""
        echo(f"{e.edir}: {c['done']} done, {c['failed']} failed, {len(pairs)} to run{retry} "
             f"({e.card.name}, {e.s.temperature_K:g} K, {e.s.time_ps:g} ps)")
    line = estimate_line(plans, todo, rates, settings[0].workers)
    if line and tasks:
        echo(line)
    return ensembles, long_seeds_first(tasks, ensembles), locks


#: A seed longer than this (s of wall time on one worker) runs alone in its worker job and is
#: started before the others: start-up is negligible against it, and slow seeds (a universal
#: potential as a teacher) then spread over the workers instead of queueing behind each other.
LONG_SEED_S = 300.0


def long_ensembles(ensembles: list[Ensemble]) -> set[int]:
    """Indices of the ensembles whose seeds are long (:data:`LONG_SEED_S`; never for
    lock-step batches, whose replicas run together)."""
    return {i for i, e in enumerate(ensembles)
            if e.seed_s is not None and e.seed_s > LONG_SEED_S and not e.s.batch}


def long_seeds_first(tasks: list[SeedTask], ensembles: list[Ensemble]) -> list[SeedTask]:
    """``tasks`` with the seeds of long ensembles first (their own order kept)."""
    slow = long_ensembles(ensembles)
    return [t for t in tasks if t.ens in slow] + [t for t in tasks if t.ens not in slow]
