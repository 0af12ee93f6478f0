"""An ensemble's directory: the model, the structure, the decks, ``ensemble.json``.

Flow: settings -> model card (on the route this LAMMPS runs) -> structure (checked against the
model's type map) -> one rendered deck per seed -> ``<runs>/<model>/T<T>K[-tag]/`` with
``structure.data`` and ``ensemble.json`` (docs/run-format.md). The seeds are planned and run by
:mod:`lpsc_lmp.runs.plan` and :mod:`lpsc_lmp.runs.sweep`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms

from ..errors import EnsembleError, RegistryError
from ..files import read_json, sha256_file, sha256_text, write_json_atomic
from ..models.derive import derive_route_file
from ..models.registry import ModelCard, load_card
from ..models.routes import CALLBACK_ROUTE
from ..paths import env_python, runs_dir, templates_dir
from ..rundir import (
    ENSEMBLE_FILE,
    LEGACY_PHYSICS_KEYS,
    RUN_FORMAT,
    ensemble_dirname,
    manifest_mismatch,
    read_manifest,
    seed_dirs,
)
from ..structure import build_lpsc, check_structure, read_structure, write_lammps_data
from ..templating import Rendered, render_template
from .settings import EnsembleSettings

#: The seed rendered into the deck that is fingerprinted (then replaced by <SEED>).
SENTINEL_SEED = 918273645


def ensemble_dir(s: EnsembleSettings) -> Path:
    """``<runs>/<model>/T<T>K[-tag]``, absolute (workers run inside the seed directories)."""
    base = (Path(s.runs) if s.runs else runs_dir()).resolve()
    return base / s.model / ensemble_dirname(s.temperature_K, s.dir_tag())


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
    lattice = s.lattice()
    atoms = read_structure(s.structure) if s.structure else build_lpsc(lattice)
    if s.structure and s.supercell > 1:
        atoms = atoms.repeat((s.supercell,) * 3)
    elif not s.structure and s.supercell > 1:
        atoms = build_lpsc(lattice, s.supercell)
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


@dataclass
class EnsemblePlan:
    """An ensemble checked and ready to be created: nothing of it is written yet."""

    s: EnsembleSettings
    card: ModelCard
    atoms: Atoms
    edir: Path
    info: dict[str, Any]
    existing: dict[str, Any] | None  # ensemble.json already there (None: new or rebuilt)


def fingerprint(s: EnsembleSettings, card: ModelCard, edir: Path, structure_sha256: str
                ) -> dict[str, Any]:
    """Everything that determines the physics of a seed, and its sha256: the rendered deck
    with the seed number and the folders of the ensemble and the model replaced by
    placeholders, every template file it was rendered from, the model (its committed source
    file where the file LAMMPS loads is derived from it), the structure and the sampling of
    positions. Two seeds with the same fingerprint differ only in their seed."""
    deck = render_for_seed(s, card, edir / "structure.data", SENTINEL_SEED)
    text = (deck.text.replace(str(SENTINEL_SEED), "<SEED>").replace(str(edir), "<ENSEMBLE>")
            .replace(str(card.directory), "<MODEL_DIR>"))
    source = card.physics_file()
    parts = {"deck_sha256": sha256_text(text), "templates": deck.sources,
             "model": card.name, "route": card.route, "model_source": source.name,
             "model_source_sha256": sha256_file(source),
             "structure_sha256": structure_sha256, "pos_every_steps": s.pos_every_steps}
    return {"sha256": sha256_text(json.dumps(parts, sort_keys=True)), "parts": parts}


def describe_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between two ensemble.json contents, for the refusal message."""
    fo, fn = old.get("fingerprint"), new.get("fingerprint")
    if not fo:  # an ensemble made before fingerprints
        diff = [k for k in LEGACY_PHYSICS_KEYS if old.get(k) != new.get(k)]
        return ", ".join(f"{k}: {old.get(k)} -> {new.get(k)}" for k in diff[:3])
    po, pn = fo["parts"], fn["parts"]
    changed = [k for k in pn if po.get(k) != pn.get(k)]
    if "templates" in changed:
        edited = sorted(t for t in set(po["templates"]) | set(pn["templates"])
                        if po["templates"].get(t) != pn["templates"].get(t))
        changed = [f"template {', '.join(edited)}" if k == "templates" else k for k in changed]
    simple = [f"{k}: {old.get(k)} -> {new.get(k)}" for k in ("temperature_K", "time_ps",
                                                               "timestep_fs", "thermostat",
                                                               "tdamp_fs", "supercell")
              if old.get(k) != new.get(k)]
    return ", ".join(simple or changed[:3]) or "fingerprint"


