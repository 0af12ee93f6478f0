"""Turn a finished training into a bundled model: deployable file, errors, card.

Usage (in the architecture's environment):
  .venv/mace/bin/python scripts/train_7net/finish.py mace WORK SECONDS
  .venv/nequip/bin/python scripts/train_7net/finish.py nequip WORK SECONDS

mace: WORK/mace-7net.model -> potentials/mace-7net/model.model (float64).
nequip: WORK/best.ckpt -> potentials/nequip-7net/nequip-7net.nequip.zip (nequip-package, the
committed file) -> model.nequip.pt2 (nequip-compile, AOTInductor, target ase; derived by
`make install` through the card's `derive`).
Errors: energy RMSE per atom (meV/atom) and force RMSE over all components (eV/A) with the
model's own ASE calculator on data/lpsc-7net/{train,test}.extxyz (the deployable file).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import yaml
from ase.io import read

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from lpsc_lmp.models.add import compile_nequip, export  # noqa: E402
from lpsc_lmp.models.calculators import load_calculator  # noqa: E402

DATA = ROOT / "data" / "lpsc-7net"


def errors(calc, path: Path) -> dict[str, float]:
    de, df = [], []
    for at in read(path, index=":"):
        e_ref, f_ref = at.get_potential_energy(), at.get_forces()
        at.calc = calc
        de.append((at.get_potential_energy() - e_ref) / len(at))
        df.append((at.get_forces() - f_ref).ravel())
    return {"energy_rmse_meV_atom": round(float(np.sqrt(np.mean(np.square(de)))) * 1000.0, 3),
            "force_rmse_eV_A": round(float(np.sqrt(np.mean(np.square(np.concatenate(df))))), 4)}


def main() -> None:
    torch.set_num_threads(1)
    arch, work, seconds = sys.argv[1], Path(sys.argv[2]).resolve(), float(sys.argv[3])
    name = f"{arch}-7net"
    out = ROOT / "potentials" / name
    out.mkdir(parents=True, exist_ok=True)
    sha = {s: hashlib.sha256((DATA / f"{s}.extxyz").read_bytes()).hexdigest()
           for s in ("train", "test")}
    if arch == "mace":
        res = export("mace", work / "mace-7net.model", out)
        files = {"deploy": res["deploy"]}
        derive = None
        training = {
            "program": f"mace-torch {metadata.version('mace-torch')} (e3nn "
                       f"{metadata.version('e3nn')}, torch {metadata.version('torch')}), CPU",
            "command": "scripts/train_7net/train_mace.sh (mace_run_train, arguments there)",
            "model": "MACE, 16 channels, max_L 0, correlation 2, 2 interactions, r_max 5 A, "
                     "8 Bessel functions, E0s average, float64",
        }
    else:
        ckpt = work / "best.ckpt"
        if not ckpt.is_file():
            ckpt = work / "last.ckpt"
        fixed = work / f"{ckpt.stem}-fixed.ckpt"  # see fix_nequip_ema_ckpt.py
        subprocess.run([sys.executable, str(Path(__file__).parent / "fix_nequip_ema_ckpt.py"),
                        str(ckpt), str(fixed)], check=True)
        pkg = out / f"{name}.nequip.zip"
        pkg.unlink(missing_ok=True)
        subprocess.run([str(Path(sys.executable).parent / "nequip-package"), "build", str(fixed),
                        str(pkg)], check=True)
        deploy = out / "model.nequip.pt2"
        compile_nequip(pkg, deploy)
        res = {"deploy": deploy.name, "cutoff_A": 5.0, "type_map": ["Li", "P", "S", "Cl"]}
        files = {"package": pkg.name, "deploy": deploy.name}
        derive = {deploy.name: {"from": pkg.name, "tool": "nequip-compile"}}
        training = {
            "program": f"nequip {metadata.version('nequip')} (e3nn {metadata.version('e3nn')}, "
                       f"torch {metadata.version('torch')}), CPU",
            "command": "scripts/train_7net/train_nequip.sh (nequip-train)",
            "config": "templates/train/nequip.yaml.j2 (seed 456, 60 epochs, 18 min)",
            "model": "NequIP, 2 layers, l_max 1, 16 features, r_max 5 A, ZBL prior, float32; "
                     f"checkpoint {ckpt.name} (EMA weights), packaged with nequip-package",
        }
    calc = load_calculator(arch, out / res["deploy"])
    errs = {s: errors(calc, DATA / f"{s}.extxyz") for s in ("train", "test")}
    card_env = "mace" if arch == "mace" else "nequip"
    card = {
        "name": name, "architecture": arch, "reference": "7net",
        "reference_method": ("SevenNet-0 (sevenn 7net-0), a universal potential trained on PBE "
                             "data of the Materials Project; no DFT was run for this model"),
        "type_map": res["type_map"], "cutoff_A": float(res["cutoff_A"]),
        "route": "python-callback", "env": "mace" if arch == "mace" else "nequip",
        "files": files,
        **({"derive": derive} if derive else {}),
        "dataset": "lpsc-7net",
        "training": {**training, "seconds": round(seconds),
                     "machine": "2 shared CPU cores, 1 thread, nice 19",
                     "dataset": "data/lpsc-7net (train.extxyz, test.extxyz)",
                     "dataset_sha256": sha, "frames": {"train": 308, "test": 60},
                     "validation": "test.extxyz (the same split as dp-7net)"},
        "errors": {**errs, "computed_with": f"the model's own ASE calculator on {res['deploy']}"},
        "regenerate": (f"bash scripts/train_7net/train_{arch}.sh WORK && "
                       f".venv/{card_env}/bin/python scripts/train_7net/finish.py {arch} WORK "
                       "SECONDS"),
    }
    (out / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    print(yaml.safe_dump(card, sort_keys=False))


if __name__ == "__main__":
    main()
