"""``lpsc-lmp models add NAME --arch ARCH --functional F FILE``: register a model users have.

Takes the file a user has and makes the deployable file plus a card in ``potentials/NAME/``,
running the architecture's own export tool in that architecture's environment:

- deepmd: checkpoint ``.pt`` (``dp --pt freeze``) or frozen ``.pth`` -> ``frozen.pth``;
  env dp, route deepmd.
- nequip, allegro: checkpoint ``.ckpt`` or package ``.nequip.zip`` (``nequip-compile --mode
  aotinductor --target ase``) or compiled ``.nequip.pt2`` -> ``model.nequip.pt2``; env nequip.
  The checkpoint/package is kept (``source.*``) and the card lists routes
  ``[nequip|allegro, python-callback]`` with the pair-style export (``nequip-compile --target
  pair_nequip|pair_allegro`` -> ``model-pair.nequip.pt2``) as a derived file; a compiled
  ``.nequip.pt2`` (target ase) can only run on python-callback.
- mace: ``.model`` (converted to float64) -> ``model.model``; env mace; routes
  ``[mace, mliap, python-callback]`` with ``mace_create_lammps_model`` exports
  (``model.model-lammps.pt``, ``model.model-mliap_lammps.pt``) as derived files.

Derived pair-style exports are made where LAMMPS has the pair style (``lpsc_lmp.deploy``).

The file is loaded in that environment first; a file that is not of the claimed architecture is
refused with a one-line error (a NequIP-framework checkpoint says whether it is NequIP or Allegro;
a package or compiled file is accepted for either). The type map and cutoff come from the model
itself. The model folder is assembled in a hidden staging folder and renamed into place at the
end.

The in-environment half is ``python -m lpsc_lmp.models_add ARCH FILE OUTDIR`` (prints JSON).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ARCHS = ("deepmd", "nequip", "allegro", "mace")
ENV = {"deepmd": "dp", "nequip": "nequip", "allegro": "nequip", "mace": "mace"}


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


class ExportError(ValueError):
    """The file is not a usable model of the claimed architecture."""


# ------------------------------------------------------------------ in the model's environment
def _export_deepmd(src: Path, out: Path) -> dict[str, Any]:
    deploy = out / "frozen.pth"
    if src.suffix == ".pt":
        dp = str(Path(sys.executable).parent / "dp")
        r = subprocess.run([dp, "--pt", "freeze", "-c", str(src), "-o", str(deploy)],
                           capture_output=True, text=True)
        if r.returncode or not deploy.is_file():
            raise ExportError(f"{src.name} is not a DeePMD-kit PyTorch checkpoint (dp --pt freeze "
                              "failed)")
    elif src.suffix == ".pth":
        shutil.copyfile(src, deploy)
    else:
        raise ExportError(f"{src.name}: DeePMD files are a checkpoint .pt or a frozen .pth")
    try:
        from deepmd.infer import DeepPot

        dp_ = DeepPot(str(deploy))
        type_map, rcut = list(dp_.get_type_map()), float(dp_.get_rcut())
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{src.name} does not load as a DeePMD-kit model "
                          f"({type(exc).__name__})") from None
    return {"deploy": deploy.name, "type_map": type_map, "cutoff_A": rcut,
            "export": "dp --pt freeze" if src.suffix == ".pt" else "copied"}


def _export_mace(src: Path, out: Path) -> dict[str, Any]:
    import torch
    from ase.data import chemical_symbols

    if src.suffix != ".model":
        raise ExportError(f"{src.name}: MACE models are .model files (torch.save of the model)")
    try:
        model = torch.load(str(src), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{src.name} does not load with torch in the MACE environment "
                          f"({type(exc).__name__})") from None
    if not (type(model).__module__.startswith("mace.") and hasattr(model, "atomic_numbers")
            and hasattr(model, "r_max")):
        raise ExportError(f"{src.name} is not a MACE model (it holds a "
                          f"{type(model).__module__}.{type(model).__name__})")
    model = model.double().eval()
    deploy = out / "model.model"
    torch.save(model, str(deploy))
    from mace.calculators import MACECalculator

    MACECalculator(model_paths=str(deploy), device="cpu", default_dtype="float64")
    z = [int(v) for v in model.atomic_numbers]
    return {"deploy": deploy.name, "type_map": [chemical_symbols[k] for k in z],
            "cutoff_A": float(model.r_max), "export": "float64 (model.double())",
            "source": deploy.name}


def _nequip_arch_of(src: Path) -> str | None:
    """'allegro' or 'nequip' from a checkpoint's model target, None if it cannot tell."""
    import torch

    try:
        ck = torch.load(str(src), map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001
        return None
    hp = ck.get("hyper_parameters", {}) if isinstance(ck, dict) else {}
    model = hp.get("model", {}) if isinstance(hp, dict) else {}
    target = json.dumps(model.get("_target_", "") if isinstance(model, dict) else "",
                        default=str).lower()
    if "allegro" in target:
        return "allegro"
    if "nequip" in target:
        return "nequip"
    return None


def _export_nequip(src: Path, out: Path, arch: str) -> dict[str, Any]:
    deploy = out / "model.nequip.pt2"
    name = src.name
    source = None
    if name.endswith(".nequip.pt2"):
        shutil.copyfile(src, deploy)
        how = "copied"
    elif name.endswith((".ckpt", ".nequip.zip")):
        if name.endswith(".ckpt"):
            found = _nequip_arch_of(src)
            if found is None:
                raise ExportError(f"{name} is not a NequIP-framework checkpoint")
            if found != arch:
                raise ExportError(f"{name} is a {found} checkpoint, not {arch}; "
                                  f"pass --arch {found}")
        compile_nequip(src, deploy)
        how = "nequip-compile --mode aotinductor --target ase"
        if src.parent.resolve() == out.resolve():  # already in the model folder (train)
            source = name
        else:  # kept in the model folder: the pair-style exports derive from it
            source = "source.ckpt" if name.endswith(".ckpt") else "source.nequip.zip"
            shutil.copyfile(src, out / source)
    else:
        raise ExportError(f"{name}: NequIP/Allegro files are a checkpoint .ckpt, a package "
                          ".nequip.zip or a compiled .nequip.pt2")
    try:
        from nequip.integrations.ase import NequIPCalculator
        from nequip.model.inference_models import load_compiled_model

        target = NequIPCalculator._get_aoti_compile_target()
        _, meta = load_compiled_model(str(deploy), "cpu", list(target["input"]),
                                      list(target["output"]))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{name} does not load as a compiled NequIP-framework model for ASE "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    type_names = meta["type_names"]
    type_map = type_names.split(" ") if isinstance(type_names, str) else list(type_names)
    return {"deploy": deploy.name, "type_map": type_map, "cutoff_A": float(meta["r_max"]),
            "export": how, "source": source}


def compile_nequip(src: Path, out: Path) -> None:
    """``nequip-compile`` a checkpoint or package for the ASE calculator (AOTInductor, CPU)."""
    exe = Path(sys.executable).parent / "nequip-compile"
    r = subprocess.run([str(exe), str(src), str(out), "--mode", "aotinductor", "--device",
                        "cpu", "--target", "ase"], capture_output=True, text=True)
    if r.returncode or not out.is_file():
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise ExportError(f"nequip-compile failed on {src.name}: {last[:200]}")


def export(arch: str, src: Path, out: Path) -> dict[str, Any]:
    """Make the deployable file of ``src`` in ``out``; return card fields (in the arch's env)."""
    out.mkdir(parents=True, exist_ok=True)
    if arch == "deepmd":
        return _export_deepmd(src, out)
    if arch == "mace":
        return _export_mace(src, out)
    if arch in ("nequip", "allegro"):
        return _export_nequip(src, out, arch)
    raise ExportError(f"--arch {arch} unknown; use one of {ARCHS}")


def _main(argv: list[str]) -> int:
    arch, src, out = argv[0], Path(argv[1]).resolve(), Path(argv[2]).resolve()
    try:
        res = export(arch, src, out)
    except ExportError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(res))
    return 0


