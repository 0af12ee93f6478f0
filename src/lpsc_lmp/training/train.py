"""``lpsc-lmp train``: a split dataset -> a trained, exported, registered model.

:func:`train_model` dispatches on the architecture: DeePMD-kit trains in this environment
(:mod:`lpsc_lmp.training.deepmd`); MACE (:mod:`lpsc_lmp.training.mace`), NequIP and Allegro
(:mod:`lpsc_lmp.training.nequip`) train in their own environments, their output streamed line by
line (and kept as ``train.log`` in the model folder). The trained model then goes through the
export of ``models add`` (:func:`lpsc_lmp.models.add.run_export`), and its card is the one
``models add`` writes plus ``reference_method``, ``dataset``, ``training`` and ``errors``
(energy RMSE per atom and force RMSE over all components on train/test, from the model's own
ASE calculator, :mod:`lpsc_lmp.training.predict`, as ``lpsc-lmp evaluate`` computes them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from ..environments import env_versions, require_env_python, subprocess_env
from ..errors import EnvironmentFailure, ExportError, InputError, RegistryError, TrainingError
from ..files import sha256_file
from ..models.add import make_card, native_routes, run_export
from ..models.architectures import ENV_OF, check_architecture
from ..models.derive import derive_route_file
from ..models.registry import CARD, file_hashes, load_card, load_card_at, publish_model_dir
from .common import (
    SPLITS,
    Echo,
    carry_over,
    dataset_provenance,
    dataset_type_map,
    functional_of,
    read_splits,
    reference_text,
    registered_line,
    rounded_errors,
    training_target,
)
from .deepmd import train_deepmd
from .mace import MODEL_TEXT as MACE_TEXT
from .mace import train_mace
from .nequip import MODEL_TEXT as NEQUIP_TEXT
from .nequip import train_nequip
from .predict import predict_in_env

#: Cutoff of MACE, NequIP and Allegro models unless --rcut is given (A).
R_MAX_A = 5.0
#: what an architecture does with neither --epochs nor --max-minutes (the bundled models)
DEFAULT_EPOCHS = {"mace": 20, "nequip": 60, "allegro": 60}
DEFAULT_MINUTES = {"mace": None, "nequip": 18.0, "allegro": 18.0}
MODEL_TEXT = {"mace": MACE_TEXT, **NEQUIP_TEXT}


def committee_names(name: str, seed: int, seeds: int) -> list[tuple[str, int]]:
    """(model name, training seed) of a committee of ``seeds`` models that differ only in
    their training seed: ``name`` with ``seed``, then ``name-seed<k>`` with seeds k = seed+1,
    ..."""
    return [(name if k == 0 else f"{name}-seed{seed + k}", seed + k) for k in range(seeds)]


def train_model(arch: str, dataset: str, name: str, reference: str, steps: int = 20000,
                templates: Path | None = None, force: bool = False,
                root: Path | None = None, seed: int = 1, rcut: float | None = None,
                reference_method: str | None = None, echo: Echo = print,
                epochs: int | None = None, max_minutes: float | None = None,
                init_from: str | None = None, seeds: int = 1,
                stage_two: bool = False) -> list[Path]:
    """Train ``arch`` on ``<root>/<dataset>/{train,test}.extxyz``; register ``potentials/<name>``.
    deepmd trains for ``steps``; mace/nequip/allegro for ``epochs`` and/or ``max_minutes``.
    ``init_from``: a registered model of the same architecture to start from (transfer
    learning). ``seeds`` > 1: a committee of models that differ only in their training seed
    (:func:`committee_names`; each card says ``committee``). ``stage_two`` (MACE): MACE's
    second training stage with a higher energy weight, kept where it lowers the test energy
    error. Returns the model folders."""
    check_architecture(arch)
    if seeds < 1:
        raise InputError(f"--seeds {seeds} must be >= 1")
    if stage_two and arch != "mace":
        raise InputError("--stage-two is MACE's two-stage training; drop it for --arch "
                         f"{arch}")
    if arch == "deepmd" and (epochs is not None or max_minutes is not None):
        raise InputError("--epochs/--max-minutes are for mace, nequip and allegro; "
                         "deepmd trains for --steps")
    members = committee_names(name, seed, seeds)
    out = []
    for member, member_seed in members:
        extra = {} if seeds == 1 else {"committee": {
            "name": name, "members": [m for m, _ in members], "seed": member_seed}}
        if arch == "deepmd":
            out.append(train_deepmd(dataset, member, reference, steps, templates, force, root,
                                    member_seed, rcut, reference_method, echo, init_from,
                                    extra))
        else:
            out.append(train_in_env(arch, dataset, member, reference, epochs, max_minutes,
                                    templates, force, root, member_seed, rcut,
                                    reference_method, echo, init_from, stage_two, extra))
    return out


def init_model(arch: str, init_from: str, type_map: list[str]) -> tuple[Path, dict[str, Any]]:
    """The file a MACE/NequIP/Allegro training starts from when ``--init-from`` names a
    registered model (the MACE ``.model``, the NequIP-framework package), and the card's
    ``training.init_from``."""
    card = load_card_at(init_from, route="python-callback")
    if card.architecture != arch:
        raise InputError(f"--init-from {init_from} is a {card.architecture} model; a {arch} "
                         f"training starts from a {arch} model")
    if list(card.type_map) != list(type_map):
        raise InputError(f"--init-from {init_from} has type map {list(card.type_map)}, the "
                         f"dataset {type_map}; they must be equal")
    key = "deploy" if arch == "mace" else "package"
    path = card.directory / card.files.get(key, "")
    if not path.is_file():
        raise InputError(f"--init-from {init_from} has no {key} file to start from ({path})")
    method = ("mace_run_train --foundation_model (naive fine-tuning, "
              "--multiheads_finetuning False)" if arch == "mace" else
              "nequip.model.ModelFromPackage with the per-type energy shifts of the new data")
    return path, {"model": card.name, "file": path.name, "sha256": sha256_file(path),
                  "method": method, "cutoff_A": card.cutoff_A}


def train_in_env(arch: str, dataset: str, name: str, reference: str,
                 epochs: int | None = None, max_minutes: float | None = None,
                 templates: Path | None = None, force: bool = False, root: Path | None = None,
                 seed: int = 1, rcut: float | None = None, reference_method: str | None = None,
                 echo: Echo = print, init_from: str | None = None, stage_two: bool = False,
                 extra_card: dict[str, Any] | None = None) -> Path:
    """Train a MACE, NequIP or Allegro model in its environment; register it. Returns the
    model folder."""
    if epochs is not None and epochs < 1:
        raise InputError(f"--epochs {epochs} must be >= 1")
    if max_minutes is not None and max_minutes <= 0:
        raise InputError(f"--max-minutes {max_minutes:g} must be positive")
    if epochs is None and max_minutes is None:
        epochs, max_minutes = DEFAULT_EPOCHS[arch], DEFAULT_MINUTES[arch]
    r_max = float(rcut if rcut is not None else R_MAX_A)
    try:
        exe = require_env_python(ENV_OF[arch], f"--arch {arch}")
    except EnvironmentFailure as exc:
        raise InputError(str(exc)) from None
    ds_dir, pot, out = training_target(dataset, root, name, force)
    type_map, record = dataset_type_map(dataset, root)
    frames = read_splits(ds_dir, type_map)
    init_path, init_card = init_model(arch, init_from, type_map) if init_from else (None, None)
    if init_card is not None:
        if rcut is not None and rcut != init_card["cutoff_A"]:
            raise InputError(f"--rcut {rcut:g} differs from the cutoff of --init-from "
                             f"{init_from} ({init_card['cutoff_A']:g} A); drop --rcut")
        r_max = float(init_card.pop("cutoff_A"))
    pot.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".staging", dir=pot))
    try:
        work, model = stage / "work", stage / "model"
        work.mkdir()
        model.mkdir()
        env = subprocess_env(exe, threads=int(os.environ.get("OMP_NUM_THREADS") or 1))
        limit = (f"{epochs} epochs" if epochs else "no epoch limit") + (
            f", at most {max_minutes:g} min" if max_minutes else "")
        echo(f"training {arch} '{name}' on {ds_dir} ({limit}, type map {type_map}, r_max "
             f"{r_max} A) in .venv/{ENV_OF[arch]}; trainer output follows")
        t0 = time.perf_counter()
        if arch == "mace":
            trained = train_mace(ds_dir, work, model, type_map, r_max, epochs, max_minutes,
                                 seed, templates, exe, env, echo, init_path, stage_two)
        else:
            trained = train_nequip(arch, name, ds_dir, work, model, type_map, r_max, epochs,
                                   max_minutes, seed, templates, exe, env, echo, init_path)
        seconds = time.perf_counter() - t0
        if trained.get("alternatives"):
            choose_stage(arch, trained, stage, ds_dir, echo)
        echo(f"trained in {seconds:.0f} s; exporting (as `lpsc-lmp models add`) ...")
        res = export_trained(arch, trained["source"], model)
        card = trained_card(arch, name, reference, reference_method, dataset, ds_dir, record,
                            frames, r_max, epochs, max_minutes, seed, seconds, res,
                            trained)
        card["files_sha256"] = file_hashes(model, card["files"], card.get("derive"))
        if init_card is not None:
            card["training"]["init_from"] = init_card
            card["regenerate"] += f" --init-from {init_card['model']}"
        card.update(extra_card or {})
        if out.exists() and reference_method is None:
            carry_over(card, out / CARD, echo)
        (model / CARD).write_text(yaml.safe_dump(card, sort_keys=False))
        echo("computing train/test errors with the model's ASE calculator ...")
        card["errors"] = model_errors(model, ds_dir)
        card["errors"]["computed_with"] = f"the model's own ASE calculator on {res['deploy']}"
        card["regenerate"] = card.pop("regenerate")
        (model / CARD).write_text(yaml.safe_dump(card, sort_keys=False))
        publish_model_dir(model, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    echo(registered_line(out, card))
    try:  # the export of the route this LAMMPS runs (pair_mace, pair_nequip, ...), if any
        derive_route_file(load_card(name, root=pot), echo=echo)
    except RegistryError as exc:
        echo(f"warning: the export for the native route failed ({exc}); the model runs on "
             "--route python-callback")
    return out


def export_trained(arch: str, source: Path, folder: Path) -> dict[str, Any]:
    """The export of ``models add`` of a trained model file into ``folder``."""
    try:
        return run_export(arch, source, folder)
    except ExportError as exc:
        raise TrainingError(f"export of the trained model failed: {exc}") from None


def model_errors(folder: Path, ds_dir: Path, splits: tuple[str, ...] = SPLITS
                 ) -> dict[str, dict[str, float]]:
    """Energy and force RMSE of the model in ``folder`` (its card) on the dataset's splits,
    from its own ASE calculator in its environment."""
    files = [ds_dir / f"{s}.extxyz" for s in splits]
    try:
        errs = predict_in_env(load_card(folder.name, root=folder.parent), files)
    except EnvironmentFailure as exc:
        raise TrainingError(f"errors of the trained model could not be computed: {exc}"
                            ) from None
    return {s: rounded_errors(errs[str(f)]) for s, f in zip(splits, files, strict=True)}


def choose_stage(arch: str, trained: dict[str, Any], stage: Path, ds_dir: Path, echo: Echo
                 ) -> None:
    """MACE's two stages: the test errors of each trained model, and ``trained["source"]``
    set to the one with the lower energy error (recorded in ``trained["training"]``)."""
    candidates = {"stage one": trained["source"], **trained["alternatives"]}
    errors = {}
    for label, path in candidates.items():
        folder = stage / f"candidate-{label.replace(' ', '-')}"
        folder.mkdir()
        res = export_trained(arch, path, folder)
        card = make_card(folder.name, arch, "candidate", path, res)
        (folder / CARD).write_text(yaml.safe_dump(card, sort_keys=False))
        errors[label] = model_errors(folder, ds_dir, ("test",))["test"]
        echo(f"{label}: test energy RMSE {errors[label]['energy_rmse_meV_atom']} meV/atom, "
             f"force RMSE {errors[label]['force_rmse_eV_A']} eV/A")
    best = min(errors, key=lambda k: errors[k]["energy_rmse_meV_atom"])
    trained["source"] = candidates[best]
    trained["training"]["stages"] = {"test_errors": errors, "kept": best,
                                     "rule": "the stage with the lower test energy RMSE"}


def program_text(arch: str) -> str:
    """The trainer and its versions, as the card says it (asked of the model's environment)."""
    if arch == "mace":
        v = env_versions("mace", ["mace-torch", "e3nn", "torch"])
        return f"mace-torch {v['mace-torch']} (e3nn {v['e3nn']}, torch {v['torch']}), CPU"
    pkgs = ["nequip", "e3nn", "torch"] + (["nequip-allegro"] if arch == "allegro" else [])
    v = env_versions("nequip", pkgs)
    return (f"nequip {v['nequip']}"
            + (f" + nequip-allegro {v['nequip-allegro']}" if arch == "allegro" else "")
            + f" (e3nn {v['e3nn']}, torch {v['torch']}), CPU")


def trained_card(arch: str, name: str, reference: str, reference_method: str | None,
                 dataset: str, ds_dir: Path, record: dict[str, Any] | None,
                 frames: dict[str, list], r_max: float, epochs: int | None,
                 max_minutes: float | None, seed: int, seconds: float, res: dict[str, Any],
                 trained: dict[str, Any]) -> dict[str, Any]:
    """The card of a trained MACE/NequIP/Allegro model: ``models add``'s card plus where the
    model came from (errors are added once computed)."""
    src = Path(trained["source"])
    card = make_card(name, arch, reference, src, res)
    files, derive = {"deploy": res["deploy"]}, {}
    if arch != "mace":  # the NequIP package the exports are compiled from
        files = {"package": src.name, "deploy": res["deploy"]}
        derive = {res["deploy"]: {"from": src.name, "tool": "nequip-compile"}}
    nat = native_routes(arch, res.get("source"))
    files.update(nat["files"])
    derive.update(nat["derive"])
    limit = []
    if epochs:
        limit.append(f"--epochs {epochs}")
    if max_minutes:
        limit.append(f"--max-minutes {max_minutes:g}")
    prov = dataset_provenance(ds_dir, record)
    return {
        **{k: card[k] for k in ("name", "architecture", "reference")},
        "functional": functional_of(ds_dir, reference),
        "reference_method": reference_method or reference_text(ds_dir, reference),
        **{k: card[k] for k in ("type_map", "cutoff_A")}, "route": nat["route"],
        "env": card["env"],
        "files": files,
        **({"derive": derive} if derive else {}),
        "dataset": dataset,
        "training": {
            "program": program_text(arch), **trained["training"],
            "model": MODEL_TEXT[arch].format(r=r_max),
            "epochs": epochs, "max_minutes": max_minutes, "seed": seed,
            "seconds": round(seconds),
            "threads": int(os.environ.get("OMP_NUM_THREADS") or 1),
            "dataset": prov["dataset"], "dataset_sha256": prov["dataset_sha256"],
            "frames": {s: len(fr) for s, fr in frames.items()},
            "validation": "test.extxyz",
            "sampling": prov["sampling"],
            **({"labelling": prov["labelling"]} if "labelling" in prov else {}),
            "export": res["export"],
        },
        "regenerate": (f"lpsc-lmp train --arch {arch} --dataset {dataset} --name {name} "
                       f"--reference {reference} {' '.join(limit)} --seed {seed} --force"),
    }