def plan(s: EnsembleSettings) -> EnsemblePlan:
    """Check everything about an ensemble without writing anything: settings, model card and
    its files, structure, templates, and an existing directory's physics (refused if it
    differs; seeds left by a run whose ensemble.json was lost must agree too)."""
    s.validate()
    card = card_for(s)
    card.verify_files()
    derive_route_file(card)  # a native route's export, made on first use (models prepare)
    model_file = card.require_lammps_file()
    atoms = prepare_structure(s, card)
    edir = ensemble_dir(s)
    with tempfile.TemporaryDirectory() as tmp:
        struct_sha = write_lammps_data(atoms, Path(tmp) / "structure.data", card.type_map)
    info = ensemble_info(s, card, model_file, atoms, struct_sha, edir)
    old_path = edir / ENSEMBLE_FILE
    existing = read_json(old_path) if old_path.is_file() else None
    if old_path.is_file() and not isinstance(existing, dict):
        raise EnsembleError(f"{old_path} is not readable JSON; remove it (it is rebuilt from "
                            "the seeds' manifests) or pass --tag NAME")
    if existing is not None:
        same = (existing.get("fingerprint", {}).get("sha256") == info["fingerprint"]["sha256"]
                if existing.get("fingerprint") else
                all(existing.get(k) == info.get(k) for k in LEGACY_PHYSICS_KEYS))
        if not same:
            raise EnsembleError(f"{edir} holds an ensemble with other physics "
                                f"({describe_difference(existing, info)}); pass --tag NAME "
                                "for a new directory or remove the old one")
    else:
        others = [num for num, sdir in seed_dirs(edir).items()
                  if (m := read_manifest(sdir)) is not None
                  and manifest_mismatch(info, m) is not None]
        if others:
            raise EnsembleError(f"{edir} has no {ENSEMBLE_FILE} and its seeds {others[:5]} "
                                "were run with other physics; pass --tag NAME for a new "
                                "directory or remove the old seeds")
    return EnsemblePlan(s, card, atoms, edir, info, existing)


def create(p: EnsemblePlan) -> dict[str, Any]:
    """Create (or update) the ensemble directory of a plan: ``structure.data`` and
    ``ensemble.json`` (the number of seeds asked for is the largest ever asked). Returns the
    content of ensemble.json."""
    p.edir.mkdir(parents=True, exist_ok=True)
    info = dict(p.existing or p.info)
    info["n_seeds"] = max(int(info.get("n_seeds") or 0), p.s.seeds)
    if not (p.edir / "structure.data").is_file():
        sha = write_lammps_data(p.atoms, p.edir / "structure.data", p.card.type_map)
        if sha != info["structure_sha256"]:
            raise EnsembleError(f"{p.edir}/structure.data came out different from the planned "
                                "structure; report this")
    if p.existing is None and seed_dirs(p.edir):
        info["rebuilt_from_manifests"] = True
    if info != p.existing:
        write_json_atomic(p.edir / ENSEMBLE_FILE, info)
    return info


def prepare(s: EnsembleSettings) -> tuple[Path, ModelCard, dict[str, Any]]:
    """Check everything (:func:`plan`) and create the ensemble directory (:func:`create`)."""
    p = plan(s)
    return p.edir, p.card, create(p)


def ensemble_info(s: EnsembleSettings, card: ModelCard, model_file: Path, atoms: Atoms,
                  struct_sha: str, edir: Path) -> dict[str, Any]:
    """The content of ensemble.json."""
    fp = fingerprint(s, card, edir, struct_sha)
    return {
        "format": RUN_FORMAT, "model": card.name, "architecture": card.architecture,
        "reference": card.reference, "functional": card.functional,
        "route": card.route, "env": card.env,
        "model_file": str(model_file), "model_sha256": sha256_file(model_file),
        "temperature_K": s.temperature_K, "time_ps": s.time_ps, "timestep_fs": s.timestep_fs,
        "supercell": s.supercell,
        "lattice_A": None if s.structure else s.lattice(),
        "cell": {"choice": s.cell, **({"npt": s.cell_npt} if s.cell_npt else {})},
        "structure_source": s.structure or "lpsc_lmp.structure.build_lpsc",
        "structure_sha256": struct_sha, "thermostat": s.thermostat, "tdamp_fs": s.tdamp_fs,
        "msd_every_steps": s.msd_every_steps, "pos_every_steps": s.pos_every_steps,
        "thermo_every_steps": s.thermo_every_steps,
        "n_li": atoms.get_chemical_symbols().count("Li"), "n_atoms": len(atoms),
        "volume_A3": float(atoms.get_volume()), "type_map": list(card.type_map),
        "template": s.template, "template_dir": str(Path(s.templates or templates_dir()).resolve()),
        "template_sha256": fp["parts"]["templates"][s.template],
        "fit_window_ps": list(s.window()), "fingerprint": fp,
    }


def seed_meta(info: dict[str, Any], s: EnsembleSettings, deck: Rendered) -> dict[str, Any]:
    """Provenance and settings every seed manifest carries."""
    keys = ("model", "architecture", "reference", "route", "env", "model_file", "model_sha256",
            "type_map",
            "temperature_K", "time_ps", "timestep_fs", "msd_every_steps", "pos_every_steps",
            "thermo_every_steps", "structure_sha256", "thermostat", "tdamp_fs")
    meta = {k: info[k] for k in keys}
    meta.update(fingerprint=info["fingerprint"]["sha256"], template=deck.template,
                template_dir=str(deck.template_dir),
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
