"""A deck and its model run for a few steps before an ensemble starts, in the model's
environment: a broken template, a model file that does not load or a structure LAMMPS refuses
then fails once, in seconds, with LAMMPS's own first line, instead of in every seed; the steps
per second measured on the way give the time estimate printed before a long ensemble.

``python -m lpsc_lmp.md.preflight JOB_FILE WORKDIR [STEPS]`` takes the first entry of a job
file (as the worker does), runs its deck's set-up in WORKDIR (which holds the structure), the
model attached, then ``run 0``, STEPS of warm-up and STEPS timed, and prints
``{"steps_per_s": ...}`` or ``{"error": "LAMMPS error: ..."}`` (JSON).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from ..environments import json_main
from ..errors import SeedFailed
from .callback import attach
from .deck import split_production_run
from .runner import lammps_session
from .seeds import with_device

#: MD steps timed by the preflight (after ``run 0``, which sets everything up).
PREFLIGHT_STEPS = 20


def preflight(deck_text: str, meta: dict[str, Any], workdir: Path,
              steps: int = PREFLIGHT_STEPS) -> dict[str, Any]:
    """Run the set-up of ``deck_text`` in ``workdir``, ``run 0``, ``steps`` untimed warm-up steps
    and ``steps`` timed ones; return the steps per second. SeedFailed (one line) when LAMMPS
    or the model refuses."""
    setup, _ = split_production_run(deck_text)
    meta = with_device(meta)
    with lammps_session(workdir) as lmp:
        lmp.commands_string(setup)
        handle = attach(lmp, meta["route"], meta)  # noqa: F841 (kept alive for the runs)
        lmp.command("run 0 post no")
        # untimed warm-up: TorchScript models optimise themselves over their first calls,
        # which would make the estimate several times too long
        lmp.command(f"run {steps} pre no post no")
        t0 = time.perf_counter()
        lmp.command(f"run {steps} pre no post no")
        wall = time.perf_counter() - t0
        pe = lmp.get_thermo("pe")
        if pe != pe:  # NaN
            raise SeedFailed("the potential energy is not a number after the first steps")
    return {"steps": steps, "seconds": round(wall, 4),
            "steps_per_s": round(steps / wall, 2) if wall > 0 else None}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print("usage: python -m lpsc_lmp.md.preflight JOB_FILE WORKDIR [STEPS]",
              file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text())[0]
    steps = int(args[2]) if len(args) == 3 else PREFLIGHT_STEPS
    return json_main(lambda: preflight(job["deck"], job["meta"], Path(args[1]), steps))


if __name__ == "__main__":
    sys.exit(main())
