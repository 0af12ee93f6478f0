"""Readers of labelled reference calculations: ABACUS, VASP and DeePMD npy through dpdata,
extxyz through ASE. Each source becomes ASE frames with a single-point calculator (energy eV,
forces eV/A, stress eV/A^3 with ASE's sign, i.e. -virial / volume), and every frame that is not
kept is counted by reason (:data:`SKIP_REASONS`).

Frames are skipped (and counted) when:

- ``unconverged``: the SCF did not converge. ABACUS SCF: dpdata returns no frame when the last
  ``running_scf.log`` message is "convergence has NOT been achieved"; we count that as one
  unconverged frame. ABACUS MD: dpdata drops dumped steps whose SCF did not converge and only
  warns, so we count them ourselves from ``running_md.log`` with dpdata's own rule (an energy line
  "final etot is" / "#TOTAL ENERGY#" or "!! convergence has not been achieved" per MD step, every
  ``md_dumpfreq``-th step is dumped). ABACUS relax: dpdata drops ionic steps whose SCF did not
  converge; we count the "convergence has NOT been achieved" messages of the relax log. Any
  reader: a frame whose energy is not finite is counted as unconverged. VASP
  (OUTCAR, vasprun.xml): dpdata drops ionic steps whose electronic loop used all NELM iterations;
  we count them as the difference between reading with and without dpdata's convergence check.
- ``no_forces``: the frame has no forces (e.g. ABACUS run without ``cal_force``).
- ``no_energy``: an extxyz frame without an energy.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read

from ..errors import DatasetError, first_line

FORMATS = ("auto", "abacus/scf", "abacus/md", "abacus/relax", "extxyz", "vasp/outcar",
           "vasp/xml", "deepmd/npy")
SKIP_REASONS = ("unconverged", "no_forces", "no_energy")


@dataclass
class SourceResult:
    """Frames read from one source and what was skipped."""

    source: str
    format: str
    frames: list[Atoms] = field(default_factory=list)
    read: int = 0
    skipped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "frames_read": self.read,
                "frames_kept": len(self.frames),
                "skipped": {k: int(self.skipped.get(k, 0)) for k in SKIP_REASONS},
                "notes": self.notes}


def _abacus_calculation(input_file: Path) -> str:
    for line in input_file.read_text(errors="replace").splitlines():
        parts = line.split("#")[0].split()
        if len(parts) >= 2 and parts[0].lower() == "calculation":
            return parts[1].lower()
    return "scf"


def detect_format(src: Path) -> str:
    """Guess the format of ``src``; DatasetError naming --format when it cannot."""
    name = src.name.lower()
    if src.is_dir():
        if (src / "INPUT").is_file():
            calc = _abacus_calculation(src / "INPUT")
            if calc == "md":
                return "abacus/md"
            if calc in ("relax", "cell-relax"):
                return "abacus/relax"
            return "abacus/scf"
        if (src / "type.raw").is_file() or any(src.rglob("type.raw")):
            return "deepmd/npy"
        if (src / "OUTCAR").is_file():
            return "vasp/outcar"
        if (src / "vasprun.xml").is_file():
            return "vasp/xml"
    elif src.is_file():
        if name.startswith("input"):
            calc = _abacus_calculation(src)
            return {"md": "abacus/md", "relax": "abacus/relax",
                    "cell-relax": "abacus/relax"}.get(calc, "abacus/scf")
        if name.endswith((".extxyz", ".xyz")):
            return "extxyz"
        if name.startswith("outcar"):
            return "vasp/outcar"
        if name.endswith(".xml") and "vasprun" in name:
            return "vasp/xml"
    elif not src.exists():
        raise DatasetError(f"{src} does not exist; pass an existing file or folder")
    raise DatasetError(f"cannot tell the format of {src}; pass --format (one of "
                       f"{', '.join(FORMATS[1:])})")


def _abacus_dir(src: Path, stack: list[tempfile.TemporaryDirectory]) -> Path:
    """An ABACUS calculation folder with ``INPUT``. ``src`` may be the folder or an input file
    of another name (e.g. ``INPUT.ok``): then a temporary folder links the siblings and that
    file as ``INPUT`` (dpdata reads ``<dir>/INPUT`` only)."""
    if src.is_dir():
        if not (src / "INPUT").is_file():
            raise DatasetError(f"{src} has no INPUT file; pass the ABACUS calculation folder or "
                               "its INPUT file")
        return src
    tmp = tempfile.TemporaryDirectory(prefix="lpsc-abacus-")
    stack.append(tmp)
    d = Path(tmp.name)
    for p in src.resolve().parent.iterdir():
        if p.name != "INPUT":
            (d / p.name).symlink_to(p)
    (d / "INPUT").symlink_to(src.resolve())
    return d


def _abacus_md_unconverged(d: Path) -> int:
    """Dumped MD steps whose SCF did not converge (dpdata drops them with a warning only)."""
    inlines = (d / "INPUT").read_text(errors="replace").splitlines()
    suffix, freq = "ABACUS", 1
    for line in inlines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "suffix":
            suffix = parts[1]
        if len(parts) >= 2 and parts[0] == "md_dumpfreq":
            freq = max(int(parts[1]), 1)
    log = d / f"OUT.{suffix}" / "running_md.log"
    if not log.is_file():
        return 0
    n, bad = 0, 0
    for line in log.read_text(errors="replace").splitlines():
        if "final etot is" in line or "#TOTAL ENERGY#" in line:
            n += 1
        elif "!! convergence has not been achieved" in line:
            if n % freq == 0:
                bad += 1
            n += 1
    return bad


def _abacus_relax_unconverged(d: Path) -> int:
    """Ionic steps of an ABACUS relax whose SCF did not converge: dpdata 1.1 drops them (their
    energy is NaN) without a count; ABACUS prints "convergence has NOT been achieved" once for
    each in ``running_<calculation>.log``."""
    from dpdata.formats.abacus.relax import get_log_file

    inlines = (d / "INPUT").read_text(errors="replace").split("\n")
    log = Path(get_log_file(str(d), inlines))
    if not log.is_file():
        raise DatasetError(f"{log} not found; pass a finished ABACUS relax calculation")
    text = log.read_text(errors="replace").lower()
    return text.count("convergence has not been achieved")


def _abacus_scf_unconverged(d: Path) -> bool:
    """True when the ABACUS SCF log reports no convergence (the reason dpdata returns nothing)."""
    from dpdata.formats.abacus.scf import get_energy, get_path_out

    inlines = (d / "INPUT").read_text(errors="replace").split("\n")
    log = Path(get_path_out(str(d), inlines))
    if not log.is_file():
        raise DatasetError(f"{log} not found; pass a finished ABACUS calculation")
    _, converged = get_energy(log.read_text(errors="replace").split("\n"))
    return not converged


def _frames_from_dpdata(system: Any, res: SourceResult) -> None:
    """Convert a dpdata LabeledSystem into ASE frames, skipping unlabelled ones."""
    data = system.data
    names = list(data["atom_names"])
    symbols = [names[t] for t in data["atom_types"]]
    nf = len(system)
    energies = np.asarray(data.get("energies", np.empty(0))).reshape(-1)
    forces = np.asarray(data.get("forces", np.empty(0)))
    virials = data.get("virials")
    has_forces = forces.size > 0 and forces.shape[0] == nf
    res.read += nf
    for i in range(nf):
        if not has_forces:
            res.skipped["no_forces"] += 1
            continue
        if i >= energies.size or not math.isfinite(float(energies[i])):
            res.skipped["unconverged"] += 1
            continue
        cell = np.asarray(data["cells"][i]).reshape(3, 3)
        at = Atoms(symbols=symbols, positions=np.asarray(data["coords"][i]).reshape(-1, 3),
                   cell=cell, pbc=not data.get("nopbc", False))
        results: dict[str, Any] = {"energy": float(energies[i]),
                                   "forces": forces[i].reshape(-1, 3).copy()}
        if virials is not None and np.asarray(virials).size and at.pbc.all():
            vir = np.asarray(virials[i]).reshape(3, 3)
            s = -vir / at.get_volume()
            results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        at.calc = SinglePointCalculator(at, **results)
        res.frames.append(at)


def _read_extxyz(src: Path, res: SourceResult) -> None:
    for at in read(src, index=":", format="extxyz"):
        res.read += 1
        calc = at.calc
        results = dict(calc.results) if calc is not None else {}
        if "forces" not in results:
            res.skipped["no_forces"] += 1
            continue
        if "energy" not in results and "free_energy" not in results:
            res.skipped["no_energy"] += 1
            continue
        e = float(results.get("energy", results.get("free_energy")))
        if not math.isfinite(e):
            res.skipped["unconverged"] += 1
            continue
        keep = {"energy": e, "forces": np.asarray(results["forces"])}
        if "stress" in results:
            s = np.asarray(results["stress"])
            keep["stress"] = s if s.shape == (6,) else s.reshape(3, 3)[
                [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        clean = Atoms(symbols=at.get_chemical_symbols(), positions=at.get_positions(),
                      cell=at.cell, pbc=at.pbc)
        clean.calc = SinglePointCalculator(clean, **keep)
        res.frames.append(clean)


def _deepmd_systems(src: Path) -> list[Path]:
    if (src / "type.raw").is_file():
        return [src]
    found = sorted(p.parent for p in src.rglob("type.raw"))
    if not found:
        raise DatasetError(f"{src} holds no DeePMD system (type.raw); pass a deepmd/npy folder")
    return found


def read_source(src: Path, fmt: str, type_map: list[str]) -> SourceResult:
    """Read one source; frames keep their elements (checked later against the type map)."""
    import dpdata

    src = Path(src)
    if not src.exists():
        raise DatasetError(f"{src} does not exist; pass an existing file or folder")
    if fmt == "auto":
        fmt = detect_format(src)
    if fmt not in FORMATS:
        raise DatasetError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    res = SourceResult(source=str(src), format=fmt)
    stack: list[tempfile.TemporaryDirectory] = []
    try:
        if fmt == "extxyz":
            _read_extxyz(src, res)
        elif fmt.startswith("abacus/"):
            d = _abacus_dir(src, stack)
            if fmt == "abacus/scf" and _abacus_scf_unconverged(d):
                res.read += 1
                res.skipped["unconverged"] += 1
                res.notes.append("SCF not converged (running_scf.log)")
            else:
                system = dpdata.LabeledSystem(str(d), fmt=fmt)
                if fmt in ("abacus/md", "abacus/relax"):
                    bad = (_abacus_md_unconverged(d) if fmt == "abacus/md"
                           else _abacus_relax_unconverged(d))
                    res.read += bad
                    res.skipped["unconverged"] += bad
                _frames_from_dpdata(system, res)
        elif fmt == "deepmd/npy":
            for sysdir in _deepmd_systems(src):
                if not (sysdir / "type_map.raw").is_file():
                    res.notes.append(f"{sysdir}: no type_map.raw; types taken as indices into "
                                     f"the type map {type_map}")
                    system = dpdata.LabeledSystem(str(sysdir), fmt=fmt, type_map=type_map)
                else:
                    system = dpdata.LabeledSystem(str(sysdir), fmt=fmt)
                _frames_from_dpdata(system, res)
        else:  # vasp/outcar, vasp/xml
            system = dpdata.LabeledSystem(str(src), fmt=fmt)
            with warnings.catch_warnings():  # dpdata warns again about the same steps
                warnings.simplefilter("ignore")
                every = len(dpdata.LabeledSystem(str(src), fmt=fmt, convergence_check=False))
            bad = every - len(system)
            res.read += bad
            res.skipped["unconverged"] += bad
            _frames_from_dpdata(system, res)
    except DatasetError:
        raise
    except Exception as exc:  # reader failures: one line naming the file and the fix
        raise DatasetError(f"reading {src} as {fmt} failed ({first_line(exc)}); check the files "
                           "or pass "
                           "the right --format") from exc
    finally:
        for t in stack:
            t.cleanup()
    return res


def check_elements(frames: list[Atoms], type_map: list[str], source: str) -> None:
    present = sorted({s for at in frames for s in at.get_chemical_symbols()})
    extra = [s for s in present if s not in type_map]
    if extra:
        raise DatasetError(f"{source} has elements {extra} outside the type map {type_map}; "
                           f"pass --type-map {','.join(type_map + extra)} (or drop those frames)")
