"""The in-environment half of ``lpsc-lmp models add``: make a model's deployable file.

``python -m lpsc_lmp.models.export ARCH FILE OUTDIR`` runs in the architecture's own environment
(:data:`lpsc_lmp.models.architectures.ENV_OF`), loads FILE with the architecture's own code,
writes the deployable file into OUTDIR and prints the card fields as JSON (type map and cutoff
from the model itself; ``{"error": ...}`` when FILE is not a usable model of ARCH):

- deepmd: checkpoint ``.pt`` (``dp --pt freeze``) or frozen ``.pth`` -> ``frozen.pth``;
- nequip, allegro: checkpoint ``.ckpt`` or package ``.nequip.zip`` (``nequip-compile --mode
  aotinductor --target ase``, kept as ``source.*`` for the pair-style exports) or compiled
  ``.nequip.pt2`` -> ``model.nequip.pt2``; a checkpoint says whether it is NequIP or Allegro;
- mace: ``.model`` (converted to float64) -> ``model.model``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..environments import json_main
from ..errors import ExportError, RegistryError
from .architectures import ARCHITECTURES, NEQUIP_FAMILY
from .derive import nequip_compile


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
        try:
            nequip_compile(src, deploy, {"target": "ase"})
        except RegistryError as exc:
            raise ExportError(str(exc)) from None
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


def export(arch: str, src: Path, out: Path) -> dict[str, Any]:
    """Make the deployable file of ``src`` in ``out``; return card fields (in the arch's env)."""
    out.mkdir(parents=True, exist_ok=True)
    if arch == "deepmd":
        return _export_deepmd(src, out)
    if arch == "mace":
        return _export_mace(src, out)
    if arch in NEQUIP_FAMILY:
        return _export_nequip(src, out, arch)
    raise ExportError(f"--arch {arch} unknown; use one of {', '.join(ARCHITECTURES)}")


def main(argv: list[str] | None = None) -> int:
    """``python -m lpsc_lmp.models.export ARCH FILE OUTDIR`` (prints JSON)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m lpsc_lmp.models.export ARCH FILE OUTDIR", file=sys.stderr)
        return 2
    arch, src, out = args[0], Path(args[1]).resolve(), Path(args[2]).resolve()
    return json_main(lambda: export(arch, src, out))


if __name__ == "__main__":
    sys.exit(main())