# ------------------------------------------------------------------ the CLI (core environment)
def run_export(arch: str, src: Path, out: Path) -> dict[str, Any]:
    """Run :func:`export` in the architecture's environment; ExportError on refusal."""
    from .paths import env_python, thread_env

    exe = env_python(ENV[arch])
    if not exe.exists():
        raise ExportError(f"environment '{ENV[arch]}' for --arch {arch} is missing ({exe}); "
                          "run `make install`")
    from .routes import env_for_subprocess

    env = dict(env_for_subprocess(exe), **thread_env(1))
    srcdir = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = srcdir + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    r = subprocess.run([str(exe), "-m", "lpsc_lmp.models_add", arch, str(src), str(out)],
                       capture_output=True, text=True, env=env)
    lines = [ln for ln in r.stdout.strip().splitlines() if ln.startswith("{")]
    if not lines:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"{src.name} could not be loaded as a {arch} model ({last[:160]})")
    res = json.loads(lines[-1])
    if "error" in res:
        raise ExportError(res["error"])
    return res


def make_card(name: str, arch: str, functional: str, src: Path, res: dict[str, Any]
              ) -> dict[str, Any]:
    nat = native_routes(arch, res.get("source"))
    files = {"deploy": res["deploy"]}
    if res.get("source") and res["source"] != res["deploy"]:
        files["package"] = res["source"]
    card = {
        "name": name, "architecture": arch, "reference": functional,
        "type_map": res["type_map"], "cutoff_A": res["cutoff_A"], "route": nat["route"],
        "env": ENV[arch], "files": {**files, **nat["files"]},
        "source": {"file": str(src), "added": datetime.now(UTC).isoformat(timespec="seconds"),
                   "export": res["export"]},
    }
    if nat["derive"]:
        card["derive"] = nat["derive"]
    return card


def add_model(name: str, arch: str, functional: str, src: Path, force: bool = False,
              root: Path | None = None) -> Path:
    import yaml

    from .paths import potentials_dir

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
        (stage / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
        if dest.exists():
            shutil.rmtree(dest)
        stage.rename(dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return dest


try:
    import click

    @click.command("add")
    @click.argument("name")
    @click.option("--arch", type=click.Choice(ARCHS), required=True,
                  help="Architecture of FILE.")
    @click.option("--functional", required=True,
                  help="Reference method of the training labels (PBE, r2SCAN, 7net, ...).")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--force", is_flag=True, help="Replace an existing model of that name.")
    def models_add(name: str, arch: str, functional: str, file: Path, force: bool) -> None:
        """Register FILE as model NAME: export it with ARCH's own tool, write its card."""
        from .deploy import derive_route_file
        from .registry import RegistryError, load_card

        try:
            dest = add_model(name, arch, functional, file, force)
        except ExportError as exc:
            raise click.ClickException(str(exc)) from None
        card = load_card(name, root=dest.parent)
        click.echo(f"registered {name} ({arch}, {functional}) in {dest}; route here: "
                   f"{card.route}")
        try:  # the export of the route this LAMMPS runs (pair_nequip, pair_mace, ...), if any
            derive_route_file(card, echo=click.echo)
        except RegistryError as exc:
            raise click.ClickException(f"registered, but the export for route {card.route} "
                                       f"failed: {exc}") from None
except ImportError:  # pragma: no cover (the in-env half needs no click)
    models_add = None


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
