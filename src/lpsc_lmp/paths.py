"""Where the project's folders and Python environments are.

The project root holds ``templates/``, ``potentials/``, ``data/``, ``runs/`` and
``.venv/<env>/``. It is found from ``LPSC_LMP_HOME`` or, for an editable install, from this
file's location. Each folder can be moved with its own variable (``LPSC_LMP_POTENTIALS``,
``LPSC_LMP_TEMPLATES``, ``LPSC_LMP_DATA``, ``LPSC_LMP_RUNS``).
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


def source_root() -> Path:
    """The folder holding the ``lpsc_lmp`` package (put on PYTHONPATH of other environments)."""
    return Path(__file__).resolve().parents[1]


def potentials_dir() -> Path:
    """The model registry (``potentials/``)."""
    return Path(os.environ.get("LPSC_LMP_POTENTIALS", project_root() / "potentials"))


def templates_dir() -> Path:
    """The Jinja templates of decks and training inputs (``templates/``)."""
    return Path(os.environ.get("LPSC_LMP_TEMPLATES", project_root() / "templates"))


def runs_dir() -> Path:
    """The root of run directories (``runs/``)."""
    return Path(os.environ.get("LPSC_LMP_RUNS", project_root() / "runs"))


def data_root() -> Path:
    """The folder of datasets (``data/``)."""
    return Path(os.environ.get("LPSC_LMP_DATA", project_root() / "data"))


def env_python(env: str) -> Path:
    """The interpreter of the project environment ``env`` (e.g. ``dp``), made by make install."""
    return project_root() / ".venv" / env / "bin" / "python"


def relative_to_project(p: Path) -> str:
    """``p`` relative to the project root where it lies inside it, else as given."""
    try:
        return str(Path(p).resolve().relative_to(project_root()))
    except ValueError:
        return str(p)
