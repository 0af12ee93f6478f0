"""An ensemble's directory: the model, the structure, the decks, ``ensemble.json``.

Flow: settings -> model card (on the route this LAMMPS runs) -> structure (checked against the
model's type map) -> one rendered deck per seed -> ``<runs>/<model>/T<T>K[-tag]/`` with
``structure.data`` and ``ensemble.json`` (docs/run-format.md). The seeds are planned and run by
:mod:`lpsc_lmp.runs.plan` and :mod:`lpsc_lmp.runs.sweep`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ase import Atoms

from ..errors import EnsembleError, RegistryError
from ..files import sha256_file, write_json_atomic
from ..models.derive import derive_route_file
from ..models.registry import ModelCard, load_card
from ..models.routes import CALLBACK_ROUTE
from ..paths import env_python, runs_dir
from ..rundir import ENSEMBLE_FILE, RUN_FORMAT, ensemble_dirname
from ..structure import build_lpsc, check_structure, read_structure, write_lammps_data
from ..templating import Rendered, render_template
from .settings import EnsembleSettings
#: Settings that change the physics: an existing ensemble directory must agree on them.
PHYSICS_KEYS = ("model", "route", "model_sha256", "temperature_K", "time_ps", "timestep_fs",
                "supercell", "structure_sha256", "thermostat", "tdamp_fs", "msd_every_steps",
                "pos_every_steps", "template_sha256")


def ensemble_dir(s: EnsembleSettings) -> Path:
    """``<runs>/<model>/T<T>K[-tag]``, absolute (workers run inside the seed directories)."""
    base = (Path(s.runs) if s.runs else runs_dir()).resolve()
    return base / s.model / ensemble_dirname(s.temperature_K, s.tag)


def deck_context(s: EnsembleSettings, card: ModelCard, data_file: Path, seed: int
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


def render_for_seed(s: EnsembleSettings, card: ModelCard, data_file: Path, seed: int
                    ) -> Rendered:
    """The deck seed ``seed`` of the ensemble runs."""
    tdir = Path(s.templates) if s.templates else None
    return render_template(deck_context(s, card, data_file, seed), s.template, tdir)


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
            return load_card(s.model, route=CALLBACK_ROUTE)
        except RegistryError:
            pass  # no python-callback route: --batch is refused by the caller
    return load_card(s.model, route=s.route)


def prepare(s: EnsembleSettings) -> tuple[Path, ModelCard, dict[str, Any]]:
    """Validate everything and create (or check) the ensemble directory. Nothing is written
    before all checks have passed."""
    s.validate()
    card = card_for(s)
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
        old_path = edir / ENSEMBLE_FILE
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
                   struct_sha: str, probe: Rendered) -> dict[str, Any]:
    """The content of ensemble.json."""
    return {
        "format": RUN_FORMAT, "model": card.name, "architecture": card.architecture,
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


def seed_meta(info: dict[str, Any], s: EnsembleSettings, deck: Rendered) -> dict[str, Any]:
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


def worker_python(card: ModelCard) -> str:
    """The interpreter of the model's environment (``.venv/<env>/bin/python``)."""
    exe = env_python(card.env)
    if exe.exists():
        return str(exe)
    raise EnsembleError(f"environment '{card.env}' for model '{card.name}' is missing ({exe}); "
                        "run `make install`")
