"""The local engine: worker processes on this machine take the seeds from one queue.

Each worker job is one ``python -m lpsc_lmp.md.worker EDIR JOB`` process in the model's
environment, running a few seeds of one ensemble (at most :data:`MAX_SEEDS_PER_JOB`, or the
``--batch K`` replicas of a lock-step batch) from the front of the queue, so no worker idles
while any ensemble has seeds left. Job files and worker logs live in ``<ensemble>/jobs/`` while
the job runs and are removed when its seeds are recorded.

Worker slot k gets ``CUDA_VISIBLE_DEVICES`` = GPU k mod n (round robin, at most
``workers_per_gpu`` per GPU, :func:`plan_slots`); with no GPU the workers get an empty
``CUDA_VISIBLE_DEVICES`` and run on CPU, which is said once. Every worker also gets its slot
number, ``LPSC_LMP_SLOT``: a batched worker runs its replica threads on CPU k of those allowed
(:func:`lpsc_lmp.md.lockstep.lockstep_cpu`).
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..environments import subprocess_env
from ..errors import EnsembleError
from ..rundir import JOBS, batch_share, read_manifest, seed_dir
from .plan import (
    Ensemble,
    SeedTask,
    attempt_state,
    job_entries,
    long_ensembles,
    may_retry,
    record_failed,
)
from .progress import Progress

#: Seeds per worker process at most: amortises the process start (Python, torch, LAMMPS import)
#: while keeping the end of a run balanced (jobs shrink as the queue empties).
MAX_SEEDS_PER_JOB = 4
#: The worker's module (``python -m``).
WORKER_MODULE = "lpsc_lmp.md.worker"


def plan_slots(workers: int | None, gpus: list[str], workers_per_gpu: int = 1
               ) -> tuple[list[str], str]:
    """CUDA_VISIBLE_DEVICES of each worker slot ("" = CPU) and a sentence saying so.

    ``workers`` None or 0 means: GPUs x ``workers_per_gpu`` with GPUs, else 1.
    """
    if workers_per_gpu < 1:
        raise EnsembleError("--workers-per-gpu must be >= 1")
    if not gpus:
        n = workers or 1
        return [""] * n, f"no GPU visible: {n} worker(s) on CPU"
    cap = len(gpus) * workers_per_gpu
    n = workers or cap
    note = ""
    if n > cap:
        note = f" (asked for {n}, capped at {workers_per_gpu} per GPU)"
        n = cap
    slots = [gpus[k % len(gpus)] for k in range(n)]
    return slots, f"{n} worker(s) on GPU(s) {','.join(gpus)}, round robin{note}"


def _die_with_parent() -> None:  # pragma: no cover (runs in the child)
    """Linux: the worker gets SIGTERM if this process dies (no orphan writing a locked dir)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class WorkerJob:
    """One worker process running ``tasks`` (seeds of one ensemble) from one job file."""

    ens: int
    tasks: list[SeedTask]
    proc: subprocess.Popen
    job_file: Path
    log: Path
    slot: int
    pos: int = 0      # tasks[:pos] are accounted for
    live: bool = True  # progress counts tasks[pos] as running


def take_job(queue: deque[SeedTask], nslots: int, max_seeds: int,
             queued: int | None = None, alone: set[int] | frozenset[int] = frozenset()
             ) -> list[SeedTask]:
    """The seeds of the next worker job for a free worker slot: at most ``max_seeds`` seeds of
    one ensemble and at most a fair share, ``queued / nslots``, so the end stays balanced.
    ``queued`` is the queue length when this round of free slots began to be filled (default:
    now): slots filled together get equal shares (300 seeds, 4 slots, --batch 64: 64, 64, 64,
    64, not 64, 59, 45, 33 as the queue shrinks under them). Seeds of the ensembles in
    ``alone`` (long seeds, :func:`lpsc_lmp.runs.plan.long_ensembles`) get a job each."""
    queued = len(queue) if queued is None else queued
    size = max(1, min(max_seeds, math.ceil(queued / nslots)))
    first = queue.popleft()
    out = [first]
    if first.ens in alone:
        return out
    while queue and len(out) < size and queue[0].ens == first.ens:
        out.append(queue.popleft())
    return out


