"""Sweeps: many (model, temperature) ensembles fed to one pool of workers from one seed queue.

``lpsc-lmp ensemble`` is a sweep of one ensemble; ``lpsc-lmp sweep`` runs every (model, T).
All ensembles are prepared and checked first (nothing runs if one is wrong), each directory is
locked (:mod:`lpsc_lmp.lock`), then the seeds still to run go into one queue, ensemble after
ensemble, and the workers take batches of a few seeds of one ensemble from its front, so no worker
idles while any ensemble has seeds left. Each batch is one ``python -m lpsc_lmp.worker EDIR JOB``
process (the same job file the cluster engine, :mod:`lpsc_lmp.dispatch`, submits).

GPUs: ``gpus`` is ``auto`` (``nvidia-smi -L``, restricted to ``CUDA_VISIBLE_DEVICES`` if set),
``none`` or a list such as ``0,1``. Worker slot k gets ``CUDA_VISIBLE_DEVICES`` = GPU k mod n
(round robin, at most ``workers_per_gpu`` per GPU); with no GPU the workers get an empty
``CUDA_VISIBLE_DEVICES`` and run on CPU, which is said once. Every worker also gets its slot
number, ``LPSC_LMP_SLOT``: a batched worker runs its replica threads on CPU k of those allowed
(:func:`lpsc_lmp.batched.lockstep_cpu`).

Retry policy (README "Ensembles, resuming, failures"):

* a ``done`` seed whose result matches its checksum is never touched;
* a seed without manifest (interrupted, or its worker was killed) or whose ``result.npz`` does
  not match the sha256 in its manifest (truncated, corrupted) is redone;
* a ``failed`` seed (MD crash) is rerun when a later command finds it, as long as it has had at
  most ``max_retries`` retries, i.e. ``attempt <= max_retries`` (``attempt`` in its manifest,
  1 for the first run); after that it stays failed and is counted (``retry_failed`` reruns it
  anyway);
* a seed whose worker process dies while running it is recorded as failed (reason: the exit code)
  and, within the budget above, put back in the queue of the same run; seeds of that worker that
  had not started are requeued without using an attempt.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import re
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from .ensemble import (
    EnsembleError,
    EnsembleSettings,
    _worker_env,
    prepare,
    render_for_seed,
    seed_meta,
    seed_status,
    worker_python,
)
from .lock import DirLock, LockError
from .progress import Progress
from .registry import ModelCard
from .runner import write_json_atomic
from .runread import batch_share

#: Seeds per worker process at most: amortises the process start (Python, torch, LAMMPS import)
#: while keeping the end of a run balanced (batches shrink as the queue empties).
MAX_BATCH = 4
#: Test hook: a comma-separated GPU list used instead of asking nvidia-smi ("" = no GPU).
FAKE_GPUS_ENV = "LPSC_LMP_DETECTED_GPUS"


# ---------------------------------------------------------------- GPUs
def detect_gpus() -> list[str]:
    """Visible GPU ids: ``nvidia-smi -L`` (absent, failing or empty: none), restricted to
    ``CUDA_VISIBLE_DEVICES`` when that is set."""
    fake = os.environ.get(FAKE_GPUS_ENV)
    if fake is not None:
        return [g.strip() for g in fake.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    ids = re.findall(r"^GPU (\d+):", out.stdout, flags=re.M) if out.returncode == 0 else []
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if ids and cvd is not None:
        return [g.strip() for g in cvd.split(",") if g.strip()][:len(ids)]
    return ids


def resolve_gpus(spec: str | None, detect: Callable[[], list[str]] = detect_gpus) -> list[str]:
    spec = (spec or "auto").strip()
    if spec == "auto":
        return detect()
    if spec in ("none", "cpu", ""):
        return []
    gpus = [g.strip() for g in spec.split(",") if g.strip()]
    if not all(re.fullmatch(r"[\w-]+", g) for g in gpus):
        raise EnsembleError(f"--gpus '{spec}' is not auto, none or a list like 0,1")
    return gpus


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


# ---------------------------------------------------------------- planning
@dataclass
class Ensemble:
    """A prepared ensemble of a sweep."""

    s: EnsembleSettings
    edir: Path
    card: ModelCard
    info: dict[str, Any]
    python: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.edir.parent.name}/{self.edir.name}"


@dataclass
class SeedTask:
    ens: int          # index into the sweep's ensembles
    seed: int
    attempt: int      # 1 for a first run


def _manifest(sdir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((sdir / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def plan_seeds(edir: Path, n: int, max_retries: int = 1, retry_failed: bool = False
               ) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """(seed, attempt) pairs to run and counts ``done``/``failed``/``retry``/``todo``.

    ``failed`` counts seeds that stay failed (retries used up); ``retry`` the failed ones rerun.
    """
    counts = {"done": 0, "failed": 0, "retry": 0, "todo": 0}
    out = []
    for seed in range(1, n + 1):
        sdir = edir / "seeds" / f"seed_{seed:06d}"
        st = seed_status(sdir)
        if st == "done":
            counts["done"] += 1
            continue
        m = _manifest(sdir) or {}
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
    if not (sdir / "manifest.json").is_file():
        return "started" if sdir.exists() else "waiting"
    m = _manifest(sdir) or {}
    if int(m.get("attempt", 1)) != attempt:
        return "waiting"
    st = seed_status(sdir)
    return st if st in ("done", "failed") else "started"


def record_failed(edir: Path, seed: int, attempt: int, reason: str) -> None:
    """A failed manifest for a seed that died without writing one (its partial files go)."""
    import shutil

    sdir = edir / "seeds" / f"seed_{seed:06d}"
    shutil.rmtree(sdir, ignore_errors=True)
    sdir.mkdir(parents=True)
    write_json_atomic(sdir / "manifest.json", {"format": 1, "seed": seed, "status": "failed",
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


def prepare_all(settings: list[EnsembleSettings], echo=print
                ) -> tuple[list[Ensemble], list[SeedTask], list[DirLock]]:
    """Prepare every ensemble, lock its directory, plan its seeds. On any error nothing runs and
    the locks taken so far are released."""
    ensembles = []
    for s in settings:
        if s.batch:  # before anything is written
            from .batched import BatchError, check_batchable
            from .ensemble import card_for

            try:
                check_batchable(card_for(s).route, s.model)
            except BatchError as exc:
                raise EnsembleError(str(exc)) from None
        edir, card, info = prepare(s)
        ensembles.append(Ensemble(s, edir, card, info, python=worker_python(card)))
    locks: list[DirLock] = []
    try:
        for e in ensembles:
            locks.append(DirLock(e.edir, {"seeds": e.s.seeds, "model": e.s.model,
                                          "temperature_K": e.s.temperature_K}).acquire())
    except LockError as exc:
        for lk in locks:
            lk.release()
        raise EnsembleError(str(exc)) from None
    tasks = []
    for i, e in enumerate(ensembles):
        pairs, e.counts = plan_seeds(e.edir, e.s.seeds, e.s.max_retries, e.s.retry_failed)
        tasks.extend(SeedTask(i, seed, att) for seed, att in pairs)
        c = e.counts
        retry = f" ({c['retry']} of them retries)" if c["retry"] else ""
        echo(f"{e.edir}: {c['done']} done, {c['failed']} failed, {len(pairs)} to run{retry} "
             f"({e.card.name}, {e.s.temperature_K:g} K, {e.s.time_ps:g} ps)")
    return ensembles, tasks, locks


# ---------------------------------------------------------------- local engine
def _die_with_parent() -> None:  # pragma: no cover (runs in the child)
    """Linux: the worker gets SIGTERM if this process dies (no orphan writing a locked dir)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class _Batch:
    ens: int
    tasks: list[SeedTask]
    proc: subprocess.Popen
    job_file: Path
    log: Path
    slot: int
    pos: int = 0      # tasks[:pos] are accounted for
    live: bool = True  # progress counts tasks[pos] as running


