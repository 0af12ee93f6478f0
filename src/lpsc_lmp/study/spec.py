"""A study file: what to run and how to report it (``lpsc-lmp study STUDY.yaml``).

::

    name: default                      # the report goes to <report>/ (default docs/study-<name>)
    models: [dp-pbe-mf, dp-r2scan-mf, mace-pbe-mf, mace-r2scan-mf,
             allegro-pbe-mf, allegro-r2scan-mf]
    committee: [dp-pbe-mf-seed2, dp-pbe-mf-seed3, dp-pbe-mf-seed4]   # training-seed spread
    committee_temperatures: [1200]     # default: all temperatures
    temperatures: [1100, 1200]         # K
    seeds: 6
    time_ps: 8
    estimator: multi-origin            # or paper
    cell: experimental                 # experimental | model | a lattice parameter (A)
    cell_check: {models: [dp-pbe-mf], temperatures: [1200]}   # also run at the model's cell
    engine: local                      # or dispatcher (with machine: FILE)
    workers: 2
    batch: {mace-pbe-mf: 8}            # optional: --batch K per model (lock step)
    validate: {temperature: 1200, seeds: 2, time_ps: 4}        # teacher check (or omit)
    barriers: [7net-0, 7net-mf-0-pbe, 7net-mf-0-r2scan, 7net-l3i5, chgnet]   # NEB (or omit)
    report: docs/study                 # output folder of the report
    runs: runs                         # root of the run directories

Every key but ``models`` and ``temperatures`` has the default shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..paths import project_root
from ..rundir import check_name

KEYS = ("name", "models", "committee", "committee_temperatures", "temperatures", "seeds",
        "time_ps", "estimator", "cell", "cell_check", "engine", "machine", "workers", "batch",
        "validate", "barriers", "report", "runs", "seeds_per_job")


@dataclass
class StudySpec:
    """A study, checked (times in ps, temperatures in K)."""

    name: str
    models: list[str]
    temperatures: list[float]
    committee: list[str] = field(default_factory=list)
    committee_temperatures: list[float] = field(default_factory=list)
    seeds: int = 6
    time_ps: float = 8.0
    estimator: str = "multi-origin"
    cell: str = "experimental"
    cell_check: dict[str, list] = field(default_factory=dict)
    engine: str = "local"
    machine: str | None = None
    workers: int = 2
    seeds_per_job: int = 10
    batch: dict[str, int] = field(default_factory=dict)
    validate: dict[str, Any] | None = None
    barriers: list[str] = field(default_factory=list)
    report: Path = Path("docs/study")
    runs: Path | None = None
    source: Path | None = None


def _numbers(value: Any, what: str) -> list[float]:
    vals = value if isinstance(value, list) else [value]
    try:
        out = [float(v) for v in vals]
    except (TypeError, ValueError):
        raise InputError(f"study file: {what} must be numbers, got {value!r}") from None
    if not out or not all(math.isfinite(v) and v > 0 for v in out):
        raise InputError(f"study file: {what} must be positive numbers, got {value!r}")
    return out


def _names(value: Any, what: str) -> list[str]:
    vals = value if isinstance(value, list) else [value]
    return [check_name(str(v), f"study file: {what}") for v in vals]


def load_spec(path: str | Path) -> StudySpec:
    """Read and check a study file; one-line InputError naming the key to fix."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"study file {p} not found; pass a YAML file like studies/default.yaml")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"study file {p} is not valid YAML"
                         + (f" (line {mark.line + 1})" if mark else "") + "; fix it") from None
    if not isinstance(raw, dict):
        raise InputError(f"study file {p} must be a mapping of keys ({', '.join(KEYS)})")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise InputError(f"study file {p}: unknown key(s) {unknown}; known: {', '.join(KEYS)}")
    for key in ("models", "temperatures"):
        if key not in raw:
            raise InputError(f"study file {p} lacks '{key}'")
    root = project_root()
    spec = StudySpec(
        name=check_name(str(raw.get("name", p.stem)), "study file: name"),
        models=_names(raw["models"], "models"),
        temperatures=_numbers(raw["temperatures"], "temperatures"),
        committee=_names(raw.get("committee", []), "committee") if raw.get("committee")
        else [],
        seeds=int(raw.get("seeds", 6)), time_ps=float(raw.get("time_ps", 8.0)),
        estimator=str(raw.get("estimator", "multi-origin")),
        cell=str(raw.get("cell", "experimental")),
        engine=str(raw.get("engine", "local")), machine=raw.get("machine"),
        workers=int(raw.get("workers", 2)), seeds_per_job=int(raw.get("seeds_per_job", 10)),
        batch={str(k): int(v) for k, v in (raw.get("batch") or {}).items()},
        validate=raw.get("validate"), barriers=_names(raw.get("barriers", []), "barriers")
        if raw.get("barriers") else [],
        report=root / str(raw.get("report", f"docs/study-{p.stem}")),
        runs=(root / str(raw["runs"])) if raw.get("runs") else None, source=p.resolve())
    spec.committee_temperatures = _numbers(raw["committee_temperatures"],
                                           "committee_temperatures") \
        if raw.get("committee_temperatures") else list(spec.temperatures)
    cc = raw.get("cell_check") or {}
    if cc:
        spec.cell_check = {"models": _names(cc.get("models", []), "cell_check.models"),
                           "temperatures": _numbers(cc.get("temperatures", []),
                                                    "cell_check.temperatures")}
    if spec.estimator not in ("paper", "multi-origin"):
        raise InputError(f"study file {p}: estimator {spec.estimator!r}; use paper or "
                         "multi-origin")
    if spec.engine not in ("local", "dispatcher"):
        raise InputError(f"study file {p}: engine {spec.engine!r}; use local or dispatcher")
    if spec.seeds < 2:
        raise InputError(f"study file {p}: seeds must be >= 2 (errors come from the seeds)")
    if spec.validate is not None and not isinstance(spec.validate, dict):
        raise InputError(f"study file {p}: validate must be a mapping like "
                         "{temperature: 1200, seeds: 2, time_ps: 4}")
    return spec