def _log_tail(path: Path, n: int = 3) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def run_local(ensembles: list[Ensemble], tasks: list[SeedTask], slots: list[str],
              progress: Progress, max_seeds: int = MAX_SEEDS_PER_JOB, poll_s: float = 0.25,
              worker_cmd: list[str] | None = None) -> dict[str, int]:
    """Run ``tasks`` on len(slots) worker processes; return the counts of this run.

    ``worker_cmd`` replaces ``[python, -m, lpsc_lmp.md.worker]`` (tests).
    """
    for e in ensembles:  # job files and logs of earlier runs that were killed (we hold the lock)
        remove_job_files(e.edir)
    queue = deque(tasks)
    alone = long_ensembles(ensembles)
    free = list(range(len(slots)))
    running: list[WorkerJob] = []
    stats = {"done": 0, "failed": 0, "requeued": 0}
    dead_starts = 0
    counter = 0

    def account(b: WorkerJob, final: bool, rc: int | None = None) -> None:
        """Report the seeds of ``b`` that ended; when its worker has exited (``final``), record
        or requeue the ones without a result."""
        e = ensembles[b.ens]
        while b.pos < len(b.tasks):
            t = b.tasks[b.pos]
            sdir = seed_dir(e.edir, t.seed)
            st = attempt_state(sdir, t.attempt)
            if st in ("done", "failed"):
                m = read_manifest(sdir) or {}
                stats[st] += 1
                progress.finished(st, m.get("wall_s"), e.s.time_ps,
                                  f"{e.label} seed {t.seed}"
                                  + ("" if st == "done" else f": {m.get('reason', '?')}"),
                                  was_running=b.live, share=batch_share(m))
                b.live = False
                b.pos += 1
                if b.pos < len(b.tasks) and not final:
                    progress.started()
                    b.live = True
                continue
            if not final:
                return
            # the worker has exited and this seed has no result of this attempt
            if st == "started":
                tail = _log_tail(b.log)
                record_failed(e.edir, t.seed, t.attempt,
                              f"worker process exited with code {rc} while running this seed"
                              + (f" (log: {tail})" if tail else ""))
                if may_retry(e.s, t.attempt):
                    queue.appendleft(SeedTask(t.ens, t.seed, t.attempt + 1))
                    stats["requeued"] += 1
                    if b.live:
                        progress.stopped()
                    progress.message(f"{e.label} seed {t.seed}: worker died (code {rc}), "
                                     f"requeued as attempt {t.attempt + 1}")
                else:
                    stats["failed"] += 1
                    progress.finished("failed", None, None, f"{e.label} seed {t.seed}: "
                                      f"worker died (code {rc}), attempts used up",
                                      was_running=b.live)
            else:
                queue.appendleft(t)
                stats["requeued"] += 1
                if b.live:
                    progress.stopped()
            b.live = False
            b.pos += 1

    def started_seeds(b: WorkerJob) -> set[int]:
        e = ensembles[b.ens]
        return {t.seed for t in b.tasks
                if attempt_state(seed_dir(e.edir, t.seed), t.attempt) != "waiting"}

    try:
        while queue or running:
            queued = len(queue)  # shares of the slots filled in this round
            while free and queue:
                slot = free.pop(0)
                seeds = take_job(queue, len(slots), max_seeds, queued, alone)
                e = ensembles[seeds[0].ens]
                jobs_dir = e.edir / JOBS
                jobs_dir.mkdir(exist_ok=True)
                counter += 1
                job_file = jobs_dir / f"job_{os.getpid()}_{counter:05d}.json"
                extra = {"cuda_visible_devices": slots[slot]}
                if e.s.batch:
                    extra["batch"] = e.s.batch
                job_file.write_text(json.dumps(job_entries(e, seeds, extra)))
                log = jobs_dir / (job_file.stem + ".log")
                env = subprocess_env(e.python, e.s.threads)
                env["CUDA_VISIBLE_DEVICES"] = slots[slot]
                env["LPSC_LMP_SLOT"] = str(slot)  # the CPU of a batched worker's lock step
                cmd = (worker_cmd or [e.python, "-m", WORKER_MODULE]) + [str(e.edir),
                                                                         str(job_file)]
                with open(log, "w") as fh:
                    proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                            preexec_fn=_die_with_parent)
                running.append(WorkerJob(seeds[0].ens, seeds, proc, job_file, log, slot))
                progress.started()
            time.sleep(poll_s)
            for b in list(running):
                rc = b.proc.poll()
                if rc is None:
                    account(b, final=False)
                    continue
                none_started = rc != 0 and not started_seeds(b)
                account(b, final=True, rc=rc)
                running.remove(b)
                free.append(b.slot)
                if none_started:
                    # a worker that cannot even start would requeue its seeds forever
                    dead_starts += 1
                    if dead_starts >= 3:
                        raise EnsembleError(f"workers exit with code {rc} before starting a "
                                            f"seed; last log {b.log}: {_log_tail(b.log)}")
                    continue
                b.job_file.unlink(missing_ok=True)
                if rc == 0:
                    b.log.unlink(missing_ok=True)
                    dead_starts = 0
    except BaseException:
        for b in running:
            b.proc.terminate()
        for b in running:
            b.proc.wait()
            b.job_file.unlink(missing_ok=True)  # its seeds are recorded or removed by now
            b.log.unlink(missing_ok=True)
        raise
    return stats


def remove_job_files(edir: Path) -> None:
    """Remove the job files and worker logs in ``<ensemble>/jobs/`` (left by killed runs)."""
    jobs = edir / JOBS
    if jobs.is_dir():
        for f in jobs.iterdir():
            if f.is_file():
                f.unlink(missing_ok=True)
