"""The cell an ensemble runs in: ``--cell experimental | model | <a in A>``.

- ``experimental`` (default): the room-temperature lattice of Deiseroth et al. (a = 9.859 A),
  or ``--a``;
- a number: that lattice parameter (A); the ensemble directory is tagged ``a<value>``;
- ``model``: the model's own cell at the ensemble's temperature and zero pressure, from a short
  NpT run of that model (``templates/npt.lmp.j2``, :mod:`lpsc_lmp.md.npt`): the mean lattice
  parameter of its second half. The result is kept in ``<runs>/<model>/cells/T<T>K.json`` with
  what made it (model source file, templates, settings) and reused while those are the same;
  the ensemble directory is tagged ``cell-model`` and its ensemble.json records the NpT result.

Why it matters: at the experimental lattice a model trained on PBE-like labels sits at a few
GPa at high temperature (its own volume is larger), and D depends on the volume; the choice is
part of the uncertainty budget of a study (docs/decisions.md).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from ..environments import run_in_env
from ..errors import EnsembleError, EnvironmentFailure
from ..files import read_json, sha256_file, sha256_text, write_json_atomic
from ..models.registry import ModelCard
from ..structure import A_EXPERIMENT, build_lpsc, write_lammps_data
from ..templating import render_template
from .ensemble import deck_context
from .settings import EnsembleSettings

#: The NpT run of --cell model: length (ps), barostat damping (fs), sampling (steps).
NPT_TIME_PS = 20.0
NPT_PDAMP_FS = 1000.0
NPT_EVERY_STEPS = 10
NPT_TEMPLATE = "npt.lmp.j2"


def npt_settings(s: EnsembleSettings) -> dict[str, Any]:
    """What determines an NpT cell besides the model and templates."""
    return {"temperature_K": s.temperature_K, "time_ps": NPT_TIME_PS,
            "timestep_fs": s.timestep_fs, "tdamp_fs": s.tdamp_fs, "pdamp_fs": NPT_PDAMP_FS,
            "lattice_start_A": A_EXPERIMENT, "every_steps": NPT_EVERY_STEPS}


def training_lattice_range(card: ModelCard) -> tuple[float, float] | None:
    """The lattice parameters (A, of the 52-atom cubic cell, from each frame's volume per atom)
    spanned by the training frames of the model's dataset (card ``dataset``), or None when the
    card names no dataset of ``data/``."""
    from ase.io import read

    from ..paths import data_root

    dataset = card.raw.get("dataset")
    path = data_root() / str(dataset) / "train.extxyz" if dataset else None
    if path is None or not path.is_file():
        return None
    n_cell = len(build_lpsc())
    a = [(f.get_volume() * n_cell / len(f)) ** (1.0 / 3.0) for f in read(path, ":")]
    return (float(min(a)), float(max(a))) if a else None


def outside_training(out: dict[str, Any]) -> str | None:
    """A one-line warning when a model cell lies outside the lattices of its training data."""
    rng = out.get("training_a_range_A")
    if not rng or rng[0] <= out["a_A"] <= rng[1]:
        return None
    return (f"{out['model']}'s own cell at {out['key']['temperature_K']:g} K, "
            f"a = {out['a_A']:.3f} A, "
            f"lies outside the lattices of its training frames ({rng[0]:.3f}-{rng[1]:.3f} A): "
            "the model extrapolates there; prefer --cell experimental, or train on frames "
            "that reach that volume")


def model_cell(s: EnsembleSettings, card: ModelCard, echo=print) -> dict[str, Any]:
    """The model's own cell at ``s.temperature_K`` (cached; see the module docstring), with a
    warning when it lies outside the lattices of the model's training frames."""
    out = _npt_cell(s, card, echo)
    warning = outside_training(out)
    if warning:
        echo(f"warning: {warning}")
    return out


def _npt_cell(s: EnsembleSettings, card: ModelCard, echo=print) -> dict[str, Any]:
    """The cached NpT cell, or a new NpT run of the model (written to the cache)."""
    base = (Path(s.runs) if s.runs else None)
    from ..paths import runs_dir

    cache = (base or runs_dir()).resolve() / s.model / "cells" / f"T{s.temperature_K:g}K.json"
    tdir = Path(s.templates) if s.templates else None
    atoms = build_lpsc(A_EXPERIMENT)
    nsteps = int(round(NPT_TIME_PS * 1000.0 / s.timestep_fs))
    with tempfile.TemporaryDirectory(prefix="lpsc-npt-") as tmp:
        work = Path(tmp)
        data = work / "structure.data"
        write_lammps_data(atoms, data, card.type_map)
        ctx = dict(deck_context(s, card, data, 1), nsteps=nsteps,
                   pdamp_ps=NPT_PDAMP_FS / 1000.0, cell_every=NPT_EVERY_STEPS)
        deck = render_template(ctx, NPT_TEMPLATE, tdir)
        key = {"model_source_sha256": sha256_file(card.physics_file()), "route": card.route,
               "templates": deck.sources, **npt_settings(s)}
        key_sha = sha256_text(json.dumps(key, sort_keys=True))
        old = read_json(cache)
        if isinstance(old, dict) and old.get("key_sha256") == key_sha:
            if "training_a_range_A" not in old:
                old["training_a_range_A"] = training_lattice_range(card)
            return old
        echo(f"{card.name}: finding its own cell at {s.temperature_K:g} K ({NPT_TIME_PS:g} ps "
             "NpT at zero pressure, once) ...")
        meta = {"route": card.route, "architecture": card.architecture,
                "model_file": str(card.lammps_file), "type_map": list(card.type_map),
                "timestep_ps": s.timestep_fs / 1000.0, "cell_every_steps": NPT_EVERY_STEPS}
        job = work / "job.json"
        job.write_text(json.dumps([{"seed": 1, "deck": deck.text, "meta": meta}]))
        try:
            res = run_in_env(card.env, "lpsc_lmp.md.npt", [str(job), tmp], threads=s.threads)
        except EnvironmentFailure as exc:
            raise EnsembleError(f"the NpT run for --cell model of {card.name} failed: {exc}; "
                                f"check {NPT_TEMPLATE} or pass --cell experimental") from None
    out = {"model": card.name, "key": key, "key_sha256": key_sha, **res,
           "training_a_range_A": training_lattice_range(card)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache, out)
    echo(f"{card.name} at {s.temperature_K:g} K: a = {res['a_A']:.4f} +- "
         f"{res['a_stderr_A']:.4f} A (fluctuation {res['a_std_A']:.3f} A), "
         f"{res['pressure_GPa']:+.2f} GPa")
    return out
