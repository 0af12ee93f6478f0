"""The run directory format (``docs/run-format.md``, version 1): names and states.

An ensemble lives in ``<runs>/<model>/T<T>K[-<tag>]/`` with ``ensemble.json`` (its settings and
provenance) and one folder per seed, ``seeds/seed_NNNNNN/``, holding ``in.lammps``,
``result.npz`` and ``manifest.json``. This module is the one place that knows these names and
decides what state a seed is in; it reads, and writes nothing.

A seed counts as done only when ``manifest.json`` says ``status == "done"`` *and* the sha256 of
``result.npz`` matches ``manifest["result_sha256"]``. Everything else is counted, never dropped
silently: failed seeds (with reasons), seeds without a manifest (interrupted or running) and
seeds whose result is missing or does not match its checksum (corrupt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AnalysisError, InputError
from .files import read_json, sha256_file

#: The run format this code writes and reads.
RUN_FORMAT = 1
ENSEMBLE_FILE = "ensemble.json"
MANIFEST = "manifest.json"
RESULT = "result.npz"
SEEDS = "seeds"
#: Job files (one per worker process) and worker logs of a running ensemble.
JOBS = "jobs"
#: Characters allowed in model names and tags (folder names under ``runs/``).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")



def check_name(value: str, what: str) -> str:
    """``value`` if it is a plain folder name (:data:`NAME_RE`), else a one-line InputError:
    model names, tags and dataset names become folders, and must not escape them."""
    if not NAME_RE.fullmatch(value or ""):
        raise InputError(f"{what} {value!r} must be a plain name of letters, digits, '.', '_', "
                         "'+' and '-' (not starting with '.', '+' or '-')")
    return value


_SEED_RE = re.compile(r"^seed_(\d+)$")
_ENS_RE = re.compile(r"^T(\d+(?:\.\d+)?)K(?:-(.+))?$")


def ensemble_dirname(temperature_K: float, tag: str | None = None) -> str:
    """``T700K`` or ``T700K-<tag>`` (temperature in K, shortest form)."""
    return f"T{temperature_K:g}K" + (f"-{tag}" if tag else "")


def parse_ensemble_dirname(name: str) -> tuple[float, str | None] | None:
    """``"T700K"`` -> ``(700.0, None)``, ``"T700K-long"`` -> ``(700.0, "long")``, else None."""
    m = _ENS_RE.match(name)
    if not m:
        return None
    return float(m.group(1)), m.group(2)


def seed_dir(ensemble_dir: Path, seed: int) -> Path:
    """``<ensemble>/seeds/seed_NNNNNN``."""
    return Path(ensemble_dir) / SEEDS / f"seed_{seed:06d}"


def seed_number(path: Path) -> int | None:
    """The seed number of a seed folder, None for anything else."""
    m = _SEED_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def seed_dirs(ensemble_dir: Path) -> dict[int, Path]:
    """Every seed folder of an ensemble, by seed number."""
    base = Path(ensemble_dir) / SEEDS
    if not base.is_dir():
        return {}
    out = {}
    for d in sorted(base.iterdir()):
        num = seed_number(d)
        if num is not None and d.is_dir():
            out[num] = d
    return out


def read_manifest(sdir: Path) -> dict[str, Any] | None:
    """A seed's manifest, None when it has none (or it cannot be read)."""
    m = read_json(Path(sdir) / MANIFEST)
    return m if isinstance(m, dict) else None


def read_ensemble_info(ensemble_dir: Path) -> dict[str, Any]:
    """``ensemble.json`` of an ensemble, checked for the run format."""
    p = Path(ensemble_dir) / ENSEMBLE_FILE
    if not p.is_file():
        raise AnalysisError(f"{p} not found; is {ensemble_dir} an ensemble directory "
                            "(runs/<model>/T<T>K)?")
    meta = read_json(p)
    if not isinstance(meta, dict):
        raise AnalysisError(f"{p} is not readable JSON; restore it or rerun the ensemble "
                            "command (it rebuilds it)")
    if meta.get("format") != RUN_FORMAT:
        raise AnalysisError(f"{p}: run format {meta.get('format')!r} is not supported "
                            f"(expected {RUN_FORMAT})")
    return meta


