"""Labels from a universal potential that ships inside its wheel: a stand-in for DFT.

No DFT data ship with lpsc-lmp and no hybrid-functional runs are made here, so the bundled
datasets are labelled by SevenNet models that the ``sevenn`` wheel carries (in ``.venv/label``):

- ``7net-0``: SevenNet-0, trained on PBE(+U) data of the Materials Project (labels of the
  bundled ``data/lpsc-7net``);
- ``7net-mf-0``: SevenNet-MF-0, one network with two output modalities, ``PBE`` and
  ``R2SCAN`` (a meta-GGA, one rung above PBE, standing in for the paper's HSE06).

Labelling the same frames with both modalities gives what the paper had: one set of
configurations, two functionals. Absolute energies of the two modalities differ by a constant
reference per element, so a dataset holds one modality only.

``lpsc-lmp data label SRC --name NEW --labeller 7net-mf-0 --modal R2SCAN`` relabels every frame
of dataset SRC (``train.extxyz`` and ``test.extxyz``, keeping its split and frame order) into
``data/NEW/`` with ``label.json`` (labeller, modality, versions, source files and their sha256,
seconds). The work runs in the label environment (``python -m lpsc_lmp.training.label``) and is
resumable: frames are appended to ``<split>.extxyz.partial`` as they are labelled, and an
interrupted labelling continues after the last complete frame.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..environments import env_versions, json_main, run_in_env
from ..errors import DatasetError, EnvironmentFailure
from ..files import sha256_file, write_text_atomic
from ..paths import data_root
from ..rundir import check_name
from .common import SPLITS

#: The environment the labellers run in.
LABEL_ENV = "label"
#: Universal potentials that ship their weights, and their output modalities (None: one).
LABELLERS: dict[str, tuple[str | None, ...]] = {
    "7net-0": (None,),
    "7net-mf-0": ("PBE", "R2SCAN"),
}
#: The functional each labeller/modality stands for (goes into the cards as ``functional``).
FUNCTIONAL = {("7net-0", None): "PBE", ("7net-mf-0", "PBE"): "PBE",
              ("7net-mf-0", "R2SCAN"): "r2SCAN"}
LABEL_RECORD = "label.json"


def check_labeller(labeller: str, modal: str | None) -> None:
    """A labeller and modality this module knows, else a one-line DatasetError."""
    if labeller not in LABELLERS:
        raise DatasetError(f"--labeller {labeller} unknown; use one of {', '.join(LABELLERS)}")
    modes = LABELLERS[labeller]
    if modal not in modes:
        shown = ", ".join(m for m in modes if m) or "none (omit --modal)"
        raise DatasetError(f"--modal {modal} does not fit {labeller}; its modalities: {shown}")


# ------------------------------------------------------------------ in the label environment
def _calculator(labeller: str, modal: str | None) -> Any:
    from sevenn.calculator import SevenNetCalculator

    kw = {"modal": modal} if modal else {}
    return SevenNetCalculator(model=labeller, device="cpu", **kw)


def _same_geometry(a: Any, b: Any) -> bool:
    return (a.get_chemical_symbols() == b.get_chemical_symbols()
            and np.allclose(a.positions, b.positions, atol=1e-6)
            and np.allclose(a.cell.array, b.cell.array, atol=1e-6))


def label_file(src: Path, dst: Path, labeller: str, modal: str | None,
               flush_every: int = 5) -> dict[str, Any]:
    """Label every frame of ``src`` (extxyz) into ``dst``: energy (eV), forces (eV/A), stress
    (eV/A^3, ASE sign). Resumes from ``dst.partial``; returns frames and seconds."""
    import torch
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read, write

    torch.set_num_threads(1)
    frames = read(src, index=":")
    partial = dst.with_name(dst.name + ".partial")
    done = read(partial, index=":") if partial.is_file() and partial.stat().st_size else []
    prefix = zip(done, frames[:len(done)], strict=True) if len(done) <= len(frames) else None
    if prefix is None or not all(_same_geometry(a, b) for a, b in prefix):
        partial.unlink()  # not a prefix of these frames: start again
        done = []
    calc = _calculator(labeller, modal)
    t0 = time.perf_counter()
    pending = []
    for at in frames[len(done):]:
        work = at.copy()
        work.calc = calc
        e = float(work.get_potential_energy())
        f = np.asarray(work.get_forces(), dtype=float)
        s = np.asarray(work.get_stress(voigt=True), dtype=float)
        out = at.copy()
        out.info = {k: v for k, v in at.info.items()
                    if k in ("temperature_K", "trajectory")}
        out.arrays = {k: v for k, v in at.arrays.items() if k in ("numbers", "positions")}
        out.calc = SinglePointCalculator(out, energy=e, forces=f, stress=s)
        pending.append(out)
        if len(pending) >= flush_every:
            write(partial, pending, format="extxyz", append=True)
            pending = []
    if pending:
        write(partial, pending, format="extxyz", append=True)
    partial.replace(dst)
    return {"frames": len(frames), "resumed_after": len(done),
            "seconds": round(time.perf_counter() - t0, 1)}


#: Lattice strains of the energy-volume curve (fractions of the experimental a).
EOS_STRAINS = (-0.04, -0.02, 0.0, 0.02, 0.04, 0.06)


def energy_volume(labeller: str, modal: str | None, strains=EOS_STRAINS,
                  fmax: float = 0.05) -> dict[str, Any]:
    """Energy-volume curve of the ordered 52-atom cell by the labeller: at each lattice
    parameter a = 9.859 A x (1 + strain) the atoms are relaxed at fixed cell (BFGS to ``fmax``
    eV/A, at most 100 steps); a Birch-Murnaghan fit gives the volume, lattice parameter and
    bulk modulus the labeller prefers. Energies in eV/atom, volumes in A^3, B in GPa."""
    import torch
    from ase.eos import EquationOfState
    from ase.optimize import BFGS
    from ase.units import GPa

    from ..structure import A_EXPERIMENT, build_lpsc

    torch.set_num_threads(1)
    calc = _calculator(labeller, modal)
    vols, energies = [], []
    for strain in strains:
        at = build_lpsc(A_EXPERIMENT * (1.0 + strain))
        at.calc = calc
        BFGS(at, logfile=None).run(fmax=fmax, steps=100)
        vols.append(float(at.get_volume()))
        energies.append(float(at.get_potential_energy()))
    eos = EquationOfState(vols, energies, eos="birchmurnaghan")
    v0, e0, b = eos.fit()
    n = len(build_lpsc())
    return {"labeller": labeller, "modal": modal, "strains": list(strains),
            "volume_A3": vols, "energy_eV_atom": [e / n for e in energies],
            "V0_A3": float(v0), "a0_A": float(v0 ** (1.0 / 3.0)), "B_GPa": float(b / GPa),
            "E0_eV_atom": float(e0 / n)}


def main(argv: list[str] | None = None) -> int:
    """``python -m lpsc_lmp.training.label label SRC.extxyz DST.extxyz LABELLER [MODAL]`` |
    ``eos LABELLER [MODAL]`` (JSON)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) in (4, 5) and args[0] == "label":
        modal = args[4] if len(args) == 5 else None
        return json_main(lambda: label_file(Path(args[1]), Path(args[2]), args[3], modal))
    if len(args) in (2, 3) and args[0] == "eos":
        return json_main(lambda: energy_volume(args[1], args[2] if len(args) == 3 else None))
    print("usage: python -m lpsc_lmp.training.label label SRC DST LABELLER [MODAL] | "
          "eos LABELLER [MODAL]", file=sys.stderr)
    return 2


