"""Where the project's folders and Python environments are.

The project root holds ``templates/``, ``potentials/``, ``runs/`` and ``.venv/<env>/``. It is found
from ``LPSC_LMP_HOME`` or, for an editable install, from this file's location.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The lpsc-lmp checkout (folder with ``potentials/`` and ``templates/``)."""
    env = os.environ.get("LPSC_LMP_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def potentials_dir() -> Path:
    return Path(os.environ.get("LPSC_LMP_POTENTIALS", project_root() / "potentials"))


def templates_dir() -> Path:
    return Path(os.environ.get("LPSC_LMP_TEMPLATES", project_root() / "templates"))


def runs_dir() -> Path:
    return Path(os.environ.get("LPSC_LMP_RUNS", project_root() / "runs"))


def env_python(env: str) -> Path:
    """The interpreter of the project environment ``env`` (e.g. ``dp``), made by make install."""
    return project_root() / ".venv" / env / "bin" / "python"


def thread_env(threads: int = 1) -> dict[str, str]:
    """Environment variables that pin OpenMP, BLAS, torch and DeePMD to ``threads`` threads."""
    n = str(threads)
    return {
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "DP_INTRA_OP_PARALLELISM_THREADS": n,
        "DP_INTER_OP_PARALLELISM_THREADS": "1",
        "TF_INTRA_OP_PARALLELISM_THREADS": n,
        "TF_INTER_OP_PARALLELISM_THREADS": "1",
    }
