"""Worker process: runs the seeds of one job file inside the model's environment.

``python -m lpsc_lmp.md.worker ENSEMBLE_DIR JOB_FILE`` where JOB_FILE is a JSON list of
``{"seed": int, "deck": str, "meta": {...}}`` written by :mod:`lpsc_lmp.runs.plan` (the only
bridge between the orchestrating environment and the model's). The seeds run one after another,
or, when their meta carries ``batch`` (``--batch K``), together in lock step.
SIGTERM and Ctrl-C remove the seeds in progress (they have no manifest yet) and stop the worker
with exit code 130.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from ..lammps_env import lammps_info, plugin_hashes
from ..rundir import MANIFEST, seed_dir
from .seeds import run_batch, run_seed


def _stop(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def _report(m: dict[str, Any]) -> None:
    if m["status"] != "done":
        print(f"  seed {m['seed']}: FAILED: {m['reason']}", flush=True)
    elif m.get("batch_size"):
        print(f"  seed {m['seed']}: done in {m['wall_s']:.1f} s (batch of {m['batch_size']}, "
              f"{m['batch_mode']}, {m['steps_per_s']:.0f} steps/s per seed)", flush=True)
    else:
        print(f"  seed {m['seed']}: done in {m['wall_s']:.1f} s ({m['steps_per_s']:.0f} "
              "steps/s)", flush=True)


def _remove_unfinished(edir: Path, seeds: list[int]) -> None:
    for seed in seeds:
        sdir = seed_dir(edir, seed)
        if not (sdir / MANIFEST).exists():
            shutil.rmtree(sdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    edir, job_file = Path(args[0]), Path(args[1])
    signal.signal(signal.SIGTERM, _stop)
    provenance = {"lammps_version": lammps_info()["version"], "lammps_plugins": plugin_hashes()}
    jobs = json.loads(job_file.read_text())
    if jobs and jobs[0]["meta"].get("batch"):  # --batch K: the seeds of this file in lock step
        try:
            for m in run_batch(edir, jobs, provenance):
                _report(m)
        except KeyboardInterrupt:
            _remove_unfinished(edir, [j["seed"] for j in jobs])
            return 130
        return 0
    for job in jobs:
        try:
            m = run_seed(edir, job["seed"], job["deck"], dict(job["meta"], **provenance))
        except KeyboardInterrupt:
            _remove_unfinished(edir, [job["seed"]])
            return 130
        _report(m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
