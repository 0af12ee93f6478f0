"""Everything that defines an ensemble, and the checks it must pass before anything runs.

Times in ps or fs as named, temperature in K. The defaults are the paper's protocol
(:mod:`lpsc_lmp.protocol`): 300 seeds of 70 ps, fit 15-65 ps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..devices import parse_gpus
from ..errors import EnsembleError, InputError
from ..protocol import PAPER_SEEDS, PAPER_TIME_PS, default_window
from ..rundir import check_name
from ..structure import A_EXPERIMENT
from ..templating import DEFAULT_TEMPLATE

THERMOSTATS = ("nose-hoover", "langevin")


def _finite_positive(value: float, what: str, unit: str, example: str) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise EnsembleError(f"{what} must be a finite number > 0 {unit}, got {value}; pass "
                            f"e.g. {example}")


@dataclass
class EnsembleSettings:
    """Everything that defines an ensemble. Times in ps/fs as named, temperature in K."""

    model: str
    temperature_K: float
    seeds: int = PAPER_SEEDS
    time_ps: float = PAPER_TIME_PS
    timestep_fs: float = 1.0
    supercell: int = 1
    lattice_A: float = A_EXPERIMENT
    structure: str | None = None
    cell: str = "experimental"     # experimental | model | a lattice parameter in A
    cell_npt: dict[str, Any] | None = None  # --cell model: the NpT result (lpsc_lmp.runs.cell)
    thermostat: str = "nose-hoover"
    tdamp_fs: float = 100.0
    msd_every_steps: int = 10
    pos_every_steps: int = 100
    thermo_every_steps: int = 100
    template: str = DEFAULT_TEMPLATE
    templates: str | None = None
    fit_window_ps: tuple[float, float] | None = None
    workers: int = 1
    threads: int = 1
    runs: str | None = None
    tag: str | None = None
    retry_failed: bool = False
    max_retries: int = 1           # retries of a failed seed (policy: lpsc_lmp.runs.plan)
    gpus: str = "auto"             # auto | none | 0,1 (one GPU per worker, round robin)
    workers_per_gpu: int = 1
    batch: int = 0                 # >0: replicas per worker in lock step (lpsc_lmp.md.lockstep)
    route: str | None = None       # one of the card's routes; None: the first this LAMMPS runs
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nsteps(self) -> int:
        return int(round(self.time_ps * 1000.0 / self.timestep_fs))

    def lattice(self) -> float:
        """The lattice parameter of the built-in cell (A): ``--cell <a>``, else ``lattice_A``
        (the experimental one, ``--a``, or the model's own once found)."""
        return float(self.cell) if self.cell not in ("experimental", "model") \
            else float(self.lattice_A)

    def dir_tag(self) -> str | None:
        """The tag of the ensemble directory: ``--tag``, and the cell when it is not the
        experimental one (``cell-model``, ``a<value>``)."""
        cell = None
        if self.cell == "model":
            cell = "cell-model"
        elif self.cell != "experimental":
            cell = f"a{float(self.cell):g}"
        return "-".join(t for t in (self.tag, cell) if t) or None

    def window(self) -> tuple[float, float]:
        """Fit window in ps: given, or the paper's 15-65 of 70 ps scaled to ``time_ps``."""
        if self.fit_window_ps is not None:
            return (float(self.fit_window_ps[0]), float(self.fit_window_ps[1]))
        return default_window(self.time_ps)

    def validate(self) -> None:
        """Every setting checked; a one-line EnsembleError naming the fix for the first that
        is wrong. Nothing is written before this passes."""
        check_name(self.model, "model name")
        if self.tag is not None:
            check_name(self.tag, "--tag")
        _finite_positive(self.temperature_K, "temperature", "K", "--T 1000")
        if self.temperature_K > 5000:
            raise EnsembleError(f"temperature {self.temperature_K:g} K is above 5000 K; pass "
                                "e.g. --T 1000")
        if self.seeds < 1:
            raise EnsembleError(f"need at least 1 seed, got {self.seeds}; pass e.g. --seeds 8")
        _finite_positive(self.timestep_fs, "timestep", "fs", "--timestep 1")
        if self.timestep_fs > 5:
            raise EnsembleError(f"timestep {self.timestep_fs} fs is outside (0, 5]; "
                                "pass e.g. --timestep 1")
        _finite_positive(self.time_ps, "time", "ps", "--time 70")
        _finite_positive(self.tdamp_fs, "thermostat damping time", "fs", "--tdamp 100")
        if self.structure is None:
            _finite_positive(self.lattice_A, "lattice parameter", "A", "--a 9.859")
        if self.cell not in ("experimental", "model"):
            try:
                a = float(self.cell)
            except ValueError:
                raise EnsembleError(f"--cell {self.cell!r} is not experimental, model or a "
                                    "lattice parameter in A like 10.05") from None
            _finite_positive(a, "--cell lattice parameter", "A", "--cell 10.05")
        if self.cell != "experimental" and self.structure:
            raise EnsembleError("--cell applies to the built-in cell; drop it with --structure "
                                "(or scale your structure yourself)")
        if self.thermostat not in THERMOSTATS:
            raise EnsembleError(f"thermostat {self.thermostat!r} unknown; use one of "
                                f"{', '.join(THERMOSTATS)}")
        if self.nsteps < 1:
            raise EnsembleError(f"--time {self.time_ps:g} ps is less than one timestep; pass "
                                "a longer --time")
        for name in ("msd_every_steps", "pos_every_steps", "thermo_every_steps"):
            every = getattr(self, name)
            if every < 1 or self.nsteps % every:
                raise EnsembleError(f"{self.nsteps} steps is not a multiple of {name}={every}; "
                                    "choose --time a multiple of the sampling interval")
        lo, hi = self.window()
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
            raise EnsembleError(f"fit window {lo}-{hi} ps is empty; pass --fit-window START END "
                                "with 0 <= START < END")
        if hi > self.time_ps + 1e-9:
            raise EnsembleError(f"run of {self.time_ps} ps is shorter than the fit window "
                                f"{lo}-{hi} ps; pass --time >= {hi} or a shorter --fit-window")
        if self.supercell < 1:
            raise EnsembleError(f"supercell must be >= 1, got {self.supercell}; "
                                "pass e.g. --supercell 2")
        if self.workers < 1 or self.threads < 1:
            raise EnsembleError("--workers and --threads must be >= 1")
        if self.workers_per_gpu < 1:
            raise EnsembleError("--workers-per-gpu must be >= 1")
        if self.max_retries < 0:
            raise EnsembleError(f"--max-retries must be >= 0, got {self.max_retries}")
        if self.batch < 0:
            raise EnsembleError(f"--batch must be >= 1 (or 0 for off), got {self.batch}")
        try:
            parse_gpus(self.gpus)
        except InputError as exc:
            raise EnsembleError(str(exc)) from None
