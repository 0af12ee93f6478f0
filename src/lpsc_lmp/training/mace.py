"""MACE training with ``mace_run_train`` in the MACE environment.

The arguments of ``mace_run_train`` are rendered from ``templates/train/mace.args.j2`` (one per
line); the dataset is copied with its labels under the keys MACE reads (``REF_energy``,
``REF_forces``, ``REF_stress``). ``mace_run_train`` has no time limit of its own: with
``max_minutes`` lpsc-lmp stops it (SIGTERM) at the limit, with ``--keep_checkpoints`` so that a
checkpoint cut short by the stop is never the only one, and MACE itself then writes the model
from the newest loadable checkpoint (:func:`finish_from_checkpoint`).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from ase.data import atomic_numbers
from ase.io import read, write

from ..errors import TrainingError
from ..templating import render_template
from .common import Echo, stream

TEMPLATE = "train/mace.args.j2"
#: mace with --max-minutes and no --epochs: train until the time limit
UNLIMITED_EPOCHS = 100000
MODEL_TEXT = ("MACE, 16 channels, max_L 0, correlation 2, 2 interactions, r_max {r} A, "
              "8 Bessel functions, E0s average, float64")


def mace_data(ds_dir: Path, out: Path) -> None:
    """{train,test}.extxyz with the labels under REF_energy / REF_forces / REF_stress."""
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        frames = []
        for at in read(ds_dir / f"{split}.extxyz", index=":"):
            e, f = at.get_potential_energy(), at.get_forces()
            try:
                s = at.get_stress(voigt=False).reshape(-1)
            except Exception:  # noqa: BLE001 (no stress labels: MACE trains without them)
                s = None
            at.calc = None
            at.info = {"REF_energy": e, **({"REF_stress": s} if s is not None else {})}
            at.arrays = {k: v for k, v in at.arrays.items() if k in ("numbers", "positions")}
            at.arrays["REF_forces"] = f
            frames.append(at)
        write(out / f"{split}.extxyz", frames, format="extxyz")


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """MACE checkpoints (``<tag>_epoch-<N>.pt``) in ``folder``, newest epoch first."""
    found = []
    for f in folder.glob("*_epoch-*.pt"):
        m = re.search(r"_epoch-(\d+)\.pt$", f.name)
        if m:
            found.append((int(m.group(1)), f))
    return sorted(found, reverse=True)


def _loads(exe: Path, env: dict[str, str], ckpt: Path) -> bool:
    """Whether ``ckpt`` loads with torch in the model's environment (a checkpoint being written
    when the time limit struck is truncated)."""
    code = ("import sys, torch; torch.load(sys.argv[1], map_location='cpu', "
            "weights_only=False)")
    return subprocess.run([str(exe), "-c", code, str(ckpt)], env=env,
                          capture_output=True).returncode == 0


def finish_from_checkpoint(args: list[str], exe: Path, work: Path, env: dict[str, str],
                           log: Path, echo: Echo) -> int:
    """After ``mace_run_train`` was stopped by the time limit: write the model from the newest
    loadable checkpoint with MACE's own code (``--restart_latest`` with ``--max_num_epochs`` set
    to the checkpoint's epoch, so no epoch is trained; MACE then evaluates and saves
    ``<name>.model`` as at the end of a normal run). Returns that epoch."""
    epoch = None
    for n, ckpt in checkpoints(work / "checkpoints"):
        if _loads(exe, env, ckpt):
            epoch = n
            break
        echo(f"{ckpt.name} is incomplete (written when the time limit struck); removed")
        ckpt.unlink()
    if epoch is None:
        raise TrainingError("mace_run_train saved no checkpoint before the time limit (it saves "
                            "one when the validation error improves, every eval_interval "
                            "epochs); raise --max-minutes or use --epochs")
    echo(f"time limit reached: writing the model from the checkpoint of epoch {epoch} ...")
    stream([str(exe.parent / "mace_run_train"), *args, "--restart_latest",
            f"--max_num_epochs={epoch}"], work, env, log, echo)
    return epoch


def train_mace(ds_dir: Path, work: Path, model: Path, type_map: list[str], r_max: float,
               epochs: int | None, max_minutes: float | None, seed: int,
               templates: Path | None, exe: Path, env: dict[str, str], echo: Echo,
               init_from: Path | None = None, stage_two: bool = False) -> dict[str, Any]:
    """Run ``mace_run_train`` in ``work``; return the trained ``.model`` file (``source``),
    the card's ``training`` fields of this architecture and, with ``stage_two``, the
    second-stage model (``alternatives``). ``init_from``: a MACE ``.model`` to fine-tune
    (``--foundation_model``)."""
    log = model / "train.log"
    mace_data(ds_dir, work / "data")
    n_epochs = epochs or UNLIMITED_EPOCHS
    ctx = {"name": "model", "seed": seed, "r_max": r_max,
           "train_file": str(work / "data" / "train.extxyz"),
           "test_file": str(work / "data" / "test.extxyz"),
           "atomic_numbers": sorted(atomic_numbers[s] for s in type_map),
           # stage two saves its model only from an evaluation after it starts: every epoch
           "epochs": n_epochs, "eval_interval": 1 if stage_two else max(1, min(5, n_epochs)),
           "stage_two": stage_two, "start_stage_two": max(1, n_epochs * 3 // 4),
           "init_from": str(init_from) if init_from else None}
    text = render_template(ctx, TEMPLATE, templates).text
    (model / "training_args.txt").write_text(text)
    args = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if max_minutes:  # keep every checkpoint: one may be cut short by the time limit
        args.append("--keep_checkpoints")
    how: dict[str, Any] = {"command": "mace_run_train (arguments in training_args.txt)",
                           "input": f"templates/{TEMPLATE} (rendered copy in training_args.txt)"}
    if stream([str(exe.parent / "mace_run_train"), *args], work, env, log, echo,
              limit_s=max_minutes * 60 if max_minutes else None):
        epoch = finish_from_checkpoint(args, exe, work, env, log, echo)
        how["stopped"] = (f"by --max-minutes {max_minutes:g}; model written by MACE from the "
                          f"checkpoint of epoch {epoch} (the last improving validation)")
    src = work / "model.model"
    if not src.is_file():
        raise TrainingError(f"mace_run_train wrote no {src.name}; see {log}")
    out: dict[str, Any] = {"source": src, "training": how}
    if stage_two:
        how["stage_two"] = (f"from epoch {ctx['start_stage_two']}: energy weight 1000, forces "
                            "weight 100, learning rate 1e-3 (mace_run_train --stage_two)")
        second = work / "model_stagetwo.model"
        if second.is_file():
            out["alternatives"] = {"stage two": second}
    return out
