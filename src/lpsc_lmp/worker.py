"""Worker process: runs a list of seeds inside the model's environment.

``python -m lpsc_lmp.worker ENSEMBLE_DIR JOB_FILE`` where JOB_FILE is a JSON list of
``{"seed": int, "deck": str, "meta": {...}}`` written by :mod:`lpsc_lmp.ensemble`.
SIGTERM and Ctrl-C remove the seed in progress (it has no manifest yet) and stop the worker.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path

from .runner import run_seed


def _stop(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    edir, job_file = Path(args[0]), Path(args[1])
    signal.signal(signal.SIGTERM, _stop)
    from .lammps_env import lammps_info, plugin_hashes

    lammps_version = lammps_info()["version"]
    plugins = plugin_hashes()
    jobs = json.loads(job_file.read_text())
    if jobs and jobs[0]["meta"].get("batch"):  # --batch K: the seeds of this file in lock step
        return _run_batched(edir, jobs, lammps_version, plugins)
    for job in jobs:
        seed = job["seed"]
        meta = dict(job["meta"], lammps_version=lammps_version, lammps_plugins=plugins)
        try:
            m = run_seed(edir, seed, job["deck"], meta)
        except KeyboardInterrupt:
            shutil.rmtree(edir / "seeds" / f"seed_{seed:06d}", ignore_errors=True)
            return 130
        if m["status"] == "done":
            print(f"  seed {seed}: done in {m['wall_s']:.1f} s ({m['steps_per_s']:.0f} steps/s)",
                  flush=True)
        else:
            print(f"  seed {seed}: FAILED: {m['reason']}", flush=True)
    return 0


def _run_batched(edir: Path, jobs: list[dict], lammps_version: str,
                 plugins: dict[str, str]) -> int:
    from .batched import run_batch

    try:
        ms = run_batch(edir, jobs, {"lammps_version": lammps_version,
                                    "lammps_plugins": plugins})
    except KeyboardInterrupt:
        for job in jobs:
            sdir = edir / "seeds" / f"seed_{job['seed']:06d}"
            if not (sdir / "manifest.json").exists():
                shutil.rmtree(sdir, ignore_errors=True)
        return 130
    for m in ms:
        if m["status"] == "done":
            print(f"  seed {m['seed']}: done in {m['wall_s']:.1f} s (batch of {m['batch_size']}, "
                  f"{m['batch_mode']}, {m['steps_per_s']:.0f} steps/s per seed)", flush=True)
        else:
            print(f"  seed {m['seed']}: FAILED: {m['reason']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
