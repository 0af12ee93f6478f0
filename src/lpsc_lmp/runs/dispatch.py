"""Cluster engine: seeds submitted as batch jobs through dpdispatcher (``--engine dispatcher``).

Each job is one task ``python -m lpsc_lmp.md.worker ENSEMBLE_DIR job.json`` running
``seeds_per_job`` seeds of one ensemble one after another: the same job file and worker as the
local engine (:mod:`lpsc_lmp.runs.local`). The workers write straight into the run directory, so the
cluster must see it at the same path (shared file system; dpdispatcher's ``LocalContext`` or
``LazyLocalContext`` on a login node, or a mounted scratch).

The run directory is the source of truth: each round submits exactly the seeds that
:func:`lpsc_lmp.runs.plan.plan_seeds` finds missing, corrupted or failed-with-retries-left. A
round is named by the hash of its (ensemble, seed, attempt) list, so a sweep that was stopped
while its jobs were queued finds them again (dpdispatcher recovers the submission of that name)
instead of submitting them twice. After a round, a seed of the round without a manifest (its job
died, was cancelled or never ran) is recorded as failed with its attempt number and, within the
retry budget, goes into the next round of the same command.

Machine file (JSON or YAML)::

    machine:   {batch_type: Slurm, context_type: LocalContext,
                remote_root: /scratch/me/lpsc-dispatch}      # local_root: set by lpsc-lmp
    resources: {number_node: 1, cpu_per_node: 1, gpu_per_node: 0, queue_name: normal,
                group_size: 1}                                # dpdispatcher Resources keys
    python: /path/to/.venv/dp/bin/python   # optional; default: the model's env on this machine
    threads: 1                             # optional; OMP/torch/DeePMD threads per worker
    check_interval: 30                     # optional; seconds between queue polls
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from ..environments import LOADER_VARS, env_for_subprocess, thread_env
from ..errors import EnsembleError
from ..paths import source_root
from ..rundir import batch_share, read_manifest, seed_dir
from .local import WORKER_MODULE
from .plan import Ensemble, SeedTask, attempt_state, job_entries, may_retry, record_failed
from .progress import Progress

DISPATCH_DIR = ".dispatch"


def load_machine_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise EnsembleError(f"machine file {p} not found; pass --machine FILE (JSON or YAML)")
    text = p.read_text()
    try:
        conf = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise EnsembleError(f"machine file {p} is not valid JSON/YAML: {exc}") from None
    if not isinstance(conf, dict) or not isinstance(conf.get("machine"), dict) \
            or not isinstance(conf.get("resources"), dict):
        raise EnsembleError(f"machine file {p} needs the mappings 'machine' and 'resources' "
                            "(dpdispatcher's Machine and Resources)")
    return conf


def round_name(ensembles: list[Ensemble], tasks: list[SeedTask], seeds_per_job: int) -> str:
    key = json.dumps([[str(ensembles[t.ens].edir), t.seed, t.attempt] for t in tasks]
                     + [seeds_per_job])
    return "round_" + hashlib.sha1(key.encode()).hexdigest()[:12]


def group_jobs(tasks: list[SeedTask], seeds_per_job: int) -> list[list[SeedTask]]:
    """Consecutive seeds of one ensemble, at most ``seeds_per_job`` per job."""
    jobs: list[list[SeedTask]] = []
    for t in tasks:
        if jobs and jobs[-1][0].ens == t.ens and len(jobs[-1]) < seeds_per_job:
            jobs[-1].append(t)
        else:
            jobs.append([t])
    return jobs


def _worker_command(python: str, edir: Path, threads: int) -> str:
    """The job's shell command. Batch systems pass the submitting environment on (Slurm's
    default --export=ALL, the Shell context inherits it), so the loader variables are cleaned
    for ``python`` as for local workers (:func:`lpsc_lmp.environments.env_for_subprocess`):
    entries that point into another project environment are dropped (``env -u`` when nothing
    is left)."""
    clean = env_for_subprocess(python)
    unset = [k for k in LOADER_VARS if k in os.environ and k not in clean]
    env = {k: clean[k] for k in LOADER_VARS if k in clean and clean[k] != os.environ.get(k)}
    env.update(thread_env(threads))
    env["PYTHONPATH"] = str(source_root()) + ":${PYTHONPATH:-}"
    sets = " ".join(f"{k}={shlex.quote(v) if k != 'PYTHONPATH' else v}" for k, v in env.items())
    unsets = "".join(f"-u {k} " for k in unset)
    # The worker's exit code is ignored on purpose: the manifests are the result, and a seed the
    # worker did not finish is handled by our retry policy, not by dpdispatcher's resubmission.
    return (f"env {unsets}{sets} {shlex.quote(python)} -m {WORKER_MODULE} "
            f"{shlex.quote(str(edir))} job.json || echo \"worker exited with code $?\" >&2")


def build_submission(ensembles: list[Ensemble], tasks: list[SeedTask], conf: dict[str, Any],
                     base: Path, seeds_per_job: int):
    """The dpdispatcher Submission of one round, its job files written under ``base``."""
    from dpdispatcher import Machine, Resources, Submission, Task

    name = round_name(ensembles, tasks, seeds_per_job)
    work = base / name
    work.mkdir(parents=True, exist_ok=True)
    mdict = dict(conf["machine"])
    mdict["local_root"] = str(base)
    mdict.setdefault("remote_root", str(base / "remote"))
    rdict = {"number_node": 1, "cpu_per_node": 1, "gpu_per_node": 0, "queue_name": "",
             "group_size": 1, **conf["resources"]}
    threads = int(conf.get("threads", 1))
    dtasks = []
    for k, job in enumerate(group_jobs(tasks, seeds_per_job)):
        e = ensembles[job[0].ens]
        jdir = work / f"job_{k:05d}"
        jdir.mkdir(exist_ok=True)
        (jdir / "job.json").write_text(json.dumps(job_entries(e, job)))
        python = conf.get("python") or e.python
        dtasks.append(Task(command=_worker_command(python, e.edir, threads),
                           task_work_path=f"job_{k:05d}/", forward_files=["job.json"],
                           backward_files=[], outlog="worker.log", errlog="worker.err"))
    sub = Submission(work_base=name, machine=Machine.load_from_dict(mdict),
                     resources=Resources.load_from_dict(rdict), task_list=dtasks)
    return sub, name


def run_dispatcher(ensembles: list[Ensemble], tasks: list[SeedTask], machine_file: str,
                   seeds_per_job: int, progress: Progress, echo=print,
                   check_interval: float | None = None, poll_s: float = 1.0) -> dict[str, int]:
    """Submit ``tasks`` in rounds until every seed is done or out of retries."""
    if seeds_per_job < 1:
        raise EnsembleError("--seeds-per-job must be >= 1")
    conf = load_machine_file(machine_file)
    interval = check_interval if check_interval is not None else conf.get("check_interval", 30)
    base = ensembles[tasks[0].ens].edir.parents[1] / DISPATCH_DIR if tasks else Path(".")
    stats = {"done": 0, "failed": 0, "requeued": 0}
    pending = list(tasks)
    while pending:
        sub, name = build_submission(ensembles, pending, conf, base, seeds_per_job)
        njobs = len(group_jobs(pending, seeds_per_job))
        echo(f"dispatcher: {len(pending)} seed(s) in {njobs} job(s), "
             f"{conf['machine'].get('batch_type')} via {conf['machine'].get('context_type')}; "
             f"work dir {base / name}")
        errors: list[BaseException] = []

        def submit(sub=sub, errors=errors) -> None:
            try:
                sub.run_submission(clean=False, check_interval=interval)
            except BaseException as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)

        th = threading.Thread(target=submit, daemon=True, name="dpdispatcher")
        th.start()
        seen: set[tuple[int, int]] = set()
        while True:
            alive = th.is_alive()
            for t in pending:
                if (t.ens, t.seed) in seen:
                    continue
                e = ensembles[t.ens]
                sdir = seed_dir(e.edir, t.seed)
                st = attempt_state(sdir, t.attempt)
                if st in ("done", "failed"):
                    m = read_manifest(sdir) or {}
                    seen.add((t.ens, t.seed))
                    stats[st] += 1
                    progress.finished(st, m.get("wall_s"), e.s.time_ps,
                                      f"{e.label} seed {t.seed}"
                                      + ("" if st == "done" else f": {m.get('reason', '?')}"),
                                      was_running=False, share=batch_share(m))
            if not alive:
                break
            time.sleep(poll_s)
        th.join()
        if errors:
            echo(f"dispatcher: the submission ended with an error: "
                 f"{str(errors[0]).splitlines()[0] if str(errors[0]) else errors[0]!r}")
        again = []
        for t in pending:
            if (t.ens, t.seed) in seen:
                continue
            e = ensembles[t.ens]
            record_failed(e.edir, t.seed, t.attempt,
                          f"batch job of {name} ended without finishing this seed")
            if may_retry(e.s, t.attempt):
                again.append(SeedTask(t.ens, t.seed, t.attempt + 1))
                stats["requeued"] += 1
                progress.message(f"{e.label} seed {t.seed}: no result from its job; "
                                 f"resubmitting as attempt {t.attempt + 1}")
            else:
                stats["failed"] += 1
                progress.finished("failed", None, None, f"{e.label} seed {t.seed}: no result "
                                  "from its job, attempts used up", was_running=False)
        if again and len(again) == len(pending) and errors:
            raise EnsembleError(f"dispatcher: no job of {name} produced any result "
                                f"({errors[0]}); check the machine file and {base / name}")
        pending = again
    return stats
