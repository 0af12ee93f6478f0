"""The model registry: ``potentials/<name>/card.yaml`` plus the model files it names.

A card says what a model is (architecture, reference method, type map, cutoff), how LAMMPS
evaluates it (route), which project environment runs it, where it came from, and its errors.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import RegistryError, RouteError
from ..files import sha256_file, write_text_atomic
from ..paths import potentials_dir
from ..rundir import check_name
from .routes import ROUTE_FILE_KEY, route_preferences, select_route

REQUIRED_KEYS = ("name", "architecture", "reference", "type_map", "cutoff_A", "route", "env",
                 "files")
CARD = "card.yaml"


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

    @property
    def functional(self) -> str:
        """The functional of the training labels (``functional``, else ``reference``)."""
        return str(self.raw.get("functional") or self.reference)

    def physics_file(self) -> Path:
        """The file that fixes the model's physics: the committed source of the file LAMMPS
        loads where that one is derived from it (a compressed DeePMD model from its frozen
        model), else the file LAMMPS loads."""
        how = (self.raw.get("derive") or {}).get(self.lammps_file.name)
        src = self.directory / how["from"] if how else self.lammps_file
        return self._require(src)

    def verify_files(self) -> None:
        """Refuse model files that do not match the sha256 the card records
        (``frozen_sha256``, ``files_sha256``): a corrupted, truncated or swapped file."""
        recorded = dict(self.raw.get("files_sha256") or {})
        if self.raw.get("frozen_sha256") and "frozen" in self.files:
            recorded[self.files["frozen"]] = self.raw["frozen_sha256"]
        for fname, want in recorded.items():
            path = self.directory / fname
            if path.is_file() and sha256_file(path) != want:
                raise RegistryError(f"{path} of model '{self.name}' does not match the sha256 "
                                    "on its card; restore it (git checkout) or register the "
                                    "model again")

    def check_species(self, symbols: list[str] | set[str]) -> None:
        """Refuse a structure with elements the model does not know."""
        extra = sorted(set(symbols) - set(self.type_map))
        if extra:
            raise RegistryError(f"model '{self.name}' knows {list(self.type_map)} but the "
                                f"structure has {extra}; use a structure of these elements")


def list_models(root: Path | None = None) -> list[str]:
    """Names of the registered models (folders of the registry with a card), sorted."""
    base = root or potentials_dir()
    return sorted(p.parent.name for p in base.glob(f"*/{CARD}"))


def read_card(name: str, root: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The path and raw content of model ``name``'s card, checked for its required keys."""
    base = root or potentials_dir()
    path = base / check_name(name, "model name") / CARD
    if not path.is_file():
        known = ", ".join(list_models(base)) or "none"
        raise RegistryError(f"unknown model '{name}' (registered: {known}); add yours with "
                            "`lpsc-lmp models add NAME --arch ARCH --functional F FILE` or "
                            "train one with `lpsc-lmp train`")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise RegistryError(f"card {path} is not valid YAML{at}; fix it or restore it from "
                            "git") from None
    if not isinstance(raw, dict):
        raise RegistryError(f"card {path} is not a YAML mapping; fix it or restore it from git")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise RegistryError(f"card {path} lacks {missing}; add them")
    return path, raw


def update_card(name: str, key: str, value: Any, root: Path | None = None) -> Path:
    """Set one top-level ``key`` of model ``name``'s card to ``value`` (a measured property,
    e.g. its NEB barriers), rewriting the card atomically. Returns the card's path."""
    path, raw = read_card(name, root)
    raw[key] = value
    return write_text_atomic(path, yaml.safe_dump(raw, sort_keys=False))


def load_card(name: str, root: Path | None = None, route: str | None = None) -> ModelCard:
    """The card of model ``name``, on the first route of its list this LAMMPS runs, or on
    ``route`` (one of its list) when given."""
    path, raw = read_card(name, root)
    try:
        prefs = route_preferences(raw["route"])
    except RouteError as exc:
        raise RegistryError(f"card {path}: {exc}") from None
    if route is not None:
        if route not in prefs:
            raise RegistryError(f"model '{name}' offers routes {prefs}, not {route}; pass one "
                                "of those to --route")
        prefs = [route]
    try:  # the first route the LAMMPS of the model's env can run
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


def file_hashes(folder: Path, files: dict[str, str], derive: dict[str, Any] | None = None
                ) -> dict[str, str]:
    """sha256 of the model files a card names that are not derived (the committed ones), for
    the card's ``files_sha256``."""
    names = sorted({f for f in files.values() if f not in (derive or {})})
    return {f: sha256_file(folder / f) for f in names if (folder / f).is_file()}


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


def load_card_at(spec: str | Path, route: str | None = None) -> ModelCard:
    """The card of a registered model name, or of a model folder (a path holding
    ``card.yaml``, e.g. a model still being assembled by ``train``)."""
    folder = Path(spec)
    if (folder / CARD).is_file():
        folder = folder.resolve()
        return load_card(folder.name, root=folder.parent, route=route)
    return load_card(str(spec), route=route)
