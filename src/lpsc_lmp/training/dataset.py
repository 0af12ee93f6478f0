"""Labelled datasets: import reference calculations into ``data/<name>/`` and split them.

A dataset folder holds ``frames.extxyz`` (every imported frame: energy in eV, forces in eV/A,
stress in eV/A^3 with ASE's sign convention, i.e. stress = -virial / volume), ``import.json``
(sources, formats, type map, frames read / skipped and why; readers in
:mod:`lpsc_lmp.training.readers`), and after :func:`split_dataset` ``split.json`` plus
``train.extxyz`` and ``test.extxyz``. Every file is written atomically (``<file>.tmp`` then
rename).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import read, write

from ..errors import DatasetError, InputError
from ..files import sha256_file, write_atomic, write_text_atomic
from ..paths import data_root
from ..rundir import check_name
from ..structure import DEFAULT_TYPE_MAP
from .readers import SKIP_REASONS, check_elements, read_source


def write_frames_atomic(path: Path, frames: list[Atoms]) -> None:
    """Write labelled frames as extxyz, atomically."""
    write_atomic(path, lambda tmp: write(tmp, frames, format="extxyz"))


def parse_type_map(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"Li,P,S,Cl"`` (or a list) as a list of element symbols, checked."""
    tm = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    tm = [s for s in tm if s]
    if not tm or len(set(tm)) != len(tm):
        raise DatasetError(f"type map {text!r} is empty or repeats an element; "
                           "pass e.g. --type-map Li,P,S,Cl")
    return tm


def dataset_dir(name: str, root: Path | None = None) -> Path:
    try:
        check_name(name, "dataset name")
    except InputError as exc:
        raise DatasetError(str(exc)) from None
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
    write_frames_atomic(frames_path, frames)
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
    write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")
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
    write_frames_atomic(out / "train.extxyz", [f for i, f in enumerate(frames)
                                                if i not in test_set])
    write_frames_atomic(out / "test.extxyz", [frames[i] for i in test_idx])
    record = {**wanted, "n_train": n - k, "test_indices": test_idx,
              "method": "numpy.random.default_rng(seed).permutation(n_frames)[:n_test], sorted",
              "sha256": {f: sha256_file(out / f) for f in ("train.extxyz", "test.extxyz")}}
    write_text_atomic(split_path, json.dumps(record, indent=2) + "\n")
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