def _take_batch(queue: deque[SeedTask], nslots: int, max_batch: int,
                queued: int | None = None) -> list[SeedTask]:
    """The next batch for a free worker slot: at most ``max_batch`` seeds of one ensemble and
    at most a fair share, ``queued / nslots``, so the end stays balanced. ``queued`` is the
    queue length when this round of free slots began to be filled (default: now): slots
    filled together get equal shares (300 seeds, 4 slots, --batch 64: 64, 64, 64, 64, not
    64, 59, 45, 33 as the queue shrinks under them)."""
    queued = len(queue) if queued is None else queued
    size = max(1, min(max_batch, math.ceil(queued / nslots)))
    first = queue.popleft()
    out = [first]
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
              progress: Progress, max_batch: int = MAX_BATCH, poll_s: float = 0.25,
              worker_cmd: list[str] | None = None) -> dict[str, int]:
    """Run ``tasks`` on len(slots) worker processes; return the counts of this run.

    ``worker_cmd`` replaces ``[python, -m, lpsc_lmp.worker]`` (tests).
    """
    queue = deque(tasks)
    free = list(range(len(slots)))
    running: list[_Batch] = []
    stats = {"done": 0, "failed": 0, "requeued": 0}
    dead_starts = 0
    counter = 0

    def account(b: _Batch, final: bool, rc: int | None = None) -> None:
        """Report the seeds of ``b`` that ended; when its worker has exited (``final``), record
        or requeue the ones without a result."""
        e = ensembles[b.ens]
        while b.pos < len(b.tasks):
            t = b.tasks[b.pos]
            sdir = e.edir / "seeds" / f"seed_{t.seed:06d}"
            st = attempt_state(sdir, t.attempt)
            if st in ("done", "failed"):
                m = _manifest(sdir) or {}
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
                if e.s.retry_failed or t.attempt <= e.s.max_retries:
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

    def started_seeds(b: _Batch) -> set[int]:
        e = ensembles[b.ens]
        return {t.seed for t in b.tasks
                if attempt_state(e.edir / "seeds" / f"seed_{t.seed:06d}", t.attempt) != "waiting"}

    try:
        while queue or running:
            queued = len(queue)  # shares of the slots filled in this round
            while free and queue:
                slot = free.pop(0)
                batch = _take_batch(queue, len(slots), max_batch, queued)
                e = ensembles[batch[0].ens]
                jobs_dir = e.edir / "jobs"
                jobs_dir.mkdir(exist_ok=True)
                counter += 1
                job_file = jobs_dir / f"batch_{os.getpid()}_{counter:05d}.json"
                extra = {"cuda_visible_devices": slots[slot]}
                if e.s.batch:
                    extra["batch"] = e.s.batch
                job_file.write_text(json.dumps(job_entries(e, batch, extra)))
                log = jobs_dir / (job_file.stem + ".log")
                env = _worker_env(e.s.threads, e.python)
                env["CUDA_VISIBLE_DEVICES"] = slots[slot]
                env["LPSC_LMP_SLOT"] = str(slot)  # the CPU of a batched worker's lock step
                cmd = (worker_cmd or [e.python, "-m", "lpsc_lmp.worker"]) + [str(e.edir),
                                                                             str(job_file)]
                with open(log, "w") as fh:
                    proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                            preexec_fn=_die_with_parent)
                running.append(_Batch(batch[0].ens, batch, proc, job_file, log, slot))
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
        raise
    return stats


