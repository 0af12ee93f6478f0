"""Each architecture's own ASE calculator for a deployable model file.

Used by the python-callback route, the batched evaluator, the route checks and the error
tables; always run in the model's own environment (:mod:`lpsc_lmp.models.architectures`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..devices import device_type
from ..errors import RouteError
from .architectures import ARCHITECTURES, NEQUIP_FAMILY, TEACHERS

#: File name ending of a NequIP/Allegro AOTInductor package.
NEQUIP_AOTI = ".nequip.pt2"


def device_model_file(model_file: str | Path, device: str = "cpu") -> Path:
    """The file the model's calculator loads on ``device``: ``model_file`` itself, except a
    NequIP/Allegro AOTInductor package (``*.nequip.pt2``, runs only on the device type it was
    compiled for) on a GPU: ``<stem>.<device type>.nequip.pt2`` beside it, compiled there by
    :func:`lpsc_lmp.models.derive.derive_for_device` (``lpsc-lmp models prepare NAME --device
    cuda``, or the first ensemble on a GPU)."""
    p = Path(model_file)
    kind = device_type(device)
    if kind == "cpu" or not p.name.endswith(NEQUIP_AOTI):
        return p
    return p.with_name(f"{p.name[:-len(NEQUIP_AOTI)]}.{kind}{NEQUIP_AOTI}")


def batch_file_for(model_file: str | Path, device: str = "cpu") -> Path:
    """Where the NequIP AOTI package for target ``batch`` of ``model_file`` lives:
    ``<stem>.batch.nequip.pt2`` for the CPU, ``<stem>.batch.<device type>.nequip.pt2`` for a
    GPU (an AOTInductor package runs only on the device type it was compiled for)."""
    p = Path(model_file)
    return device_model_file(p.with_name(f"{p.name.split('.')[0]}.batch.nequip.pt2"), device)


def batch_file_fresh(model_file: str | Path, device: str = "cpu") -> bool:
    """The batch package for ``device`` exists and is not older than the NequIP package(s)
    beside the model (a retrained model must not run with the old batch package)."""
    b = batch_file_for(model_file, device)
    if not b.is_file():
        return False
    stale = [z for z in b.parent.glob("*.nequip.zip") if z.stat().st_mtime > b.stat().st_mtime]
    if stale:
        print(f"  {b.name} is older than {stale[0].name}: ignored (loop fallback); remake it "
              f"with `lpsc-lmp models prepare MODEL --device {device_type(device)}`",
              file=sys.stderr, flush=True)
    return not stale


def load_calculator(architecture: str, model_file: str | Path, device: str = "cpu") -> Any:
    """The architecture's own ASE calculator for a deployable model file (in its environment),
    on ``device`` (cpu, cuda; DeePMD-kit picks its device itself: a GPU when torch sees one)."""
    model_file = str(device_model_file(model_file, device))
    if not Path(model_file).is_file():
        kind = device_type(device)
        raise RouteError(f"{model_file} is missing; run `lpsc-lmp models prepare MODEL"
                         + (f" --device {kind}`" if kind != "cpu" else "`"))
    if architecture == "mace":
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=model_file, device=device, default_dtype="float64")
    if architecture in NEQUIP_FAMILY:
        from nequip.integrations.ase import NequIPCalculator

        if model_file.endswith(".pt2"):
            return NequIPCalculator.from_compiled_model(model_file, device=device)
        # eager checkpoint / package (slower; used by checks only)
        return NequIPCalculator._from_saved_model(model_file, device=device)
    if architecture == "deepmd":  # checks, benchmarks, --batch (else pair_style deepmd)
        from deepmd.calculator import DP

        return DP(model_file)
    if architecture in TEACHERS:
        return teacher_calculator(model_file, device)
    raise RouteError(f"architecture '{architecture}' has no ASE calculator here; supported: "
                     f"{', '.join(ARCHITECTURES + TEACHERS)}")


def teacher_calculator(spec_file: str | Path, device: str = "cpu") -> Any:
    """The ASE calculator of a universal potential named in a teacher card's ``teacher.json``
    (``{"model": "7net-mf-0", "modal": "R2SCAN"}``; ``chgnet``), in the label environment."""
    spec = json.loads(Path(spec_file).read_text())
    if spec["model"] == "chgnet":
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(use_device=device)
    from sevenn.calculator import SevenNetCalculator

    kw = {"modal": spec["modal"]} if spec.get("modal") else {}
    return SevenNetCalculator(model=spec["model"], device=device, **kw)