# ------------------------------------------------------------------ the command
def label_dataset(source: str, name: str, labeller: str, modal: str | None = None,
                  root: Path | None = None, force: bool = False, echo=print) -> Path:
    """Relabel every frame of dataset ``source`` with ``labeller``/``modal`` into dataset
    ``name`` (same frames, same split). Returns the new dataset folder."""
    check_labeller(labeller, modal)
    base = root or data_root()
    src = base / check_name(source, "dataset name")
    dst = base / check_name(name, "--name")
    missing = [s for s in SPLITS if not (src / f"{s}.extxyz").is_file()]
    if missing:
        raise DatasetError(f"{src} lacks {', '.join(m + '.extxyz' for m in missing)}; split it "
                           f"first (`lpsc-lmp data split {source} --test N`)")
    if dst.resolve() == src.resolve():
        raise DatasetError("--name must differ from the source dataset")
    record_path = dst / LABEL_RECORD
    if record_path.is_file() and not force:
        raise DatasetError(f"dataset {dst} is already labelled; pass --force to relabel it")
    dst.mkdir(parents=True, exist_ok=True)
    stats = {}
    for split in SPLITS:
        echo(f"labelling {src / split}.extxyz with {labeller}"
             + (f" ({modal})" if modal else "") + " ...")
        try:
            stats[split] = run_in_env(LABEL_ENV, "lpsc_lmp.training.label",
                                      ["label", str(src / f"{split}.extxyz"),
                                       str(dst / f"{split}.extxyz"), labeller]
                                      + ([modal] if modal else []))
        except EnvironmentFailure as exc:
            raise DatasetError(f"labelling with {labeller} failed: {exc}") from None
        echo(f"  {stats[split]['frames']} frames in {stats[split]['seconds']:.0f} s"
             + (f" (resumed after {stats[split]['resumed_after']})"
                if stats[split]["resumed_after"] else ""))
    record = {
        "name": name, "source_dataset": source,
        "labeller": labeller, "modal": modal, "functional": FUNCTIONAL[(labeller, modal)],
        "versions": env_versions(LABEL_ENV, ["sevenn", "torch", "ase"]),
        "source_sha256": {s: sha256_file(src / f"{s}.extxyz") for s in SPLITS},
        "sha256": {s: sha256_file(dst / f"{s}.extxyz") for s in SPLITS},
        "frames": {s: stats[s]["frames"] for s in SPLITS},
        "seconds": {s: stats[s]["seconds"] for s in SPLITS},
        "units": {"energy": "eV", "forces": "eV/A", "stress": "eV/A^3 (ASE sign: -virial/V)"},
        "labelled": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": f"the split of {source} (same frames, same order)",
    }
    if (src / "split.json").is_file():
        shutil.copyfile(src / "split.json", dst / "source_split.json")
    write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")
    echo(f"{dst}: {sum(record['frames'].values())} frames labelled ({record['functional']}, "
         f"{labeller}{' ' + modal if modal else ''}) -> {LABEL_RECORD}")
    return dst


if __name__ == "__main__":
    sys.exit(main())
