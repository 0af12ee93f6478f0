"""GPUs and devices: which GPUs a machine has, and where a model evaluated in Python runs.

``--gpus`` is ``auto`` (``nvidia-smi -L``, restricted to ``CUDA_VISIBLE_DEVICES`` if set),
``none`` or a list such as ``0,1``. A worker slot that runs on the CPU gets an empty
``CUDA_VISIBLE_DEVICES``, so torch in that worker sees no GPU.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from typing import Any

from .errors import InputError

#: Test hook: a comma-separated GPU list used instead of asking nvidia-smi ("" = no GPU).
FAKE_GPUS_ENV = "LPSC_LMP_DETECTED_GPUS"


def detect_gpus() -> list[str]:
    """Visible GPU ids: ``nvidia-smi -L`` (absent, failing or empty: none), restricted to
    ``CUDA_VISIBLE_DEVICES`` when that is set."""
    fake = os.environ.get(FAKE_GPUS_ENV)
    if fake is not None:
        return [g.strip() for g in fake.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    ids = re.findall(r"^GPU (\d+):", out.stdout, flags=re.M) if out.returncode == 0 else []
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if ids and cvd is not None:
        return [g.strip() for g in cvd.split(",") if g.strip()][:len(ids)]
    return ids


def parse_gpus(spec: str | None) -> list[str] | None:
    """``--gpus`` as a list of ids, None for ``auto``; InputError for anything else than
    auto, none (cpu) or ids like 0,1."""
    spec = (spec or "auto").strip()
    if spec == "auto":
        return None
    if spec in ("none", "cpu", ""):
        return []
    gpus = [g.strip() for g in spec.split(",") if g.strip()]
    if not all(re.fullmatch(r"[A-Za-z0-9][\w-]*", g) for g in gpus):
        raise InputError(f"--gpus '{spec}' is not auto, none or a list of GPU ids like 0,1")
    return gpus


def resolve_gpus(spec: str | None, detect: Callable[[], list[str]] = detect_gpus) -> list[str]:
    """The GPU ids ``--gpus`` means here (``auto``: those detected)."""
    gpus = parse_gpus(spec)
    return detect() if gpus is None else gpus


def default_device() -> str:
    """``cuda`` where torch sees a GPU (within CUDA_VISIBLE_DEVICES; a CPU worker slot has it
    empty), else ``cpu``: where the python-callback route and the batched mode run the model."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_type(device: Any) -> str:
    """``cpu``, ``cuda``, ... of a device name or torch device (``cuda:1`` -> ``cuda``)."""
    return str(device).split(":")[0]
