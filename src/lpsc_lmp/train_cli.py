"""``lpsc-lmp train`` and ``lpsc-lmp evaluate``: dataset -> registered model -> Table 1 errors.

``train --arch deepmd`` trains, freezes and compresses a DeePMD-kit model with
:mod:`lpsc_lmp.train_deepmd` (dp's own output is streamed), evaluates it, and registers it as
``potentials/<name>/`` with a card of the same layout as the bundled ``dp-7net`` (written by
``scripts/default_model/train_default.py``) plus ``dataset: <name>``. The model folder is
assembled in a hidden staging folder and renamed into place at the end, so a failed or
interrupted training leaves no half-written model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import click
import numpy as np
import yaml
from ase.io import read

from .dataset import DatasetError, check_split_current, data_root, read_import_record
from .deck import DeckError
from .paths import potentials_dir, project_root
from .registry import RegistryError, publish_model_dir, registered_line, sha256_file
from .structure import DEFAULT_TYPE_MAP

ARCHS = ("deepmd", "nequip", "allegro", "mace")
#: se_e2_a neighbour selection of the bundled model (Li, P, S, Cl within 6 A)
DEFAULT_SEL = (48, 12, 36, 12)
RCUT_A = 6.0
DESCRIPTOR = ("se_e2_a, rcut {rcut} A (smooth from 0.5 A), embedding [16, 32, 64], "
              "fitting [64, 64, 64]")


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


def _choose_sel(train_file: Path, type_map: list[str], rcut: float) -> list[int]:
    need = neighbour_sel(read(train_file, index=":"), type_map, rcut)
    if tuple(type_map) == DEFAULT_TYPE_MAP and rcut == RCUT_A and all(
            n <= d for n, d in zip(need, DEFAULT_SEL, strict=True)):
        return list(DEFAULT_SEL)  # as the bundled model, so `make retrain` reproduces it
    return need


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(project_root()))
    except ValueError:
        return str(p)



def training_target(dataset: str, root: Path | None, name: str, force: bool
                    ) -> tuple[Path, Path, Path]:
    """Check a training request before any work: the dataset is split and its split current,
    the model name is a plain folder name, and an existing model is replaced only with --force.
    Returns (dataset folder, potentials folder, model folder)."""
    ds_dir = ((root or data_root()) / dataset).resolve()
    for split in ("train", "test"):
        if not (ds_dir / f"{split}.extxyz").is_file():
            raise DatasetError(f"{ds_dir / (split + '.extxyz')} not found; run `lpsc-lmp data "
                               f"split {dataset} --test N` (after `data import`) first")
    check_split_current(ds_dir)
    if not name or "/" in name or name.startswith("."):
        raise click.UsageError(f"--name {name!r} must be a plain folder name")
    pot = potentials_dir()
    out = pot / name
    if out.exists() and not force:
        raise RegistryError(f"model '{name}' exists in {pot}; pass --force to replace it or "
                            "choose another --name")
    return ds_dir, pot, out

def train_model(arch: str, dataset: str, name: str, reference: str, steps: int,
                templates: Path | None = None, force: bool = False,
                root: Path | None = None, seed: int = 1, rcut: float | None = RCUT_A,
                reference_method: str | None = None, echo=click.echo,
                epochs: int | None = None, max_minutes: float | None = None) -> Path:
    """Train ``arch`` on ``<root>/<dataset>/{train,test}.extxyz``; register ``potentials/<name>``.
    mace/nequip/allegro: :mod:`lpsc_lmp.train_others` (``epochs``/``max_minutes``, not steps).
    """
    if arch in ("mace", "nequip", "allegro"):
        from .train_others import train_other

        return train_other(arch, dataset, name, reference, epochs, max_minutes, templates, force,
                           root, seed, rcut, reference_method, echo)
    if epochs is not None or max_minutes is not None:
        raise click.UsageError("--epochs/--max-minutes are for mace, nequip and allegro; "
                               "deepmd trains for --steps")
    rcut = RCUT_A if rcut is None else rcut
    if arch != "deepmd":
        raise click.UsageError(f"--arch {arch} unknown; use one of {', '.join(ARCHS)}")
    if steps < 1:
        raise click.UsageError(f"--steps {steps} must be >= 1")
    ds_dir, pot, out = training_target(dataset, root, name, force)
    record = read_import_record(dataset, root)
    type_map = list(record["type_map"]) if record else list(DEFAULT_TYPE_MAP)
    present = {s for split in ("train", "test")
               for at in read(ds_dir / f"{split}.extxyz", index=":")
               for s in at.get_chemical_symbols()}
    extra = sorted(present - set(type_map))
    if extra:
        raise DatasetError(f"{ds_dir} has elements {extra} outside the type map {type_map}; "
                           "re-import it with a --type-map that includes them")
    sel = _choose_sel(ds_dir / "train.extxyz", type_map, rcut)
    pot.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".staging", dir=pot))
    try:
        work = stage / "work"
        echo(f"training {arch} '{name}' on {ds_dir} ({steps} steps, type map {type_map}, "
             f"sel {sel}, rcut {rcut} A); dp output follows")
        from .train_deepmd import compress, evaluate_dp, train

        try:
            res = train(ds_dir, work, type_map, steps=steps, rcut_A=rcut, sel=sel, seed=seed,
                        templates=templates)
        except subprocess.CalledProcessError as exc:
            raise click.ClickException(f"dp failed ({exc}); see its output above and "
                                       f"{work}/input.json") from None
        except ValueError as exc:
            raise DatasetError(f"{exc}; DeePMD training here needs one composition per "
                               "dataset") from None
        model = stage / "model"
        model.mkdir()
        shutil.copy(res["frozen"], model / "frozen.pth")
        echo("evaluating the frozen model ...")
        errors = {s: evaluate_dp(model / "frozen.pth", ds_dir / f"{s}.extxyz", type_map)
                  for s in ("train", "test")}
        echo("compressing (dp --pt compress) ...")
        compress(model / "frozen.pth", model / "compressed.pth")
        errors_c = evaluate_dp(model / "compressed.pth", ds_dir / "test.extxyz", type_map)
        for f in ("lcurve.out",):
            if (work / f).is_file():
                shutil.copy(work / f, model / f)
        (model / "training_input.json").write_text(res["input"])
        card = _card(name, reference, reference_method, type_map, rcut, model, res, ds_dir,
                     dataset, record, errors, errors_c, steps)
        if out.exists() and reference_method is None:
            _carry_over(card, out / "card.yaml", echo)
        (model / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
        publish_model_dir(model, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    echo(registered_line(out, card))
    return out


def _card(name: str, reference: str, reference_method: str | None, type_map: list[str],
          rcut: float, model: Path, res: dict[str, Any], ds_dir: Path, dataset: str,
          record: dict[str, Any] | None, errors: dict[str, dict], errors_c: dict[str, float],
          steps: int) -> dict[str, Any]:
    def rounded(err: dict[str, float]) -> dict[str, float]:
        return {"energy_rmse_meV_atom": round(err["energy_rmse_meV_atom"], 3),
                "force_rmse_eV_A": round(err["force_rmse_eV_A"], 4)}

    if record:
        srcs = sorted({f"{s['format']}: {s['source']}" for s in record.get("sources", [])})
        sampling = f"imported by `lpsc-lmp data import` from {len(srcs)} source(s): " + "; ".join(
            srcs)
        split_rec = ds_dir / "split.json"
        if split_rec.is_file():
            sp = json.loads(split_rec.read_text())
            sampling += f"; random split seed {sp['seed']}, {sp['n_test']} test frames"
    else:
        sampling = f"see {_rel(ds_dir)}"
    return {
        "name": name,
        "architecture": "deepmd",
        "reference": reference,
        "reference_method": reference_method or f"{reference} labels of {_rel(ds_dir)}",
        "type_map": type_map,
        "cutoff_A": float(rcut),
        "route": ["deepmd", "python-callback"],
        "env": "dp",
        "files": {"frozen": "frozen.pth", "deploy": "compressed.pth"},
        "derive": {"compressed.pth": {"from": "frozen.pth", "tool": "dp-compress"}},
        "frozen_sha256": sha256_file(model / "frozen.pth"),
        "descriptor": DESCRIPTOR.format(rcut=rcut),
        "dataset": dataset,
        "training": {
            "program": f"deepmd-kit {metadata.version('deepmd-kit')} (PyTorch backend, torch "
                       f"{metadata.version('torch')})",
            "steps": res["steps"], "seconds": res["train_seconds"],
            "input": "templates/train/deepmd.json.j2 (rendered copy in training_input.json)",
            "dataset": f"{_rel(ds_dir)} (train.extxyz, test.extxyz)",
            "dataset_sha256": {s: hashlib.sha256((ds_dir / f"{s}.extxyz").read_bytes())
                               .hexdigest() for s in ("train", "test")},
            "frames": {"train": res["train_frames"], "test": res["test_frames"]},
            "sampling": sampling,
            "labelling": {"reference": reference,
                          **({"import": f"{_rel(ds_dir)}/import.json"} if record else {})},
        },
        "errors": {"train": rounded(errors["train"]), "test": rounded(errors["test"]),
                   "test_compressed": rounded(errors_c)},
        "regenerate": (f"lpsc-lmp train --arch deepmd --dataset {dataset} --name {name} "
                       f"--reference {reference} --steps {steps} --force"),
    }


def _carry_over(card: dict[str, Any], old_card: Path, echo) -> None:
    """Retraining a model on the same dataset and reference keeps what this command cannot
    know: the old card's ``reference_method`` and ``training.sampling`` / ``labelling``."""
    try:
        old = yaml.safe_load(old_card.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return
    old_ds = old.get("dataset") or str((old.get("training") or {}).get("dataset", "")).split(
        " ")[0]
    same_ds = old_ds in (card["dataset"], card["training"]["dataset"].split(" ")[0])
    if str(old.get("reference")) != card["reference"] or not same_ds:
        return
    if old.get("reference_method"):
        card["reference_method"] = old["reference_method"]
    for key in ("sampling", "labelling"):
        if (old.get("training") or {}).get(key):
            card["training"][key] = old["training"][key]
    echo(f"kept reference_method, training.sampling/labelling of the replaced {old_card}")


def _one_line(exc: Exception) -> str:
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__


@click.command("train")
@click.option("--arch", type=click.Choice(ARCHS), required=True, help="Model architecture.")
@click.option("--dataset", required=True, help="Dataset name under --data-root (split first).")
@click.option("--name", required=True, help="Model name: potentials/<name>/.")
@click.option("--reference", required=True,
              help="Reference method of the labels (PBE, HSE, 7net, ...); goes into the card.")
@click.option("--reference-method", default=None,
              help="Longer description of the reference for the card.")
@click.option("--steps", type=int, default=20000, show_default=True,
              help="Training steps (deepmd).")
@click.option("--epochs", type=int, default=None,
              help="Epochs (mace, nequip, allegro; default as the bundled models: 20 / 60).")
@click.option("--max-minutes", type=float, default=None,
              help="Wall-time limit of the training (mace, nequip, allegro; default 18 for "
                   "nequip/allegro with no --epochs). MACE is stopped and its model written "
                   "from the last checkpoint.")
@click.option("--seed", type=int, default=1, show_default=True, help="Training seed.")
@click.option("--rcut", type=float, default=None,
              help=f"Cutoff (A; default {RCUT_A:g} for deepmd, 5 for the others).")
@click.option("--templates", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with train/<arch template> (deepmd.json.j2, mace.args.j2, "
                   "nequip.yaml.j2, allegro.yaml.j2; default: templates/).")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of datasets (default: data/ or $LPSC_LMP_DATA).")
@click.option("--force", is_flag=True, help="Replace an existing model of this name.")
def train(arch: str, dataset: str, name: str, reference: str, reference_method: str | None,
          steps: int, epochs: int | None, max_minutes: float | None, seed: int,
          rcut: float | None, templates: Path | None, data_root: Path | None,
          force: bool) -> None:
    """Train a model on a split dataset and register it in potentials/."""
    try:
        train_model(arch, dataset, name, reference, steps, templates, force, data_root, seed,
                    rcut, reference_method, epochs=epochs, max_minutes=max_minutes)
    except (DatasetError, RegistryError, DeckError) as exc:
        raise click.UsageError(_one_line(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; no model was registered") from None


@click.command("evaluate")
@click.option("--model", "models", multiple=True, help="Model(s) to evaluate (default: all "
              "registered models whose card names a dataset).")
@click.option("--dataset", default=None, help="Evaluate on this dataset instead of each card's.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of datasets (default: data/ or $LPSC_LMP_DATA).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Output folder (default: evaluation/).")
@click.option("--no-plots", is_flag=True, help="Skip the parity plots.")
def evaluate(models: tuple[str, ...], dataset: str | None, data_root: Path | None,
             out_dir: Path | None, no_plots: bool) -> None:
    """Train/test energy and force RMSE of the models (the paper's Table 1) + parity plots."""
    from .evaluate import evaluate as run_evaluate

    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        run_evaluate(list(models) or None, dataset, data_root, out_dir, plots=not no_plots,
                     echo=click.echo)
    except (DatasetError, RegistryError) as exc:
        raise click.UsageError(_one_line(exc)) from None
