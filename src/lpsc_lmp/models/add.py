"""``lpsc-lmp models add NAME --arch ARCH --functional F FILE``: register a model users have.

Takes the file a user has and makes the deployable file plus a card in ``potentials/NAME/``,
running the architecture's own export tool in that architecture's environment
(:mod:`lpsc_lmp.models.export`). The card lists the model's routes, native pair style first
(:func:`native_routes`): NequIP/Allegro ``[nequip|allegro, python-callback]`` with the
pair-style export (``nequip-compile --target pair_nequip|pair_allegro``) as a derived file, MACE
``[mace, mliap, python-callback]`` with ``mace_create_lammps_model`` exports; DeePMD-kit
``[deepmd, python-callback]``. Derived pair-style exports are made where LAMMPS has the pair
style (:mod:`lpsc_lmp.models.derive`). A compiled ``.nequip.pt2`` (target ase) can only run on
python-callback.

The model folder is assembled in a hidden staging folder and renamed into place at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ..environments import EnvironmentFailure, run_in_env
from ..errors import ExportError, RegistryError
from ..paths import potentials_dir
from ..rundir import check_name
from .architectures import ENV_OF, check_architecture
from .derive import derive_route_file
from .registry import CARD, file_hashes, load_card, publish_model_dir

#: exports for native pair styles, per architecture: (route, files key, file name, how)
NATIVE_EXPORTS: dict[str, list[tuple[str, str, str, dict[str, str]]]] = {
    "mace": [("mace", "pair_mace", "model.model-lammps.pt",
              {"tool": "mace-create-lammps-model"}),
             ("mliap", "mliap", "model.model-mliap_lammps.pt",
              {"tool": "mace-create-lammps-model", "format": "mliap"})],
    "nequip": [("nequip", "pair_nequip", "model-pair.nequip.pt2",
                {"tool": "nequip-compile", "target": "pair_nequip"})],
    "allegro": [("allegro", "pair_allegro", "model-pair.nequip.pt2",
                 {"tool": "nequip-compile", "target": "pair_allegro"})],
}


def native_routes(arch: str, source: str | None) -> dict[str, Any]:
    """Card fields for the native pair-style routes of ``arch``, exported from ``source`` (the
    MACE .model, the NequIP/Allegro package or checkpoint kept in the model folder): ``route``
    (native first, python-callback last), extra ``files`` and ``derive`` entries. The exports
    are made by ``models prepare`` / the first ensemble where LAMMPS has the pair style."""
    if arch == "deepmd":
        return {"route": ["deepmd", "python-callback"], "files": {}, "derive": {}}
    if source is None:  # e.g. an already compiled .nequip.pt2: nothing to export from
        return {"route": "python-callback", "files": {}, "derive": {}}
    routes, files, derive = [], {}, {}
    for route, key, fname, how in NATIVE_EXPORTS[arch]:
        routes.append(route)
        files[key] = fname
        derive[fname] = {"from": source, **how, "route": route}
    return {"route": [*routes, "python-callback"], "files": files, "derive": derive}


def run_export(arch: str, src: Path, out: Path) -> dict[str, Any]:
    """Run :func:`lpsc_lmp.models.export.export` in the architecture's environment; return the
    card fields it found. ExportError when the file is refused or does not load."""
    check_architecture(arch)
    try:
        return run_in_env(ENV_OF[arch], "lpsc_lmp.models.export", [arch, str(src), str(out)])
    except EnvironmentFailure as exc:
        raise ExportError(f"{src.name} could not be exported as a {arch} model: {exc}") from None


def make_card(name: str, arch: str, functional: str, src: Path, res: dict[str, Any]
              ) -> dict[str, Any]:
    nat = native_routes(arch, res.get("source"))
    files = {"deploy": res["deploy"]}
    if res.get("source") and res["source"] != res["deploy"]:
        files["package"] = res["source"]
    card = {
        "name": name, "architecture": arch, "reference": functional,
        "type_map": res["type_map"], "cutoff_A": res["cutoff_A"], "route": nat["route"],
        "env": ENV_OF[arch], "files": {**files, **nat["files"]},
        "source": {"file": str(src), "added": datetime.now(UTC).isoformat(timespec="seconds"),
                   "export": res["export"]},
    }
    if nat["derive"]:
        card["derive"] = nat["derive"]
    return card


def add_model(name: str, arch: str, functional: str, src: Path, force: bool = False,
              root: Path | None = None, echo: Callable[[str], None] | None = None) -> Path:
    """Export ``src`` with ``arch``'s own tool and register it as model ``name`` (the card
    says ``functional`` as its reference). With ``echo``, the export of the route this LAMMPS
    runs (e.g. pair_nequip) is made too, as the first ensemble would. Returns the folder."""
    check_name(name, "model name")
    base = root or potentials_dir()
    dest = base / name
    if dest.exists() and not force:
        raise ExportError(f"model '{name}' exists ({dest}); pass --force to replace it")
    src = src.resolve()
    base.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=base))
    try:
        res = run_export(arch, src, stage)
        card = make_card(name, arch, functional, src, res)
        card["files_sha256"] = file_hashes(stage, card["files"], card.get("derive"))
        (stage / CARD).write_text(yaml.safe_dump(card, sort_keys=False))
        publish_model_dir(stage, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if echo is not None:
        card = load_card(name, root=base)
        echo(f"registered {name} ({arch}, {functional}) in {dest}; route here: {card.route}")
        try:  # the export of the route this LAMMPS runs (pair_nequip, pair_mace, ...), if any
            derive_route_file(card, echo=echo)
        except RegistryError as exc:
            raise ExportError(f"registered, but the export for route {card.route} failed: "
                              f"{exc}") from None
    return dest
