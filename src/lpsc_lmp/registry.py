"""The model registry: ``potentials/<name>/card.yaml`` plus the model files it names.

A card says what a model is (architecture, reference method, type map, cutoff), how LAMMPS
evaluates it (route), which project environment runs it, where it came from, and its errors.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .paths import potentials_dir

REQUIRED_KEYS = ("name", "architecture", "reference", "type_map", "cutoff_A", "route", "env",
                 "files")
ROUTES = ("deepmd", "python-callback", "nequip", "allegro", "mace", "mliap")
#: The card's ``files`` key of the file LAMMPS loads on each route: native NequIP/Allegro/MACE
#: pair styles need their own exports (nequip-compile --target pair_nequip|pair_allegro,
#: mace_create_lammps_model [--format=mliap]); deepmd and python-callback use ``deploy``.
ROUTE_FILE_KEY = {"deepmd": "deploy", "python-callback": "deploy", "nequip": "pair_nequip",
                  "allegro": "pair_allegro", "mace": "pair_mace", "mliap": "mliap"}


class RegistryError(ValueError):
    """A model that cannot be used; the message names the fix."""


@dataclass(frozen=True)
class ModelCard:
    """A registered model. Paths are absolute."""

    name: str
    architecture: str
    reference: str
    type_map: tuple[str, ...]
    cutoff_A: float
    route: str
    env: str
    directory: Path
    files: dict[str, str]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def deploy_file(self) -> Path:
        """The file LAMMPS loads."""
        return self.directory / self.files["deploy"]

    def require_deploy_file(self) -> Path:
        return self._require(self.deploy_file)

    @property
    def lammps_file(self) -> Path:
        """The file the deck hands LAMMPS (or the callback) on the selected route."""
        return self.directory / self.files[ROUTE_FILE_KEY[self.route]]

    def require_lammps_file(self) -> Path:
        return self._require(self.lammps_file)

    def _require(self, p: Path) -> Path:
        if not p.is_file():
            derived = p.name in (self.raw.get("derive") or {})
            hint = (f"run `lpsc-lmp models prepare {self.name}` (it derives this file)"
                    if derived else f"restore {p.name} in {self.directory}")
            raise RegistryError(f"model file {p} of '{self.name}' is missing; {hint}")
        return p

    def check_species(self, symbols: list[str] | set[str]) -> None:
        """Refuse a structure with elements the model does not know."""
        extra = sorted(set(symbols) - set(self.type_map))
        if extra:
            raise RegistryError(f"model '{self.name}' knows {list(self.type_map)} but the "
                                f"structure has {extra}; use a structure of these elements")


def list_models(root: Path | None = None) -> list[str]:
    base = root or potentials_dir()
    return sorted(p.parent.name for p in base.glob("*/card.yaml"))


def load_card(name: str, root: Path | None = None, route: str | None = None) -> ModelCard:
    """The card of model ``name``, on the first route of its list this LAMMPS runs, or on
    ``route`` (one of its list) when given."""
    base = root or potentials_dir()
    path = base / name / "card.yaml"
    if not path.is_file():
        known = ", ".join(list_models(base)) or "none"
        raise RegistryError(f"unknown model '{name}' (registered: {known}); "
                            "see `lpsc-lmp models list`")
    raw = yaml.safe_load(path.read_text())
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise RegistryError(f"card {path} lacks {missing}; add them")
    prefs = [raw["route"]] if isinstance(raw["route"], str) else list(raw["route"] or [])
    if not prefs or any(r not in ROUTES for r in prefs):
        raise RegistryError(f"card {path}: route {raw['route']!r} unknown; use one of {ROUTES} "
                            "(or a list of them in order of preference)")
    if route is not None:
        if route not in prefs:
            raise RegistryError(f"model '{name}' offers routes {prefs}, not {route}; pass one "
                                "of those to --route")
        prefs = [route]
    route = prefs[0]
    if len(prefs) > 1:  # the first route the LAMMPS of the model's env can run (routes.py)
        from .routes import RouteError, select_route

        try:
            route = select_route(prefs, env=raw["env"])
        except RouteError as exc:
            raise RegistryError(f"card {path}: {exc}") from None
    key = ROUTE_FILE_KEY[route]
    if key not in (raw["files"] or {}):
        raise RegistryError(f"card {path}: route {route} needs files.{key} (the model exported "
                            f"for that pair style); add it or put another route first")
    return ModelCard(name=raw["name"], architecture=raw["architecture"],
                     reference=str(raw["reference"]), type_map=tuple(raw["type_map"]),
                     cutoff_A=float(raw["cutoff_A"]), route=route, env=raw["env"],
                     directory=path.parent.resolve(), files=dict(raw["files"]), raw=raw)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def publish_model_dir(staged: Path, dest: Path) -> None:
    """Move a fully written model folder into place, replacing ``dest`` only at the end, so a
    registry never holds a half-written model."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.replaced"
        if old.exists():
            shutil.rmtree(old)
        dest.rename(old)
    staged.rename(dest)
    if old is not None:
        shutil.rmtree(old)


def registered_line(path: Path, card: dict[str, Any]) -> str:
    """One line saying a model was registered, with its train/test errors."""
    e = card["errors"]
    return (f"registered {path}: energy RMSE train {e['train']['energy_rmse_meV_atom']} / test "
            f"{e['test']['energy_rmse_meV_atom']} meV/atom, force RMSE train "
            f"{e['train']['force_rmse_eV_A']} / test {e['test']['force_rmse_eV_A']} eV/A")
