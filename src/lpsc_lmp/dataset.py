"""Labelled datasets: import reference calculations into ``data/<name>/`` and split them.

A dataset folder holds ``frames.extxyz`` (every imported frame: energy in eV, forces in eV/A,
stress in eV/A^3 with ASE's sign convention, i.e. stress = -virial / volume), ``import.json``
(sources, formats, type map, frames read / skipped and why), and after :func:`split_dataset`
``split.json`` plus ``train.extxyz`` and ``test.extxyz``. Every file is written atomically
(``<file>.tmp`` then rename).

Readers: dpdata for ABACUS (``abacus/scf``, ``abacus/md``, ``abacus/relax``), VASP
(``vasp/outcar``, ``vasp/xml``) and DeePMD npy (``deepmd/npy``); ASE for ``extxyz``.

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

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from .paths import project_root
from .structure import DEFAULT_TYPE_MAP

FORMATS = ("auto", "abacus/scf", "abacus/md", "abacus/relax", "extxyz", "vasp/outcar",
           "vasp/xml", "deepmd/npy")
SKIP_REASONS = ("unconverged", "no_forces", "no_energy")


class DatasetError(ValueError):
    """A dataset operation that must not go ahead; the message names the fix."""


def data_root() -> Path:
    """Where datasets live: ``LPSC_LMP_DATA`` or ``<project>/data``."""
    return Path(os.environ.get("LPSC_LMP_DATA", project_root() / "data"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _write_atomic_frames(path: Path, frames: list[Atoms]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp, frames, format="extxyz")
    tmp.replace(path)


def parse_type_map(text: str | list[str] | tuple[str, ...]) -> list[str]:
    tm = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    tm = [s for s in tm if s]
    if not tm or len(set(tm)) != len(tm):
        raise DatasetError(f"type map {text!r} is empty or repeats an element; "
                           "pass e.g. --type-map Li,P,S,Cl")
    return tm


# ------------------------------------------------------------------------------ reading
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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"reading {src} as {fmt} failed ({first}); check the files or pass "
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


# ------------------------------------------------------------------------------ import
def dataset_dir(name: str, root: Path | None = None) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise DatasetError(f"dataset name {name!r} is not a plain folder name; use letters, "
                           "digits, '.', '_' or '-'")
    return (root or data_root()) / name


def import_dataset(sources: list[Path], name: str, fmt: str = "auto",
                   type_map: list[str] | None = None, root: Path | None = None,
                   append: bool = False, force: bool = False, echo=print) -> dict[str, Any]:
    """Import ``sources`` into ``<root>/<name>/frames.extxyz``; return the import record."""
    tm = list(type_map or DEFAULT_TYPE_MAP)
    out = dataset_dir(name, root)
    frames_path, record_path = out / "frames.extxyz", out / "import.json"
    if append and force:
        raise DatasetError("--append and --force contradict each other; pass one")
    existing: list[Atoms] = []
    old: dict[str, Any] | None = None
    if out.exists() and any(out.iterdir()):
        if not (append or force):
            raise DatasetError(f"dataset {out} exists; pass --append to add frames or --force "
                               "to replace it")
        if append:
            if not frames_path.is_file():
                raise DatasetError(f"{out} has no frames.extxyz to append to (not made by "
                                   "`data import`); import under another --name")
            old = json.loads(record_path.read_text()) if record_path.is_file() else None
            if old and old.get("type_map") != tm:
                raise DatasetError(f"{out} was imported with type map {old.get('type_map')}; "
                                   f"pass --type-map {','.join(old.get('type_map'))}")
            existing = read(frames_path, index=":")
    results = []
    for src in sources:
        r = read_source(Path(src), fmt, tm)
        check_elements(r.frames, tm, str(src))
        skipped = ", ".join(f"{k} {v}" for k, v in r.skipped.items() if v) or "none"
        echo(f"{src} [{r.format}]: {r.read} frames read, {len(r.frames)} kept, skipped: "
             f"{skipped}")
        for n in r.notes:
            echo(f"  note: {n}")
        results.append(r)
    new = [at for r in results for at in r.frames]
    if not new:
        raise DatasetError("no usable frame in the sources (see the skip counts above); pass "
                           "labelled calculations with energies and forces")
    out.mkdir(parents=True, exist_ok=True)
    frames = existing + new
    _write_atomic_frames(frames_path, frames)
    if force:
        for stale in ("split.json", "train.extxyz", "test.extxyz"):
            if (out / stale).exists():
                (out / stale).unlink()
                echo(f"removed {out / stale} (it split the replaced frames)")
    sources_rec = (old or {}).get("sources", []) + [r.summary() for r in results]
    total_skip = {k: sum(s["skipped"][k] for s in sources_rec) for k in SKIP_REASONS}
    record = {
        "name": name,
        "type_map": tm,
        "units": {"energy": "eV", "forces": "eV/A", "stress": "eV/A^3 (ASE sign: -virial/V)"},
        "sources": sources_rec,
        "frames": len(frames),
        "frames_read": sum(s["frames_read"] for s in sources_rec),
        "skipped": total_skip,
        "elements": sorted({s for at in frames for s in at.get_chemical_symbols()}),
        "frames_sha256": sha256_file(frames_path),
    }
    _write_atomic_text(record_path, json.dumps(record, indent=2) + "\n")
    if append and (out / "split.json").is_file():
        echo(f"note: {out}/split.json splits the frames before this append; rerun "
             "`lpsc-lmp data split` with --force to include the new frames")
    echo(f"{frames_path}: {len(frames)} frames ({len(new)} new)")
    return record


def read_import_record(name: str, root: Path | None = None) -> dict[str, Any] | None:
    p = dataset_dir(name, root) / "import.json"
    return json.loads(p.read_text()) if p.is_file() else None


# ------------------------------------------------------------------------------ split
def _n_test(test: float, n: int) -> int:
    if test <= 0:
        raise DatasetError(f"--test {test:g} must be positive (a count, or a fraction < 1)")
    if test < 1:
        k = int(round(test * n))
    elif float(test).is_integer():
        k = int(test)
    else:
        raise DatasetError(f"--test {test:g} is neither a count nor a fraction < 1; "
                           "pass e.g. --test 60 or --test 0.175")
    if not 1 <= k < n:
        raise DatasetError(f"--test {test:g} gives {k} test frames of {n}; leave at least one "
                           "frame on each side")
    return k


def split_indices(n: int, n_test: int, seed: int) -> list[int]:
    """Sorted indices of the test frames: the first ``n_test`` of a seeded permutation."""
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in perm[:n_test])


def split_dataset(name: str, test: float, seed: int = 0, root: Path | None = None,
                  force: bool = False, echo=print) -> dict[str, Any]:
    """Write split.json, train.extxyz and test.extxyz once; identical reruns change nothing."""
    out = dataset_dir(name, root)
    frames_path, split_path = out / "frames.extxyz", out / "split.json"
    if not frames_path.is_file():
        if (out / "train.extxyz").is_file():
            raise DatasetError(f"{out} has train/test.extxyz but no frames.extxyz: its split is "
                               "fixed where it was made; use it as it is")
        raise DatasetError(f"{frames_path} not found; run `lpsc-lmp data import ... --name "
                           f"{name}` first")
    sha = sha256_file(frames_path)
    frames = read(frames_path, index=":")
    n = len(frames)
    k = _n_test(test, n)
    wanted = {"seed": int(seed), "test_arg": test, "n_test": k, "n_frames": n,
              "frames_sha256": sha}
    if split_path.is_file():
        old = json.loads(split_path.read_text())
        same = all(old.get(key) == wanted[key]
                   for key in ("seed", "n_test", "n_frames", "frames_sha256"))
        if same and not force:
            ok = all((out / f).is_file() and sha256_file(out / f) == old["sha256"][f]
                     for f in ("train.extxyz", "test.extxyz"))
            if ok:
                echo(f"{split_path}: already split this way ({n - k} train, {k} test); "
                     "nothing to do")
                return old
            echo("train/test.extxyz missing or changed; rewriting them from split.json")
        elif not force:
            why = ("frames.extxyz changed since the split" if old.get("frames_sha256") != sha
                   else f"it was split with seed {old.get('seed')} and {old.get('n_test')} test "
                        "frames")
            raise DatasetError(f"{out} is already split differently ({why}); every model uses "
                               "that split: pass the same --test/--seed, or --force to resplit")
    test_idx = split_indices(n, k, seed)
    test_set = set(test_idx)
    _write_atomic_frames(out / "train.extxyz", [f for i, f in enumerate(frames)
                                                if i not in test_set])
    _write_atomic_frames(out / "test.extxyz", [frames[i] for i in test_idx])
    record = {**wanted, "n_train": n - k, "test_indices": test_idx,
              "method": "numpy.random.default_rng(seed).permutation(n_frames)[:n_test], sorted",
              "sha256": {f: sha256_file(out / f) for f in ("train.extxyz", "test.extxyz")}}
    _write_atomic_text(split_path, json.dumps(record, indent=2) + "\n")
    echo(f"{out}: {n - k} train, {k} test frames (seed {seed}) -> split.json")
    return record


def check_split_current(path: Path) -> None:
    """Refuse training on a split that no longer matches frames.extxyz / its own files."""
    split_path, frames_path = path / "split.json", path / "frames.extxyz"
    if not split_path.is_file():
        return
    rec = json.loads(split_path.read_text())
    if frames_path.is_file() and sha256_file(frames_path) != rec.get("frames_sha256"):
        raise DatasetError(f"{path}/frames.extxyz changed after the split; rerun `lpsc-lmp data "
                           "split` with --force")
    for f in ("train.extxyz", "test.extxyz"):
        if sha256_file(path / f) != rec.get("sha256", {}).get(f):
            raise DatasetError(f"{path / f} differs from split.json; rerun `lpsc-lmp data split` "
                               "with the same arguments to restore it")


def remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
