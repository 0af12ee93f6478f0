"""Seed folders of the run format: run seeds and record what they produced.

:func:`run_seed` runs one seed (:func:`lpsc_lmp.md.runner.run_md`), :func:`run_batch` the seeds
of one lock-step batch (:func:`lpsc_lmp.md.lockstep.run_md_batch`), each into
``<ensemble>/seeds/seed_NNNNNN/`` (docs/run-format.md): ``in.lammps``, then on success
``result.npz`` written atomically and ``manifest.json`` with its sha256 (status ``done``), on
failure the manifest alone (status ``failed`` with the reason). A seed folder with a ``done``
manifest is therefore always complete; a folder without a manifest is an interrupted attempt and
is started again from nothing.

Every manifest starts with the same header (:func:`manifest_header`): seed, start time, host,
Python and package versions, thread settings, LAMMPS switches, the sha256 of the deck, and the
ensemble's settings and provenance handed over in the job file.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..devices import default_device
from ..environments import package_versions
from ..errors import SeedFailed
from ..files import sha256_file, sha256_text, write_atomic, write_json_atomic
from ..models.batch_eval import BatchedEvaluator
from ..models.calculators import device_model_file
from ..models.routes import CALLBACK_ROUTE, check_batchable
from ..rundir import MANIFEST, RESULT, RUN_FORMAT, seed_dir
from .lockstep import run_md_batch
from .runner import run_md

#: Packages whose versions every manifest records (those installed in the worker's env).
TRACKED_PACKAGES = ("lpsc-lmp", "deepmd-kit", "torch", "lammps", "numpy", "ase", "jinja2",
                    "nequip", "nequip-allegro", "mace-torch", "e3nn", "sevenn")
THREAD_VARS = ("OMP_NUM_THREADS", "DP_INTRA_OP_PARALLELISM_THREADS",
               "DP_INTER_OP_PARALLELISM_THREADS")


def manifest_header(seed: int, deck_text: str, meta: dict[str, Any],
                    started: str | None = None) -> dict[str, Any]:
    """The keys every seed manifest starts with (``meta``: the job file's settings and
    provenance, plus what the worker adds, e.g. the LAMMPS version)."""
    return {
        "format": RUN_FORMAT, "seed": seed, "started": started or datetime.now(UTC).isoformat(),
        "host": socket.gethostname(), "python": platform.python_version(),
        "packages": package_versions(TRACKED_PACKAGES),
        "threads": {k: os.environ.get(k) for k in THREAD_VARS},
        "lammps_args": os.environ.get("LPSC_LMP_LAMMPS_ARGS", ""),
        "deck_sha256": sha256_text(deck_text),
        **meta,
    }


def fresh_seed_dir(ensemble_dir: Path, seed: int, deck_text: str) -> Path:
    """An empty seed folder holding only its deck (an earlier, interrupted attempt's files
    are removed first)."""
    sdir = seed_dir(ensemble_dir, seed)
    if sdir.exists():
        shutil.rmtree(sdir)
    sdir.mkdir(parents=True)
    (sdir / "in.lammps").write_text(deck_text)
    return sdir


def with_device(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with the device a model evaluated in Python runs on (``device``: cuda where
    this worker sees a GPU, else cpu) and, where that device loads its own compiled file
    (NequIP on a GPU), ``device_model_file`` and its sha256. Native routes: unchanged."""
    if meta.get("route") != CALLBACK_ROUTE or "model_file" not in meta:
        return meta
    out = dict(meta, device=meta.get("device") or default_device())
    f = device_model_file(out["model_file"], out["device"])
    if str(f) != str(out["model_file"]) and f.is_file():
        out.update(device_model_file=str(f), device_model_sha256=sha256_file(f))
    return out


