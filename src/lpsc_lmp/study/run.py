"""Run a study (:mod:`lpsc_lmp.study.spec`): every ensemble in one seed queue, the teacher
checks and the barriers, then the report (:mod:`lpsc_lmp.study.report`). Everything is
resumable: finished seeds, cells, validations and barriers are kept and reused.

Ensembles of a study are tagged with its name (``runs/<model>/T<T>K-<name>``), so that a study
never mixes with other ensembles of the same model and temperature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..environments import run_in_env
from ..errors import EnvironmentFailure, InputError
from ..files import read_json, sha256_file, write_text_atomic
from ..models.registry import load_card, update_card
from ..paths import runs_dir
from ..runs.settings import EnsembleSettings
from ..runs.sweep import run_sweep
from .barriers import PROTOCOL
from .spec import StudySpec
from .validate import validate


def study_settings(spec: StudySpec) -> list[EnsembleSettings]:
    """The ensembles of a study: models x temperatures, the committee at its temperatures,
    and the cell check (the same models at their own cell)."""
    runs = str(spec.runs) if spec.runs else None

    def one(model: str, T: float, cell: str) -> EnsembleSettings:
        return EnsembleSettings(model=model, temperature_K=T, seeds=spec.seeds,
                                time_ps=spec.time_ps, workers=spec.workers, runs=runs,
                                tag=spec.name, cell=cell, gpus="none",
                                batch=spec.batch.get(model, 0))

    out = [one(m, T, spec.cell) for m in spec.models for T in spec.temperatures]
    out += [one(m, T, spec.cell) for m in spec.committee for T in spec.committee_temperatures]
    cc = spec.cell_check or {}
    other = "model" if spec.cell != "model" else "experimental"
    out += [one(m, T, other) for m in cc.get("models", []) for T in cc.get("temperatures", [])]
    return out


def card_barriers(result: dict[str, Any]) -> dict[str, Any]:
    """The summary of a barriers result that goes on the model's card: per jump the barrier,
    the reverse barrier, the end energy, the hop length, how far the relaxed end lies from the
    target doublet, the largest move of another atom and whether the band converged (eV, A),
    or that the end state is not metastable; the protocol version and the model file's sha256
    it belongs to."""
    keep = ("barrier_eV", "reverse_barrier_eV", "end_energy_eV", "distance_A", "converged",
            "end_from_site_A", "spectator_max_A", "images", "unstable_end", "end_hop_A")
    jumps = {j: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                 if k in keep} for j, r in result["jumps"].items()}
    return {"method": f"NEB, end states relaxed from each other, then a band without and with a "
                      f"climbing image, ordered cell at a = {result['lattice_A']:g} A "
                      "(lpsc-lmp barriers)",
            "protocol": result.get("protocol"), "model_sha256": result["model_sha256"],
            "jumps": jumps}


def stored_barriers(model: str, runs: Path) -> dict[str, Any] | None:
    """The barriers of a model already computed for its current model file by the current
    protocol (:data:`lpsc_lmp.study.barriers.PROTOCOL`): from ``<runs>/<model>/barriers.json``,
    else from its card; None when neither matches the file's sha256 and the protocol."""
    card = load_card(model, route="python-callback")
    sha = sha256_file(card.require_deploy_file())

    def current(b: Any) -> bool:
        return isinstance(b, dict) and b.get("model_sha256") == sha \
            and b.get("protocol") == PROTOCOL

    old = read_json(runs / model / "barriers.json")
    if current(old):
        return old
    on_card = card.raw.get("barriers")
    if current(on_card):
        return {"model": model, "from_card": True, **on_card}
    return None


def barriers_of(model: str, runs: Path, echo=print) -> dict[str, Any]:
    """NEB barriers of a model (:mod:`lpsc_lmp.study.barriers`), cached in
    ``<runs>/<model>/barriers.json`` with the sha256 of the model file, and summarised on the
    model's card (``barriers:``), so a committed card spares the computation."""
    stored = stored_barriers(model, runs)
    if stored is not None:
        return stored
    card = load_card(model, route="python-callback")
    cache = runs / model / "barriers.json"
    echo(f"{model}: NEB barriers of the Li jumps (doublet, intracage, intercage) ...")
    try:
        out = run_in_env(card.env, "lpsc_lmp.study.barriers", [model])
    except EnvironmentFailure as exc:
        raise InputError(f"the barriers of {model} failed: {exc}") from None
    out["model_sha256"] = sha256_file(card.require_deploy_file())
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(cache, json.dumps(out, indent=1))
    update_card(model, "barriers", card_barriers(out))
    echo(f"{model}: barriers written to its card")
    return out


def all_barriers(models: list[str], runs: Path, workers: int = 1, echo=print
                 ) -> dict[str, dict[str, Any]]:
    """:func:`barriers_of` for several models, ``workers`` at a time (each one process on one
    core)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, workers)) as pool:
        done = list(pool.map(lambda m: barriers_of(m, runs, echo), models))
    return dict(zip(models, done, strict=True))


def study_results(spec: StudySpec) -> dict[str, Any]:
    """The teacher checks and barriers a study has already produced (for --report-only)."""
    runs = Path(spec.runs or runs_dir())
    out: dict[str, Any] = {"validate": {}, "barriers": {}}
    if spec.validate:
        T = float(spec.validate.get("temperature", 1200.0))
        for m in spec.models:
            v = read_json(runs / m / f"validate_T{T:g}K.json")
            if isinstance(v, dict):
                out["validate"][m] = v
    for m in spec.barriers:
        if (b := stored_barriers(m, runs)) is not None:
            out["barriers"][m] = b
    return out


def run_study(spec: StudySpec, echo=print, report: bool = True) -> Path:
    """Run (or resume) everything the study asks for; write its report. Returns the report."""
    runs = spec.runs or runs_dir()
    for m in dict.fromkeys([*spec.models, *spec.committee, *spec.barriers]):
        load_card(m)  # every model is registered before anything runs
    settings = study_settings(spec)
    echo(f"study {spec.name}: {len(settings)} ensemble(s) of {spec.seeds} seeds x "
         f"{spec.time_ps:g} ps")
    run_sweep(settings, echo=echo, engine=spec.engine, machine_file=spec.machine,
              seeds_per_job=spec.seeds_per_job)
    results: dict[str, Any] = {"validate": {}, "barriers": {}}
    if spec.validate:
        v = spec.validate
        for m in spec.models:
            results["validate"][m] = validate(
                m, None, float(v.get("temperature", 1200.0)), int(v.get("seeds", 2)),
                float(v.get("time_ps", 4.0)), spec.workers, str(runs), spec.estimator,
                echo=echo)
    results["barriers"] = all_barriers(spec.barriers, Path(runs), spec.workers, echo)
    if not report:
        return Path(runs)
    from .report import write_study_report

    return write_study_report(spec, settings, results, echo=echo)