# ---------------------------------------------------------------- entry points
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
            from .deploy import derive_for_device

            for e in {e.card.name: e for e in ensembles}.values():  # NequIP: per-device files
                derive_for_device(e.card, "cuda" if any(slots) else "cpu", bool(first.batch),
                                  echo)
            progress = Progress(len(tasks), len(slots), stream=progress_stream, tty=tty)
            try:
                stats = run_local(ensembles, tasks, slots, progress, worker_cmd=worker_cmd,
                                  max_batch=first.batch or MAX_BATCH)
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


def parse_list(text: str, kind=str) -> list:
    """``"700,800"`` or ``"700 800"`` -> [700, 800] (order kept, duplicates dropped)."""
    out = []
    for item in re.split(r"[,\s]+", text.strip()):
        if item:
            v = kind(item)
            if v not in out:
                out.append(v)
    return out


# ---------------------------------------------------------------- CLI
def _parallel_options(f):
    opts = [
        click.option("--threads", type=int, default=1, show_default=True,
                     help="Threads per worker (OpenMP/torch/DeePMD)."),
        click.option("--gpus", default="auto", show_default=True,
                     help="auto (nvidia-smi), none, or GPU ids like 0,1: one GPU per worker, "
                          "round robin."),
        click.option("--workers-per-gpu", type=int, default=1, show_default=True,
                     help="Workers sharing one GPU."),
        click.option("--max-retries", type=int, default=1, show_default=True,
                     help="Times a failed seed is rerun by later commands before it stays "
                          "failed."),
        click.option("--retry-failed", is_flag=True,
                     help="Rerun every failed seed, whatever its attempt count."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@click.command("sweep")
@click.option("--models", required=True, help="Models, comma or space separated.")
@click.option("--temps", required=True, help="Temperatures (K), comma or space separated.")
@click.option("--seeds", type=int, default=300, show_default=True, help="Seeds per ensemble.")
@click.option("--time", "time_ps", type=float, default=70.0, show_default=True,
              help="Length of each trajectory (ps).")
@click.option("--timestep", "timestep_fs", type=float, default=1.0, show_default=True)
@click.option("--supercell", type=int, default=1, show_default=True)
@click.option("--thermostat", type=click.Choice(["nose-hoover", "langevin"]),
              default="nose-hoover", show_default=True)
@click.option("--tdamp", "tdamp_fs", type=float, default=100.0, show_default=True)
@click.option("--template", default="nvt.lmp.j2", show_default=True)
@click.option("--templates", type=click.Path(), default=None)
@click.option("--runs", type=click.Path(), default=None,
              help="Root of run directories (default: runs/ of the project).")
@click.option("--tag", default=None, help="Suffix of the ensemble directory names.")
@click.option("--fit-window", type=(float, float), default=None)
@click.option("--workers", type=int, default=None,
              help="Parallel worker processes [default: GPUs x workers-per-gpu, or 1 on CPU].")
@_parallel_options
@click.option("--engine", type=click.Choice(["local", "dispatcher"]), default="local",
              show_default=True, help="local processes, or batch jobs through dpdispatcher.")
@click.option("--machine", "machine_file", type=click.Path(), default=None,
              help="dpdispatcher machine/resources file (JSON/YAML) for --engine dispatcher.")
@click.option("--seeds-per-job", type=int, default=10, show_default=True,
              help="Seeds run one after another by each batch job (dispatcher).")
@click.option("--route", default=None,
              help="Run every model on this route of its card (e.g. python-callback) instead of "
                   "the first one this LAMMPS has.")
@click.option("--batch", type=int, default=0, show_default=True,
              help="Seeds per worker advanced in lock step, the model evaluating them in one "
                   "batched call (python-callback models, --engine local; 0 = off).")
def sweep_command(models: str, temps: str, engine: str, machine_file: str | None,
                  seeds_per_job: int, **kw) -> None:
    """Run every (model, temperature) ensemble from one shared queue of seeds."""
    import sys

    from .status import format_table, status_rows

    model_list = parse_list(models)
    try:
        temp_list = parse_list(temps, float)
    except ValueError:
        raise EnsembleError(f"--temps '{temps}' is not a list of numbers like 700,800") from None
    if not kw["workers"]:
        kw["workers"] = len(plan_slots(None, resolve_gpus(kw["gpus"]), kw["workers_per_gpu"])[0])
    settings = [settings_from_options(m, t, kw) for m in model_list for t in temp_list]
    try:
        edirs = run_sweep(settings, echo=click.echo, engine=engine, machine_file=machine_file,
                          seeds_per_job=seeds_per_job)
    except KeyboardInterrupt:
        sys.exit(130)
    rows = [r for d in edirs for r in status_rows(d)]
    click.echo(format_table(rows))
    click.echo("analysis of everything finished: lpsc-lmp report (or make report)")


def settings_from_options(model: str, temperature: float, kw: dict[str, Any]
                          ) -> EnsembleSettings:
    return EnsembleSettings(
        model=model, temperature_K=temperature, seeds=kw["seeds"], time_ps=kw["time_ps"],
        timestep_fs=kw["timestep_fs"], supercell=kw["supercell"], thermostat=kw["thermostat"],
        tdamp_fs=kw["tdamp_fs"], template=kw["template"], templates=kw["templates"],
        runs=kw["runs"], tag=kw["tag"], fit_window_ps=kw["fit_window"],
        workers=kw["workers"], threads=kw["threads"], gpus=kw["gpus"],
        workers_per_gpu=kw["workers_per_gpu"], max_retries=kw["max_retries"],
        retry_failed=kw["retry_failed"], route=kw.get("route"), batch=kw.get("batch", 0))


SWEEP_COMMANDS = [sweep_command]
