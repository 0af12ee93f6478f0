"""The arrays of an ensemble's finished seeds, read for analysis (run format:
:mod:`lpsc_lmp.rundir`).

Only seeds that are done and whose ``result.npz`` matches its manifest's sha256 are read; seeds
whose arrays do not match the others (another trajectory length or sampling) are excluded and
counted. Units are those of ``result.npz``: A, ps, A^2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AnalysisError
from ..rundir import (
    SeedStatus,
    manifest_mismatch,
    parse_ensemble_dirname,
    read_ensemble_info,
    read_manifest,
    scan_seeds,
)


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
        pressure_bar: ``(n_done,)`` mean pressure of each seed over the second half of its run
            (bar, from the ``thermo`` array), or None when the seeds do not record it.
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
    pressure_bar: np.ndarray | None = field(default=None, repr=False)
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

    def pressure_GPa(self) -> tuple[float, float] | None:
        """Mean pressure of the ensemble (GPa; mean over seeds of each seed's second half) and
        its standard error over seeds, or None."""
        p = self.pressure_bar
        if p is None or p.size == 0:
            return None
        se = float(p.std(ddof=1) / np.sqrt(p.size)) if p.size > 1 else float("nan")
        return float(p.mean()) * 1e-4, se * 1e-4

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


def read_ensemble(
    ensemble_dir: str | Path, load_positions: bool = True, verify: bool = True
) -> EnsembleData:
    """Read every done seed of an ensemble.

    Args:
        ensemble_dir: ``runs/<model>/T<T>K[-tag]``.
        load_positions: also load ``li_unwrapped``/``framework_com`` (about 200 kB per seed).
        verify: check each ``result.npz`` against its manifest sha256.

    Raises:
        AnalysisError: no readable ``ensemble.json``, an unsupported format, or no done seed
            at all (the message gives the counts).
    """
    path = Path(ensemble_dir)
    meta = read_ensemble_info(path)
    status, paths = scan_seeds(path, verify=verify, expected=int(meta.get("n_seeds") or 0))
    excluded: dict[int, str] = {}
    for num in status.done:  # seeds of other physics are never averaged with these
        why = manifest_mismatch(meta, read_manifest(paths[num].parent) or {})
        if why:
            excluded[num] = why
    if len(excluded) == len(paths):
        raise AnalysisError(f"{path}: no finished seeds of its ensemble.json "
                            f"({status.summary()}, {len(excluded)} of other physics); run the "
                            "ensemble first")
    t_msd_ref: np.ndarray | None = None
    t_pos_ref: np.ndarray | None = None
    cell = None
    seeds, msds, lis, coms, press = [], [], [], [], []
    for num in status.done:
        if num in excluded:
            continue
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
            if "thermo" in z.files:
                th = np.asarray(z["thermo"], dtype=np.float64)
                press.append(float(th[th.shape[0] // 2:, 3].mean()))
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
        pressure_bar=np.array(press) if len(press) == len(seeds) else None,
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
