"""Derive deployable model files from the committed ones (``make install`` runs this).

A card's ``derive`` section maps a file to the tool that makes it, e.g.
``compressed.pth: {from: frozen.pth, tool: dp-compress}``. Large derived files (a compressed
DeePMD model is ~100x its frozen model) are not committed; they are made here in seconds.

Exports for native pair styles carry the route they serve, e.g.
``model-pair.nequip.pt2: {from: m.nequip.zip, tool: nequip-compile, target: pair_nequip,
route: nequip}``. They are made when that route is the one the LAMMPS in use runs (by
``models prepare`` or on the first ensemble), or for every route with ``--all-routes``: a
pair_nequip compile costs ~100 s and is useless where LAMMPS lacks ``pair_style nequip``.

Tools (each runs in the model's own environment):

- ``dp-compress``: ``dp --pt compress`` (DeePMD environment).
- ``nequip-compile``: ``nequip-compile --mode aotinductor --device cpu --target T`` with
  ``target`` ase (the ASE calculator and the python-callback route; default), pair_nequip,
  pair_allegro or batch. An AOTInductor package runs only on the device type it was compiled
  for: the GPU variants of the python-callback file and of the batch package
  (``<stem>.cuda.nequip.pt2``) are made on the GPU machine by :func:`derive_for_device`.
- ``mace-create-lammps-model``: MACE's ``mace_create_lammps_model`` (TorchScript for
  ``pair_style mace``, float64); with ``format: mliap`` the ML-IAP export for
  ``pair_style mliap unified`` (needs cuequivariance and a GPU, per MACE's documentation).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..devices import detect_gpus, device_type
from ..environments import subprocess_env
from ..errors import RegistryError
from ..paths import env_python
from .architectures import NEQUIP_FAMILY
from .batch_eval import batch_file_for
from .calculators import device_model_file
from .registry import ModelCard, load_card
from .routes import CALLBACK_ROUTE


def tool_command(env: str, tool: str, out: Path | None = None) -> tuple[Path, dict[str, str]]:
    """The executable ``tool`` of project environment ``env`` and the environment to run it
    with (one thread); RegistryError naming `make install` if it is missing."""
    exe = env_python(env).parent / tool
    if not exe.exists():
        need = f" (needed to make {out.name})" if out is not None else ""
        raise RegistryError(f"{exe} is missing{need}; run `make install`")
    return exe, subprocess_env(exe, threads=1)


def dp_compress(frozen: Path, out: Path, how: dict[str, Any] | None = None) -> None:
    """``dp --pt compress`` of a frozen DeePMD-kit model (tabulated embedding; about 2x faster
    MD), written atomically."""
    exe, env = tool_command("dp", "dp", out)
    tmp = out.with_name(out.stem + ".tmp.pth")
    r = subprocess.run([str(exe), "--pt", "compress", "-i", str(frozen), "-o", str(tmp)],
                       cwd=out.parent, env=env, capture_output=True, text=True)
    if r.returncode or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise _failed("dp --pt compress", frozen, r)
    tmp.replace(out)


def _failed(tool: str, src: Path, r: subprocess.CompletedProcess) -> RegistryError:
    last = ((r.stderr or "").strip().splitlines() or (r.stdout or "").strip().splitlines()
            or ["?"])[-1]
    return RegistryError(f"{tool} of {src.name} failed: {last[:200]}")


def nequip_compile(src: Path, out: Path, how: dict[str, Any]) -> None:
    """AOTInductor-compile a NequIP/Allegro package or checkpoint for ``how['target']`` (ase,
    pair_nequip, pair_allegro, batch) and ``how['device']`` (cpu) in ``.venv/nequip`` (40-100 s
    with g++)."""
    exe, env = tool_command("nequip", "nequip-compile", out)
    target = how.get("target", "ase")
    tmp = out.with_name(".tmp-" + out.name)  # keeps the .nequip.pt2 ending nequip-compile wants
    r = subprocess.run([str(exe), str(src), str(tmp), "--mode", "aotinductor", "--device",
                        how.get("device", "cpu"), "--target", target], capture_output=True,
                       text=True, env=env)
    if r.returncode or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise _failed(f"nequip-compile --target {target}", src, r)
    tmp.replace(out)


def _mace_create_lammps_model(src: Path, out: Path, how: dict[str, Any]) -> None:
    """MACE's own LAMMPS export of a ``.model`` (``--format libtorch`` or ``mliap``, float64),
    run on a copy in a scratch folder (MACE writes ``<model>-lammps.pt`` next to its input)."""
    exe, env = tool_command("mace", "mace_create_lammps_model", out)
    fmt = how.get("format", "libtorch")
    suffix = "-mliap_lammps.pt" if fmt == "mliap" else "-lammps.pt"
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".mace-export-") as tmp:
        copy = Path(tmp) / src.name
        shutil.copyfile(src, copy)
        r = subprocess.run([str(exe), str(copy), "--dtype", "float64", "--format", fmt],
                           capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        made = copy.with_name(copy.name + suffix)
        if r.returncode or not made.is_file():
            err = _failed(f"mace_create_lammps_model --format {fmt}", src, r)
            if fmt == "mliap":
                err = RegistryError(f"{err}; the ML-IAP export needs cuequivariance in "
                                    ".venv/mace and, per MACE's documentation, a GPU")
            raise err
        made.replace(out)


TOOLS: dict[str, Callable[[Path, Path, dict[str, Any]], None]] = {
    "dp-compress": dp_compress,
    "nequip-compile": nequip_compile,
    "mace-create-lammps-model": _mace_create_lammps_model,
}


def _make(card: ModelCard, target: str, how: dict[str, Any]) -> Path:
    out = card.directory / target
    src = card.directory / how["from"]
    if not src.is_file():
        raise RegistryError(f"{src} (source of {target}) is missing; restore it from git")
    tool = TOOLS.get(how["tool"])
    if tool is None:
        raise RegistryError(f"card of {card.name}: unknown derive tool {how['tool']!r}; "
                            f"use one of {sorted(TOOLS)}")
    tool(src, out, how)
    return out


def derive_missing(card: ModelCard, force: bool = False, all_routes: bool = False,
                   echo: Callable[[str], None] | None = None) -> list[Path]:
    """Make the derived files of ``card`` that are missing (all with ``force``); a native
    route's export only if that route is the card's selected one, or ``all_routes``. Returns
    the files made."""
    made, failed = [], []
    for target, how in (card.raw.get("derive") or {}).items():
        if "route" in how and how["route"] != card.route and not all_routes:
            continue
        if (card.directory / target).is_file() and not force:
            continue
        if echo:
            echo(f"{card.name}: making {target} ({how['tool']}"
                 + (f" --target {how['target']}" if "target" in how else "") + ") ...")
        try:
            made.append(_make(card, target, how))
        except RegistryError as exc:
            if not all_routes or how.get("route") in (None, card.route):
                raise  # a file this machine needs
            failed.append(str(exc))  # an export for another machine's LAMMPS: go on
            if echo:
                echo(f"{card.name}: skipped {target}: {exc}")
    if failed and echo is None:
        raise RegistryError("; ".join(failed))
    return made


def derive_route_file(card: ModelCard, echo: Callable[[str], None] | None = print
                      ) -> Path | None:
    """Make the file the card's selected route loads if it is missing and derivable (the
    first ensemble on a LAMMPS with a native pair style); None if nothing was made."""
    target = card.lammps_file.name
    how = (card.raw.get("derive") or {}).get(target)
    if card.lammps_file.is_file() or how is None:
        return None
    if echo:
        echo(f"{card.name}: making {target} for route {card.route} ({how['tool']}) ...")
    return _make(card, target, how)


def derive_for_device(card: ModelCard, device: str, batch: bool = False,
                      echo: Callable[[str], None] | None = print) -> list[Path]:
    """Make the per-device files a python-callback ensemble of ``card`` on ``device`` loads and
    lacks (or has older than the model's package): a NequIP/Allegro model's AOTInductor file
    for a GPU (:func:`lpsc_lmp.models.calculators.device_model_file`) and, with ``batch``, its batch
    package (:func:`lpsc_lmp.models.batch_eval.batch_file_for`). Nothing for other architectures or
    routes (MACE and DeePMD-kit models run on any device). Returns the files made."""
    if card.architecture not in NEQUIP_FAMILY or card.route != CALLBACK_ROUTE:
        return []
    kind = device_type(device)
    pkg = card.directory / card.files.get("package", "")
    wanted = [(batch_file_for(card.deploy_file, kind), "batch")] if batch else []
    if kind != "cpu":
        wanted.insert(0, (device_model_file(card.deploy_file, kind), "ase"))
    made = []
    for out, target in wanted:
        if out.is_file() and (not pkg.is_file() or out.stat().st_mtime >= pkg.stat().st_mtime):
            continue
        if kind == "cuda" and not detect_gpus():
            raise RegistryError(f"{out.name} must be compiled on a machine with a GPU "
                                "(nvidia-smi sees none here); run `lpsc-lmp models "
                                f"prepare {card.name} --device cuda` on the GPU machine")
        if not pkg.is_file():
            raise RegistryError(f"{card.name} has no NequIP package (files.package) to compile "
                                f"{out.name} from; re-add the model with `lpsc-lmp models add`")
        if echo:
            echo(f"{card.name}: compiling {out.name} for {kind} (nequip-compile --target "
                 f"{target}, 1-2 min, once) ...")
        nequip_compile(pkg, out, {"target": target, "device": kind})
        made.append(out)
    return made


def prepare_model(name: str, force: bool = False, all_routes: bool = False,
                  device: str | None = None, echo: Callable[[str], None] | None = print
                  ) -> list[Path]:
    """``lpsc-lmp models prepare NAME``: the model's missing derived files, and with
    ``device`` those its python-callback route needs on that device. Returns the files made."""
    made = derive_missing(load_card(name), force=force, all_routes=all_routes, echo=echo)
    if device:
        try:
            card = load_card(name, route=CALLBACK_ROUTE)
        except RegistryError:  # no route evaluated in Python: nothing per device
            return made
        made += derive_for_device(card, device, batch=True, echo=echo)
    return made
