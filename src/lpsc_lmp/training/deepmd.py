"""DeePMD-kit models (PyTorch backend): train, freeze, compress, evaluate, register.

Runs in the ``dp`` environment (the CLI's own). The training input is rendered from
``templates/train/deepmd.json.j2``; the data are converted to DeePMD's npy format with dpdata.
Errors are computed with DeePMD's own inference (``deepmd.infer.DeepPot``) on the frozen model:
energy RMSE per atom (meV/atom) and force RMSE over all components (eV/A). The registered model
folder holds ``frozen.pth``, ``compressed.pth`` (the deploy file, derived at install from the
frozen one), ``training_input.json``, ``lcurve.out`` and ``card.yaml``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from ase.io import read

from ..errors import DatasetError, InputError, TrainingError
from ..files import sha256_file
from ..models.derive import dp_compress, tool_command
from ..models.registry import CARD, load_card_at, publish_model_dir
from ..paths import relative_to_project
from ..structure import DEFAULT_TYPE_MAP
from ..templating import render_template
from .common import (
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

#: se_e2_a neighbour selection of the bundled model (Li, P, S, Cl within 6 A)
DEFAULT_SEL = (48, 12, 36, 12)
RCUT_A = 6.0
#: The training checkpoint kept in the model folder (what ``--init-from`` fine-tunes).
CHECKPOINT = "checkpoint.pt"
DESCRIPTOR = ("se_e2_a, rcut {rcut} A (smooth from 0.5 A), embedding [16, 32, 64], "
              "fitting [64, 64, 64]")


def dp_run(args: list[str], cwd: Path) -> None:
    """``dp ARGS`` of the DeePMD environment in ``cwd``, its output streamed to the terminal;
    TrainingError if it fails."""
    exe, env = tool_command("dp", "dp")
    r = subprocess.run([str(exe), *args], cwd=cwd, env=env)
    if r.returncode:
        raise TrainingError(f"dp {args[1] if len(args) > 1 else args[0]} failed (exit "
                            f"{r.returncode}); see its output above and {cwd}")


def to_deepmd_npy(extxyz: Path, out: Path, type_map: list[str]) -> int:
    """Convert labelled frames to a DeePMD npy system folder; return the number of frames."""
    import dpdata

    frames = read(extxyz, index=":")
    ms = dpdata.MultiSystems(type_map=type_map)
    for at in frames:
        ms.append(dpdata.LabeledSystem(at, fmt="ase/structure", type_map=type_map))
    if len(ms.systems) != 1:
        raise ValueError(f"{extxyz}: frames of different compositions; expected one")
    system = next(iter(ms.systems.values()))
    system.to("deepmd/npy", str(out))
    return len(frames)


def evaluate_dp(model: Path, extxyz: Path, type_map: list[str]) -> dict[str, float]:
    """Energy (meV/atom) and force (eV/A) RMSE of a frozen DeePMD model on labelled frames."""
    from deepmd.infer import DeepPot

    dp = DeepPot(str(model))
    de, df = [], []
    for at in read(extxyz, index=":"):
        types = np.array([type_map.index(s) for s in at.get_chemical_symbols()])
        e, f, _ = dp.eval(at.get_positions()[None], at.cell.array[None], types)
        de.append((float(e.ravel()[0]) - at.get_potential_energy()) / len(at))
        df.append((f.reshape(-1, 3) - at.get_forces()).ravel())
    return {"energy_rmse_meV_atom": float(np.sqrt(np.mean(np.square(de))) * 1000.0),
            "force_rmse_eV_A": float(np.sqrt(np.mean(np.square(np.concatenate(df))))),
            "frames": len(de)}


def neighbour_sel(frames: list, type_map: list[str], rcut: float) -> list[int]:
    """DeePMD ``sel``: the most neighbours of each type within ``rcut`` seen around any atom,
    +25 % headroom, rounded up to a multiple of 4 (at least 4)."""
    from ase.neighborlist import neighbor_list

    most = np.zeros(len(type_map), int)
    step = max(len(frames) // 50, 1)
    for at in frames[::step]:
        i, j = neighbor_list("ij", at, rcut)
        types = np.array([type_map.index(s) for s in at.get_chemical_symbols()])
        counts = np.zeros((len(at), len(type_map)), int)
        np.add.at(counts, (i, types[j]), 1)
        most = np.maximum(most, counts.max(axis=0))
    return [max(4, int(math.ceil(m * 1.25 / 4.0)) * 4) for m in most]


def choose_sel(train_file: Path, type_map: list[str], rcut: float) -> list[int]:
    need = neighbour_sel(read(train_file, index=":"), type_map, rcut)
    if tuple(type_map) == DEFAULT_TYPE_MAP and rcut == RCUT_A and all(
            n <= d for n, d in zip(need, DEFAULT_SEL, strict=True)):
        return list(DEFAULT_SEL)  # as the bundled model, so `make retrain` reproduces it
    return need


def train(dataset: Path, workdir: Path, type_map: list[str], steps: int, rcut_A: float = 6.0,
          sel: list[int] | None = None, seed: int = 1, templates: Path | None = None,
          init: tuple[str, Path] | None = None) -> dict[str, Any]:
    """Train and freeze; return paths and timings. ``dataset`` holds {train,test}.extxyz.
    ``init``: ``("finetune", checkpoint)`` (DeePMD-kit's fine-tuning: the pretrained model's
    network, its energy bias re-fitted to the new data) or ``("init-frz-model", frozen.pth)``
    (weights initialised from a frozen model)."""
    workdir, dataset = workdir.resolve(), dataset.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    n_train = to_deepmd_npy(dataset / "train.extxyz", workdir / "train", type_map)
    n_test = to_deepmd_npy(dataset / "test.extxyz", workdir / "test", type_map)
    ctx = {"type_map": type_map, "sel": sel or list(DEFAULT_SEL), "rcut_A": rcut_A,
           "seed": seed, "decay_steps": max(steps // 200, 1), "steps": steps,
           "disp_freq": max(steps // 50, 1),
           "train_systems": [str(workdir / "train")], "valid_systems": [str(workdir / "test")]}
    deck = render_template(ctx, "train/deepmd.json.j2", templates)
    (workdir / "input.json").write_text(deck.text)
    json.loads(deck.text)  # the rendered input must be valid JSON
    extra = []
    if init is not None:
        extra = [f"--{init[0]}", str(init[1])] + (["--use-pretrain-script"]
                                                 if init[0] == "finetune" else [])
    t0 = time.perf_counter()
    dp_run(["--pt", "train", "input.json", *extra], workdir)
    train_s = time.perf_counter() - t0
    dp_run(["--pt", "freeze", "-o", "frozen.pth"], workdir)
    return {"frozen": workdir / "frozen.pth", "checkpoint": (workdir / "model.ckpt.pt").resolve(),
            "train_frames": n_train, "test_frames": n_test,
            "train_seconds": round(train_s, 1), "input": deck.text, "steps": steps,
            "seed": seed}


def keep_weights(checkpoint: Path, out: Path) -> None:
    """The model weights of a DeePMD-kit PyTorch checkpoint, without its optimizer state (a
    third of the size; enough to fine-tune from)."""
    import torch

    state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    torch.save({k: v for k, v in state.items() if k != "optimizer"}, str(out))


def init_source(init_from: str, type_map: list[str]) -> tuple[str, Path, dict[str, Any]]:
    """How a DeePMD-kit training starts from registered model ``init_from`` (a name or a
    model folder): its checkpoint (``files.checkpoint``) through DeePMD-kit's fine-tuning, else
    its frozen model through ``--init-frz-model``. Also the card's ``training.init_from``."""
    card = load_card_at(init_from, route="deepmd")
    if card.architecture != "deepmd":
        raise InputError(f"--init-from {init_from} is a {card.architecture} model; a DeePMD-kit "
                         "training starts from a deepmd model")
    if list(card.type_map) != list(type_map):
        raise InputError(f"--init-from {init_from} has type map {list(card.type_map)}, the "
                         f"dataset {type_map}; they must be equal")
    ckpt = card.files.get("checkpoint")
    if ckpt and (card.directory / ckpt).is_file():
        how, path = "finetune", card.directory / ckpt
    else:
        how, path = "init-frz-model", card.directory / card.files["frozen"]
    return how, path, {"model": card.name, "file": path.name, "sha256": sha256_file(path),
                       "method": f"dp --pt train --{how} (DeePMD-kit "
                                 + ("fine-tuning" if how == "finetune" else
                                    "initialisation from the frozen model") + ")",
                       "cutoff_A": card.cutoff_A}


