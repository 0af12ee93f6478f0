"""What every training shares: checking the request, streaming the trainer, the card's
provenance fields, and publishing the model.

A training reads ``<data root>/<dataset>/{train,test}.extxyz`` (a split dataset,
:mod:`lpsc_lmp.training.dataset`), assembles the model in a hidden staging folder of the
registry and renames it into place at the end (:func:`lpsc_lmp.models.registry.publish_model_dir`),
so an interrupted training registers nothing.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ase.io import read

from ..errors import DatasetError, RegistryError, TrainingError
from ..files import sha256_file
from ..paths import data_root, potentials_dir, relative_to_project
from ..rundir import check_name
from ..structure import DEFAULT_TYPE_MAP
from .dataset import check_split_current, read_import_record

SPLITS = ("train", "test")
Echo = Callable[[str], None]


def training_target(dataset: str, root: Path | None, name: str, force: bool
                    ) -> tuple[Path, Path, Path]:
    """Check a training request before any work: the dataset is split and its split current,
    the model name is a plain folder name, and an existing model is replaced only with --force.
    Returns (dataset folder, potentials folder, model folder)."""
    ds_dir = ((root or data_root()) / dataset).resolve()
    for split in SPLITS:
        if not (ds_dir / f"{split}.extxyz").is_file():
            raise DatasetError(f"{ds_dir / (split + '.extxyz')} not found; run `lpsc-lmp data "
                               f"split {dataset} --test N` (after `data import`) first")
    check_split_current(ds_dir)
    check_name(name, "--name")
    pot = potentials_dir()
    out = pot / name
    if out.exists() and not force:
        raise RegistryError(f"model '{name}' exists in {pot}; pass --force to replace it or "
                            "choose another --name")
    return ds_dir, pot, out


def dataset_type_map(dataset: str, root: Path | None) -> tuple[list[str], dict | None]:
    """The type map of a dataset (its import record, else the bundled Li, P, S, Cl) and the
    import record itself (None for a dataset not made by ``data import``)."""
    record = read_import_record(dataset, root)
    return (list(record["type_map"]) if record else list(DEFAULT_TYPE_MAP)), record


def read_splits(ds_dir: Path, type_map: list[str]) -> dict[str, list]:
    """The train and test frames, refused if they hold elements outside ``type_map``."""
    frames = {s: read(ds_dir / f"{s}.extxyz", index=":") for s in SPLITS}
    extra = sorted({x for fr in frames.values() for at in fr for x in at.get_chemical_symbols()}
                   - set(type_map))
    if extra:
        raise DatasetError(f"{ds_dir} has elements {extra} outside the type map {type_map}; "
                           "re-import it with a --type-map that includes them")
    return frames


def dataset_provenance(ds_dir: Path, record: dict[str, Any] | None) -> dict[str, Any]:
    """The card's ``training`` fields that say which data a model was trained on."""
    if record:
        srcs = sorted({f"{s['format']}: {s['source']}" for s in record.get("sources", [])})
        sampling = (f"imported by `lpsc-lmp data import` from {len(srcs)} source(s): "
                    + "; ".join(srcs))
        split_rec = ds_dir / "split.json"
        if split_rec.is_file():
            sp = json.loads(split_rec.read_text())
            sampling += f"; random split seed {sp['seed']}, {sp['n_test']} test frames"
    else:
        sampling = f"see {relative_to_project(ds_dir)}"
    out = {"dataset": f"{relative_to_project(ds_dir)} (train.extxyz, test.extxyz)",
           "dataset_sha256": {s: sha256_file(ds_dir / f"{s}.extxyz") for s in SPLITS},
           "sampling": sampling}
    label = ds_dir / "label.json"
    if label.is_file():  # labels from a universal potential (lpsc-lmp data label)
        rec = json.loads(label.read_text())
        out["sampling"] = f"the frames of data/{rec['source_dataset']} ({rec['split']})"
        out["labelling"] = {k: rec[k] for k in ("labeller", "modal", "functional", "versions")}
    return out


def reference_text(ds_dir: Path, reference: str) -> str:
    """The card's ``reference_method`` when ``train`` is given none: the labeller for a dataset
    made by ``data label`` (no DFT), else the reference and the dataset."""
    label = ds_dir / "label.json"
    where = relative_to_project(ds_dir)
    if label.is_file():
        rec = json.loads(label.read_text())
        modal = f", {rec['modal']} output" if rec.get("modal") else ""
        return (f"{rec['functional']}-like labels of {where} by the universal potential "
                f"{rec['labeller']}{modal} (sevenn {rec['versions'].get('sevenn', '?')}); "
                "no DFT was run for this model")
    return f"{reference} labels of {where}"


def functional_of(ds_dir: Path, reference: str) -> str:
    """The functional a dataset's labels stand for: the labeller's (``data label``), else the
    ``--reference`` given."""
    label = ds_dir / "label.json"
    return json.loads(label.read_text())["functional"] if label.is_file() else reference


def carry_over(card: dict[str, Any], old_card: Path, echo: Echo) -> None:
    """Retraining a model on the same dataset and reference keeps what ``train`` cannot
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


def rounded_errors(err: dict[str, float]) -> dict[str, float]:
    """Train/test errors as the cards keep them (meV/atom to 3 decimals, eV/A to 4)."""
    return {"energy_rmse_meV_atom": round(err["energy_rmse_meV_atom"], 3),
            "force_rmse_eV_A": round(err["force_rmse_eV_A"], 4)}


def registered_line(path: Path, card: dict[str, Any]) -> str:
    """One line saying a model was registered, with its train/test errors."""
    e = card["errors"]
    return (f"registered {path}: energy RMSE train {e['train']['energy_rmse_meV_atom']} / test "
            f"{e['test']['energy_rmse_meV_atom']} meV/atom, force RMSE train "
            f"{e['train']['force_rmse_eV_A']} / test {e['test']['force_rmse_eV_A']} eV/A")


def stream(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, echo: Echo,
           limit_s: float | None = None) -> bool:
    """Run ``cmd``, echo its output line by line (and append it to ``log``); TrainingError
    with the last lines if it fails. With ``limit_s`` the process is terminated (SIGTERM) after
    that many seconds; returns True if that happened (not an error), else False."""
    tail: deque[str] = deque(maxlen=15)
    stopped = threading.Event()
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)

        def stop() -> None:
            if proc.poll() is None:
                stopped.set()
                proc.terminate()

        timer = threading.Timer(limit_s, stop) if limit_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                tail.append(line.rstrip())
                echo(line.rstrip())
            rc = proc.wait()
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            if timer:
                timer.cancel()
        if stopped.is_set():
            fh.write(f"[lpsc-lmp] stopped after the time limit of {limit_s:.0f} s\n")
            return True
    if rc:
        raise TrainingError(f"{Path(cmd[0]).name} failed (exit {rc}); last lines: "
                            + " | ".join(list(tail)[-5:]))
    return False
