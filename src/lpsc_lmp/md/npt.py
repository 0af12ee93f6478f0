"""The model's own cell at a temperature: a short NpT run (``templates/npt.lmp.j2``) in the
model's environment, for ``--cell model``.

``python -m lpsc_lmp.md.npt JOB_FILE WORKDIR`` runs the deck of the job file's first entry (as
the worker does, the model attached on its route) and prints the cell of the second half of the
run as JSON: mean lattice parameter a (A, of the conventional cell: the box length), its
standard deviation and the standard error of its mean (from block averages), the mean volume
(A^3), pressure (GPa) and temperature (K), and the samples.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..environments import json_main
from ..errors import SeedFailed
from .callback import attach
from .deck import split_production_run
from .runner import fix_vector_rows, lammps_session
from .seeds import with_device

#: Blocks the second half is cut into for the standard error of the mean lattice parameter.
BLOCKS = 5


def block_stderr(x: np.ndarray, blocks: int = BLOCKS) -> float:
    """Standard error of the mean of a correlated series from ``blocks`` block means."""
    n = x.size // blocks
    if n < 1:
        return float("nan")
    means = x[: n * blocks].reshape(blocks, n).mean(axis=1)
    return float(means.std(ddof=1) / math.sqrt(blocks))


def run_npt(deck_text: str, meta: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run an NpT deck; the cell of the second half of the run. SeedFailed (one line) when
    LAMMPS or the model fails."""
    setup, nsteps = split_production_run(deck_text)
    every = int(meta["cell_every_steps"])
    meta = with_device(meta)
    with lammps_session(workdir) as lmp:
        lmp.commands_string(setup)
        handle = attach(lmp, meta["route"], meta)  # noqa: F841 (kept alive for the run)
        lmp.command(f"run {nsteps}")
        rows = fix_vector_rows(lmp, "cell", nsteps // every + 1, 4)
    if not np.all(np.isfinite(rows)):
        raise SeedFailed("the NpT run gave non-finite volumes or pressures")
    half = rows[rows.shape[0] // 2:]
    a = half[:, 1]
    return {"a_A": float(a.mean()), "a_std_A": float(a.std(ddof=1)),
            "a_stderr_A": block_stderr(a), "volume_A3": float(half[:, 0].mean()),
            "pressure_GPa": float(half[:, 2].mean() * 1e-4),
            "temperature_K": float(half[:, 3].mean()), "samples": int(a.size),
            "t_ps": float(nsteps * meta["timestep_ps"]),
            "a_series_A": [round(float(v), 5) for v in rows[:, 1]]}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m lpsc_lmp.md.npt JOB_FILE WORKDIR", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text())[0]
    return json_main(lambda: run_npt(job["deck"], job["meta"], Path(args[1])))


if __name__ == "__main__":
    sys.exit(main())
