"""Read an ensemble directory in the run format (``docs/run-format.md``, version 1).

A seed counts as done only when ``manifest.json`` says ``status == "done"`` *and* the sha256 of
``result.npz`` matches ``manifest["result_sha256"]``. Everything else is counted, never dropped
silently: failed seeds (with reasons), seeds without a manifest (interrupted or running), seeds
whose result is missing or does not match its checksum (corrupt), and seeds whose arrays do not
match the others (inconsistent).

Units are those of ``result.npz``: A, ps, A^2.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .registry import sha256_file

__all__ = [
    "EnsembleData",
    "SeedStatus",
    "find_ensembles",
    "parse_ensemble_dirname",
    "read_ensemble",
    "scan_seeds",
    "sha256_file",
]

_SEED_RE = re.compile(r"^seed_(\d+)$")
_ENS_RE = re.compile(r"^T(\d+(?:\.\d+)?)K(?:-(.+))?$")
SUPPORTED_FORMAT = 1


def parse_ensemble_dirname(name: str) -> tuple[float, str | None] | None:
    """``"T700K"`` -> ``(700.0, None)``, ``"T700K-long"`` -> ``(700.0, "long")``, else None."""
    m = _ENS_RE.match(name)
    if not m:
        return None
    return float(m.group(1)), m.group(2)


@dataclass(frozen=True)
class SeedStatus:
    """Classification of the seed directories of one ensemble (seed numbers, sorted)."""

    done: tuple[int, ...]
    failed: dict[int, str]
    missing: tuple[int, ...]
    corrupt: dict[int, str]

    @property
    def n_done(self) -> int:
        return len(self.done)

    def summary(self) -> str:
        """One line: counts of done/failed/missing/corrupt seeds."""
        return (
            f"{len(self.done)} done, {len(self.failed)} failed, {len(self.missing)} missing "
            f"(no manifest), {len(self.corrupt)} corrupt"
        )


def batch_share(manifest: dict) -> int:
    """Seeds that share a seed manifest's ``wall_s``: its lock-step batch (``batch_size``, each
    seed of a batch records the whole batch's wall time), else 1."""
    return max(1, int(manifest.get("batch_size") or 1))


def _seed_number(seed_dir: Path) -> int | None:
    m = _SEED_RE.match(seed_dir.name)
    return int(m.group(1)) if m else None


def classify_seed(seed_dir: Path, verify: bool = True) -> tuple[str, str | None]:
    """State of one seed directory: ``("done", None)``, ``("failed", reason)``,
    ``("missing", None)`` (no manifest: never finished) or ``("corrupt", reason)``."""
    man_path = seed_dir / "manifest.json"
    if not man_path.is_file():
        return "missing", None
    try:
        man = json.loads(man_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return "corrupt", f"unreadable manifest: {exc}"
    status = man.get("status")
    if status == "failed":
        return "failed", str(man.get("reason", "no reason given"))
    if status != "done":
        return "corrupt", f"unknown status {status!r}"
    npz = seed_dir / "result.npz"
    if not npz.is_file():
        return "corrupt", "manifest says done but result.npz is missing"
    if verify:
        expected = man.get("result_sha256")
        if not expected:
            return "corrupt", "manifest has no result_sha256"
        if sha256_file(npz) != expected:
            return "corrupt", "result.npz sha256 does not match the manifest"
    return "done", None


def scan_seeds(ensemble_dir: Path, verify: bool = True) -> tuple[SeedStatus, dict[int, Path]]:
    """Classify every ``seeds/seed_NNNNNN`` directory; return status and done seeds' npz paths."""
    seeds_dir = Path(ensemble_dir) / "seeds"
    found: dict[str, dict[int, str | None]] = {"done": {}, "failed": {}, "missing": {},
                                               "corrupt": {}}
    if not seeds_dir.is_dir():
        return SeedStatus((), {}, (), {}), {}
    dirs: dict[int, Path] = {}
    for d in sorted(seeds_dir.iterdir()):
        num = _seed_number(d)
        if num is None or not d.is_dir():
            continue
        state, reason = classify_seed(d, verify)
        found[state][num] = reason
        dirs[num] = d
    status_obj = SeedStatus(
        tuple(sorted(found["done"])), {k: str(v) for k, v in sorted(found["failed"].items())},
        tuple(sorted(found["missing"])), {k: str(v) for k, v in sorted(found["corrupt"].items())},
    )
    paths = {num: dirs[num] / "result.npz" for num in status_obj.done}
    return status_obj, paths


@dataclass(frozen=True)
class EnsembleData:
    """Arrays of the done seeds of one ensemble, sorted by seed number.

    Attributes:
        path: ensemble directory.
        meta: contents of ``ensemble.json``.
        seeds: ``(n_done,)`` seed numbers.
        status: :class:`SeedStatus` of all seed directories.
        t_msd: ``(n_msd,)`` ps.
        msd: ``(n_done, n_msd, 4)`` Li MSD from t = 0 (x, y, z, total), A^2.
        t_pos: ``(n_pos,)`` ps, or None when positions were not loaded.
        li_unwrapped: ``(n_done, n_pos, n_li, 3)`` float32 A, or None.
        framework_com: ``(n_done, n_pos, 3)`` A, or None.
        cell: ``(3, 3)`` A (from the first done seed), or None.
        excluded: seeds dropped because their arrays did not match the others (seed -> reason).
    """

    path: Path
    meta: dict
    seeds: np.ndarray
    status: SeedStatus
    t_msd: np.ndarray = field(repr=False)
    msd: np.ndarray = field(repr=False)
    t_pos: np.ndarray | None = field(default=None, repr=False)
    li_unwrapped: np.ndarray | None = field(default=None, repr=False)
    framework_com: np.ndarray | None = field(default=None, repr=False)
    cell: np.ndarray | None = field(default=None, repr=False)
    excluded: dict[int, str] = field(default_factory=dict)

    @property
    def n_done(self) -> int:
        return int(self.seeds.size)

    @property
    def msd_total(self) -> np.ndarray:
        """``(n_done, n_msd)`` total MSD, A^2."""
        return self.msd[:, :, 3]

    @property
    def temperature_K(self) -> float:
        return float(self.meta["temperature_K"])

    def counts(self) -> dict[str, int]:
        """Seed counts for reports (never silently dropping anything)."""
        return {
            "done": self.n_done,
            "failed": len(self.status.failed),
            "missing": len(self.status.missing),
            "corrupt": len(self.status.corrupt),
            "excluded": len(self.excluded),
            "expected": int(self.meta.get("n_seeds", 0) or 0),
        }


def read_meta(ensemble_dir: Path) -> dict:
    """Load and check ``ensemble.json``."""
    p = Path(ensemble_dir) / "ensemble.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found; is {ensemble_dir} an ensemble directory?")
    meta = json.loads(p.read_text())
    fmt = meta.get("format")
    if fmt != SUPPORTED_FORMAT:
        raise ValueError(f"{p}: run format {fmt!r} is not supported (expected {SUPPORTED_FORMAT})")
    return meta