#: What made seeds comparable before fingerprints (runs of older versions), in ensemble.json and
#: in each manifest.
LEGACY_PHYSICS_KEYS = ("model", "route", "model_sha256", "temperature_K", "time_ps",
                       "timestep_fs", "supercell", "structure_sha256", "thermostat", "tdamp_fs",
                       "msd_every_steps", "pos_every_steps", "template_sha256")


def manifest_mismatch(info: dict[str, Any], manifest: dict[str, Any]) -> str | None:
    """Why a seed's manifest does not belong to the ensemble of ``info`` (ensemble.json),
    None when it does: other physics fingerprint, or for runs made before fingerprints, other
    settings. A failed manifest recorded by the orchestrator carries no physics and never
    mismatches (the seed is rerun with the ensemble's settings)."""
    fp = (info.get("fingerprint") or {}).get("sha256")
    if fp and manifest.get("fingerprint"):
        if manifest["fingerprint"] != fp:
            return "run with other physics (fingerprint differs from ensemble.json)"
        return None
    keys = [k for k in LEGACY_PHYSICS_KEYS if k in manifest and k in info]
    diff = [k for k in keys if manifest[k] != info[k]]
    if diff:
        return f"run with other settings ({', '.join(diff[:3])} differ from ensemble.json)"
    return None


def batch_share(manifest: dict[str, Any]) -> int:
    """Seeds that share a seed manifest's ``wall_s``: its lock-step batch (``batch_size``, each
    seed of a batch records the whole batch's wall time), else 1."""
    return max(1, int(manifest.get("batch_size") or 1))


def classify_seed(sdir: Path, verify: bool = True) -> tuple[str, str | None]:
    """State of one seed folder: ``("done", None)``, ``("failed", reason)``,
    ``("missing", None)`` (no manifest: never finished) or ``("corrupt", reason)``."""
    man_path = Path(sdir) / MANIFEST
    if not man_path.is_file():
        return "missing", None
    man = read_manifest(sdir)
    if man is None:
        return "corrupt", "unreadable manifest"
    status = man.get("status")
    if status == "failed":
        return "failed", str(man.get("reason", "no reason given"))
    if status != "done":
        return "corrupt", f"unknown status {status!r}"
    npz = Path(sdir) / RESULT
    if not npz.is_file():
        return "corrupt", "manifest says done but result.npz is missing"
    if verify:
        expected = man.get("result_sha256")
        if not expected:
            return "corrupt", "manifest has no result_sha256"
        if sha256_file(npz) != expected:
            return "corrupt", "result.npz sha256 does not match the manifest"
    return "done", None


def seed_state(sdir: Path) -> str:
    """``done``, ``failed`` or ``todo`` (never finished, interrupted or corrupted)."""
    state, _ = classify_seed(sdir)
    return state if state in ("done", "failed") else "todo"


@dataclass(frozen=True)
class SeedStatus:
    """Classification of the seed folders of one ensemble (seed numbers, sorted).

    ``missing`` holds seeds with a folder but no manifest, and, when the number of seeds asked
    for is known, every seed number up to it that has no folder at all (never started).
    """

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
            f"(not finished), {len(self.corrupt)} corrupt"
        )


def scan_seeds(ensemble_dir: Path, verify: bool = True, expected: int | None = None
               ) -> tuple[SeedStatus, dict[int, Path]]:
    """Classify every seed folder; return the status and the done seeds' ``result.npz`` paths.

    ``expected``: the number of seeds asked for (seeds 1..expected); those without a folder
    count as missing.
    """
    found: dict[str, dict[int, str | None]] = {"done": {}, "failed": {}, "missing": {},
                                               "corrupt": {}}
    dirs = seed_dirs(ensemble_dir)
    for num, d in dirs.items():
        state, reason = classify_seed(d, verify)
        found[state][num] = reason
    for num in range(1, (expected or 0) + 1):
        if num not in dirs:
            found["missing"][num] = None
    status = SeedStatus(
        tuple(sorted(found["done"])), {k: str(v) for k, v in sorted(found["failed"].items())},
        tuple(sorted(found["missing"])), {k: str(v) for k, v in sorted(found["corrupt"].items())},
    )
    return status, {num: dirs[num] / RESULT for num in status.done}