def record_seed(sdir: Path, manifest: dict[str, Any],
                outcome: dict[str, np.ndarray] | Exception, wall_s: float) -> dict[str, Any]:
    """Write a seed's outcome: on success ``result.npz`` atomically, then the manifest with its
    sha256 (status ``done``); on failure the manifest alone (status ``failed`` with the
    reason). Returns the manifest."""
    if isinstance(outcome, Exception):
        manifest.update(status="failed", reason=str(outcome), wall_s=round(wall_s, 3))
        write_json_atomic(sdir / MANIFEST, manifest)
        return manifest

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **outcome)

    write_atomic(sdir / RESULT, save)
    nsteps = int(round(outcome["t_pos"][-1] / manifest["timestep_ps"]))
    manifest.update(status="done", wall_s=round(wall_s, 3), nsteps=nsteps,
                    steps_per_s=round(nsteps / wall_s, 2),
                    finished=datetime.now(UTC).isoformat(),
                    result_sha256=sha256_file(sdir / RESULT))
    write_json_atomic(sdir / MANIFEST, manifest)
    return manifest


def md_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`run_md` / :func:`run_md_batch` from a seed's meta."""
    return {"li_type": meta["li_type"], "temperature_K": meta["temperature_K"],
            "timestep_ps": meta["timestep_ps"], "msd_every": meta["msd_every_steps"],
            "pos_every": meta["pos_every_steps"], "thermo_every": meta["thermo_every_steps"]}


def run_seed(ensemble_dir: Path, seed: int, deck_text: str, meta: dict[str, Any]) -> dict:
    """Run one seed into its seed folder; return its manifest.

    ``meta`` carries the ensemble settings and the provenance the orchestrator knows (model hash,
    template, ...). A failure is recorded in the manifest (status ``failed``, ``reason``).
    """
    sdir = fresh_seed_dir(ensemble_dir, seed, deck_text)
    meta = with_device(meta)
    manifest = manifest_header(seed, deck_text, meta)
    t0 = time.perf_counter()
    try:
        arrays = run_md(deck_text, sdir, route=meta["route"], route_meta=meta,
                        **md_settings(meta))
    except SeedFailed as exc:
        return record_seed(sdir, manifest, exc, time.perf_counter() - t0)
    return record_seed(sdir, manifest, arrays, time.perf_counter() - t0)


def batch_model_files(evaluator: BatchedEvaluator) -> dict[str, str]:
    """The file the batched evaluator loaded where it is not the seed's ``model_file`` (the
    NequIP batch package), with its sha256, for the manifests."""
    f = getattr(evaluator, "batch_file", None)
    return {"batch_model_file": str(f), "batch_model_sha256": sha256_file(f)} if f else {}


def run_batch(ensemble_dir: Path, jobs: list[dict[str, Any]], meta: dict[str, Any] | None = None,
              evaluator: BatchedEvaluator | None = None) -> list[dict[str, Any]]:
    """Run the seeds of ``jobs`` (the worker's job file entries) as one lock-step batch into
    their seed folders; return their manifests (failures recorded). Each manifest adds
    ``device``, ``batch_size``, ``batch_mode``, ``batch_seeds`` and ``batch_summary``; its
    ``wall_s`` is the wall time of the whole batch."""
    metas = [dict(j["meta"], **(meta or {})) for j in jobs]
    m0 = metas[0]
    check_batchable(m0["route"], m0.get("model", ""))
    if evaluator is None:
        evaluator = BatchedEvaluator(m0["architecture"], m0["model_file"],
                                     device=m0.get("device"))
    if evaluator.mode == "loop":
        print(f"  batched mode: no batched evaluator for {m0['architecture']} "
              "(loop fallback, one structure per call)", flush=True)
    started = datetime.now(UTC).isoformat()
    sdirs = [fresh_seed_dir(ensemble_dir, j["seed"], j["deck"]) for j in jobs]
    extra = {"device": evaluator.device, **batch_model_files(evaluator),
             "batch_size": len(jobs), "batch_mode": evaluator.mode,
             "batch_seeds": [j["seed"] for j in jobs]}
    manifests = [manifest_header(j["seed"], j["deck"], dict(m, **extra), started)
                 for j, m in zip(jobs, metas, strict=True)]
    t0 = time.perf_counter()
    results, summary = run_md_batch([j["deck"] for j in jobs], sdirs, evaluator,
                                    list(m0["type_map"]), **md_settings(m0))
    wall = time.perf_counter() - t0
    for sdir, man, res in zip(sdirs, manifests, results, strict=True):
        man["batch_summary"] = summary
        record_seed(sdir, man, res, wall)
    return manifests
