"""Sweeps: many (model, temperature) ensembles fed to one pool of workers from one seed queue.

``lpsc-lmp ensemble`` is a sweep of one ensemble (:func:`run_ensemble`); ``lpsc-lmp sweep`` runs
every (model, T). All ensembles are prepared and checked first (nothing runs if one is wrong),
each directory is locked (:mod:`lpsc_lmp.runs.lock`), then the seeds still to run
(:mod:`lpsc_lmp.runs.plan`) go into one queue, ensemble after ensemble, run by the local engine
(:mod:`lpsc_lmp.runs.local`) or as batch jobs through dpdispatcher
(:mod:`lpsc_lmp.runs.dispatch`).
"""

from __future__ import annotations

import re
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ..devices import resolve_gpus
from ..errors import EnsembleError
from ..models.derive import derive_for_device
from .local import MAX_SEEDS_PER_JOB, plan_slots, run_local
from .plan import prepare_all
from .progress import Progress
from .settings import EnsembleSettings


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a batch system's stop, ``kill``) handled as Ctrl-C: workers are stopped,
    finished seeds are kept, and the same resume hint is printed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_sweep(settings: list[EnsembleSettings], echo=print, engine: str = "local",
              machine_file: str | None = None, seeds_per_job: int = 10,
              progress_stream=None, tty: bool | None = None,
              worker_cmd: list[str] | None = None) -> list[Path]:
    """Run every ensemble of ``settings`` (all share workers/threads/gpus of the first)."""
    if not settings:
        raise EnsembleError("nothing to run: give at least one model and temperature")
    ensembles, tasks, locks = prepare_all(settings, echo)
    first = settings[0]
    try:
        if not tasks:
            return [e.edir for e in ensembles]
        t0 = time.perf_counter()
        if engine == "local":
            gpus = resolve_gpus(first.gpus)
            slots, sentence = plan_slots(first.workers, gpus, first.workers_per_gpu)
            slots = slots[:len(tasks)] or slots[:1]
            echo(sentence)
            for e in {e.card.name: e for e in ensembles}.values():  # NequIP: per-device files
                derive_for_device(e.card, "cuda" if any(slots) else "cpu", bool(first.batch),
                                  echo)
            progress = Progress(len(tasks), len(slots), stream=progress_stream, tty=tty)
            try:
                with sigterm_as_interrupt():
                    stats = run_local(ensembles, tasks, slots, progress, worker_cmd=worker_cmd,
                                      max_seeds=first.batch or MAX_SEEDS_PER_JOB)
            except KeyboardInterrupt:
                progress.close()
                echo("interrupted: finished seeds are kept; rerun the same command to resume")
                raise
            progress.close()
        elif engine == "dispatcher":
            from .dispatch import run_dispatcher

            if first.batch:
                raise EnsembleError("--batch runs with --engine local only; drop --batch")

            if not machine_file:
                raise EnsembleError("--engine dispatcher needs --machine FILE (JSON or YAML "
                                    "with 'machine' and 'resources'; see README)")
            progress = Progress(len(tasks), 1, stream=progress_stream, tty=tty)
            stats = run_dispatcher(ensembles, tasks, machine_file, seeds_per_job, progress,
                                   echo=echo)
            progress.close()
        else:
            raise EnsembleError(f"unknown engine '{engine}'; use local or dispatcher")
        echo(f"ran {len(tasks)} seed(s) in {time.perf_counter() - t0:.1f} s: "
             f"{stats['done']} done, {stats['failed']} failed")
        return [e.edir for e in ensembles]
    finally:
        for lk in locks:
            lk.release()


def run_ensemble(s: EnsembleSettings, echo=print) -> Path:
    """Run all unfinished seeds of one ensemble; return its directory."""
    return run_sweep([s], echo=echo)[0]


def parse_list(text: str, kind=str) -> list:
    """``"700,800"`` or ``"700 800"`` -> [700, 800] (order kept, duplicates dropped)."""
    out = []
    for item in re.split(r"[,\s]+", text.strip()):
        if item:
            v = kind(item)
            if v not in out:
                out.append(v)
    return out