def train_deepmd(dataset: str, name: str, reference: str, steps: int = 20000,
                 templates: Path | None = None, force: bool = False, root: Path | None = None,
                 seed: int = 1, rcut: float | None = None, reference_method: str | None = None,
                 echo: Echo = print, init_from: str | None = None,
                 extra_card: dict[str, Any] | None = None) -> Path:
    """Train a DeePMD-kit model on ``<root>/<dataset>/{train,test}.extxyz`` for ``steps``
    steps (from registered model ``init_from`` when given: transfer learning); register it as
    ``potentials/<name>``. Returns the model folder."""
    if steps < 1:
        raise InputError(f"--steps {steps} must be >= 1")
    ds_dir, pot, out = training_target(dataset, root, name, force)
    type_map, record = dataset_type_map(dataset, root)
    read_splits(ds_dir, type_map)
    init = None
    if init_from:
        how, path, init_card = init_source(init_from, type_map)
        init = (how, path)
        if rcut is not None and rcut != init_card["cutoff_A"]:
            raise InputError(f"--rcut {rcut:g} differs from the cutoff of --init-from "
                             f"{init_from} ({init_card['cutoff_A']:g} A); drop --rcut")
        rcut = init_card.pop("cutoff_A")
    rcut = RCUT_A if rcut is None else rcut
    sel = choose_sel(ds_dir / "train.extxyz", type_map, rcut)
    pot.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".staging", dir=pot))
    try:
        work = stage / "work"
        echo(f"training deepmd '{name}' on {ds_dir} ({steps} steps, type map {type_map}, "
             f"sel {sel}, rcut {rcut} A); dp output follows")
        try:
            res = train(ds_dir, work, type_map, steps=steps, rcut_A=rcut, sel=sel, seed=seed,
                        templates=templates, init=init)
        except ValueError as exc:
            raise DatasetError(f"{exc}; DeePMD training here needs one composition per "
                               "dataset") from None
        model = stage / "model"
        model.mkdir()
        shutil.copy(res["frozen"], model / "frozen.pth")
        if res["checkpoint"].is_file():  # what --init-from fine-tunes
            keep_weights(res["checkpoint"], model / CHECKPOINT)
        echo("evaluating the frozen model ...")
        errors = {s: evaluate_dp(model / "frozen.pth", ds_dir / f"{s}.extxyz", type_map)
                  for s in ("train", "test")}
        echo("compressing (dp --pt compress) ...")
        dp_compress(model / "frozen.pth", model / "compressed.pth")
        errors_c = evaluate_dp(model / "compressed.pth", ds_dir / "test.extxyz", type_map)
        if (work / "lcurve.out").is_file():
            shutil.copy(work / "lcurve.out", model / "lcurve.out")
        (model / "training_input.json").write_text(res["input"])
        card = deepmd_card(name, reference, reference_method, type_map, rcut, model, res,
                           ds_dir, dataset, record, errors, errors_c, steps)
        if init is not None:
            card["training"]["init_from"] = init_card
            card["regenerate"] += f" --init-from {init_card['model']}"
        card.update(extra_card or {})
        if out.exists() and reference_method is None:
            carry_over(card, out / CARD, echo)
        (model / CARD).write_text(yaml.safe_dump(card, sort_keys=False))
        publish_model_dir(model, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    echo(registered_line(out, card))
    return out


def deepmd_card(name: str, reference: str, reference_method: str | None,
                type_map: list[str], rcut: float, model: Path, res: dict[str, Any],
                ds_dir: Path, dataset: str, record: dict[str, Any] | None,
                errors: dict[str, dict], errors_c: dict[str, float], steps: int
                ) -> dict[str, Any]:
    """The card of a trained DeePMD-kit model (layout of the bundled ``dp-7net``)."""
    prov = dataset_provenance(ds_dir, record)
    return {
        "name": name,
        "architecture": "deepmd",
        "reference": reference,
        "functional": functional_of(ds_dir, reference),
        "reference_method": reference_method or reference_text(ds_dir, reference),
        "type_map": type_map,
        "cutoff_A": float(rcut),
        "route": ["deepmd", "python-callback"],
        "env": "dp",
        "files": {"frozen": "frozen.pth", "deploy": "compressed.pth",
                  **({"checkpoint": CHECKPOINT} if (model / CHECKPOINT).is_file() else {})},
        "derive": {"compressed.pth": {"from": "frozen.pth", "tool": "dp-compress"}},
        "frozen_sha256": sha256_file(model / "frozen.pth"),
        "descriptor": DESCRIPTOR.format(rcut=rcut),
        "dataset": dataset,
        "training": {
            "program": f"deepmd-kit {metadata.version('deepmd-kit')} (PyTorch backend, torch "
                       f"{metadata.version('torch')})",
            "steps": res["steps"], "seconds": res["train_seconds"],
            "input": "templates/train/deepmd.json.j2 (rendered copy in training_input.json)",
            "dataset": prov["dataset"],
            "dataset_sha256": prov["dataset_sha256"],
            "frames": {"train": res["train_frames"], "test": res["test_frames"]},
            "sampling": prov["sampling"],
            "labelling": prov.get("labelling") or {
                "reference": reference,
                **({"import": f"{relative_to_project(ds_dir)}/import.json"} if record else {})},
        },
        "errors": {"train": rounded_errors(errors["train"]),
                   "test": rounded_errors(errors["test"]),
                   "test_compressed": rounded_errors(errors_c)},
        "regenerate": (f"lpsc-lmp train --arch deepmd --dataset {dataset} --name {name} "
                       f"--reference {reference} --steps {steps} --seed {res['seed']} --force"),
    }


