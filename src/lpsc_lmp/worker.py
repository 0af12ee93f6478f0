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
    from .lammps_env import lammps_info

    lammps_version = lammps_info()["version"]
    for job in json.loads(job_file.read_text()):
        seed = job["seed"]
        meta = dict(job["meta"], lammps_version=lammps_version)
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


if __name__ == "__main__":
    sys.exit(main())