def read_ensemble(
    ensemble_dir: str | Path, load_positions: bool = True, verify: bool = True
) -> EnsembleData:
    """Read every done seed of an ensemble.

    Args:
        ensemble_dir: ``runs/<model>/T<T>K[-tag]``.
        load_positions: also load ``li_unwrapped``/``framework_com`` (about 200 kB per seed).
        verify: check each ``result.npz`` against its manifest sha256.

    Raises:
        FileNotFoundError: no ``ensemble.json``.
        ValueError: unsupported format, or no done seed at all (message gives the counts).
    """
    path = Path(ensemble_dir)
    meta = read_meta(path)
    status, paths = scan_seeds(path, verify=verify)
    if not paths:
        raise ValueError(f"{path}: no finished seeds ({status.summary()}); run the ensemble first")
    t_msd_ref: np.ndarray | None = None
    t_pos_ref: np.ndarray | None = None
    cell = None
    seeds, msds, lis, coms = [], [], [], []
    excluded: dict[int, str] = {}
    for num in status.done:
        with np.load(paths[num]) as z:
            t_msd = np.asarray(z["t_msd"], dtype=np.float64)
            msd = np.asarray(z["msd"], dtype=np.float64)
            if t_msd_ref is None:
                t_msd_ref = t_msd
            if t_msd.shape != t_msd_ref.shape or not np.allclose(t_msd, t_msd_ref):
                excluded[num] = f"t_msd has {t_msd.size} samples, others {t_msd_ref.size}"
                continue
            if msd.shape != (t_msd.size, 4):
                excluded[num] = f"msd has shape {msd.shape}, expected ({t_msd.size}, 4)"
                continue
            if load_positions:
                t_pos = np.asarray(z["t_pos"], dtype=np.float64)
                if t_pos_ref is None:
                    t_pos_ref = t_pos
                    cell = np.asarray(z["cell"], dtype=np.float64)
                if t_pos.shape != t_pos_ref.shape or not np.allclose(t_pos, t_pos_ref):
                    excluded[num] = f"t_pos has {t_pos.size} frames, others {t_pos_ref.size}"
                    continue
                li = np.asarray(z["li_unwrapped"])
                if lis and li.shape != lis[0].shape:
                    excluded[num] = f"li_unwrapped has shape {li.shape}, others {lis[0].shape}"
                    continue
                lis.append(li)
                coms.append(np.asarray(z["framework_com"], dtype=np.float64))
            seeds.append(num)
            msds.append(msd)
    assert t_msd_ref is not None
    return EnsembleData(
        path=path,
        meta=meta,
        seeds=np.array(seeds, dtype=int),
        status=status,
        t_msd=t_msd_ref,
        msd=np.stack(msds),
        t_pos=t_pos_ref,
        li_unwrapped=np.stack(lis) if lis else None,
        framework_com=np.stack(coms) if coms else None,
        cell=cell,
        excluded=excluded,
    )


def find_ensembles(
    runs_dir: str | Path, model: str, tag: str | None = None
) -> list[tuple[float, Path]]:
    """``[(T_K, path), ...]`` of ``runs/<model>/T<T>K[-tag]`` with an ``ensemble.json``, by T.

    Only ensembles whose tag equals ``tag`` are returned (``None``: untagged ones).
    """
    mdir = Path(runs_dir) / model
    out: list[tuple[float, Path]] = []
    if not mdir.is_dir():
        return out
    for d in mdir.iterdir():
        parsed = parse_ensemble_dirname(d.name)
        if parsed is None or parsed[1] != tag or not (d / "ensemble.json").is_file():
            continue
        out.append((parsed[0], d))
    return sorted(out)
