"""NequIP and Allegro training with ``nequip-train`` in the NequIP environment.

The Hydra config is rendered from ``templates/train/nequip.yaml.j2`` or ``allegro.yaml.j2``
(which extends the first and replaces the model block); the run stops at ``epochs`` or, through
Lightning's ``max_time``, at ``max_minutes``, whichever comes first. The checkpoint
(``best.ckpt``, else ``last.ckpt``) is repaired if nequip 0.19.1 saved it with the EMA weights
swapped in (:mod:`lpsc_lmp.training.ema_fix`) and packaged with ``nequip-package``
(``<name>.nequip.zip``, kept in the model folder: the exports for the ASE calculator and the
pair styles are compiled from it).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from ..environments import run_in_env
from ..errors import TrainingError
from ..templating import render_template
from .common import Echo, stream

TEMPLATE = {"nequip": "train/nequip.yaml.j2", "allegro": "train/allegro.yaml.j2"}
MODEL_TEXT = {
    "nequip": "NequIP, 2 layers, l_max 1, 16 features, r_max {r} A, ZBL prior, float32",
    "allegro": "Allegro, 2 layers, l_max 1, 32 scalar / 8 tensor features, r_max {r} A, ZBL "
               "prior, float32",
}


def max_time(minutes: float) -> str:
    """Lightning's ``max_time`` ("DD:HH:MM:SS") for ``minutes``."""
    s = max(int(round(minutes * 60)), 1)
    return f"{s // 86400:02d}:{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def train_nequip(arch: str, name: str, ds_dir: Path, work: Path, model: Path,
                 type_map: list[str], r_max: float, epochs: int | None,
                 max_minutes: float | None, seed: int, templates: Path | None, exe: Path,
                 env: dict[str, str], echo: Echo, init_from: Path | None = None
                 ) -> dict[str, Any]:
    """Run ``nequip-train`` for ``arch`` (nequip or allegro) in ``work``; return the packaged
    model (``source``, in ``model``) and the card's ``training`` fields of this architecture.
    ``init_from``: a NequIP-framework package to fine-tune."""
    log = model / "train.log"
    ctx = {"data_dir": str(ds_dir), "type_map": type_map, "r_max": r_max,
           "max_epochs": epochs if epochs else -1,
           "max_time": max_time(max_minutes) if max_minutes else None,
           "val_every": max(1, min(2, epochs or 2)), "seed": seed,
           "init_package": str(init_from) if init_from else None}
    text = render_template(ctx, TEMPLATE[arch], templates).text
    yaml.safe_load(text)  # the rendered config must be valid YAML
    (work / "config.yaml").write_text(text)
    (model / "training_config.yaml").write_text(text)
    run_dir = work / "run"
    stream([str(exe.parent / "nequip-train"), "-cp", str(work), "-cn", "config.yaml",
            f"hydra.run.dir={run_dir}"], work, env, log, echo)
    ckpt = run_dir / "best.ckpt"
    if not ckpt.is_file():
        ckpt = run_dir / "last.ckpt"
    if not ckpt.is_file():
        raise TrainingError(f"nequip-train wrote no checkpoint; see {log}")
    for m in sorted(run_dir.rglob("metrics.csv"))[-1:]:  # the CSV logger's record
        shutil.copy(m, model / "metrics.csv")
    fixed = work / "fixed.ckpt"
    info = run_in_env("nequip", "lpsc_lmp.training.ema_fix", [str(ckpt), str(fixed)])
    if info["arch"] != arch and init_from is None:  # (a fine-tuned model names its package)
        raise TrainingError(f"{ckpt.name} is a {info['arch']} checkpoint, not {arch}; check "
                            f"templates/{TEMPLATE[arch]}")
    echo(f"{ckpt.name}: EMA weights {'repaired' if info['ema_tensors_copied'] else 'ok'}"
         f"; packaging (nequip-package) ...")
    src = model / f"{name}.nequip.zip"
    stream([str(exe.parent / "nequip-package"), "build", str(fixed), str(src)], work, env,
           log, lambda s: None)
    return {"source": src, "training": {
        "command": "nequip-train (config in training_config.yaml)",
        "input": f"templates/{TEMPLATE[arch]} (rendered copy in training_config.yaml)",
        "checkpoint": f"{ckpt.name} (EMA weights), packaged with nequip-package"}}
