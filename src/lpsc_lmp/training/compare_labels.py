"""How two labellings of the same frames differ: the functional effect seen in the labels.

For two datasets with identical frames (``lpsc-lmp data label`` of one source with two
labellers or modalities): the RMS difference of the forces (eV/A), the spread of the energy
difference per atom after removing its mean (meV/atom: a constant offset is only a different
energy reference), the mean pressure of each (GPa) and, with ``eos``, the energy-volume curve
of the ordered cell by each labeller with the lattice parameter and bulk modulus it prefers
(:func:`lpsc_lmp.training.label.energy_volume`). Written to
``data/<B>/labels_vs_<A>.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from ase.io import read

from ..errors import DatasetError
from ..files import write_text_atomic
from ..paths import data_root
from .common import SPLITS
from .label import LABEL_ENV, LABEL_RECORD

#: 1 eV/A^3 in GPa.
EV_A3_GPA = 160.21766208


def _frames(folder: Path, split: str) -> list:
    f = folder / f"{split}.extxyz"
    if not f.is_file():
        raise DatasetError(f"{f} not found; compare two labelled, split datasets")
    return read(f, index=":")


def compare_splits(a: list, b: list) -> dict[str, float]:
    """Force, energy and pressure differences of two labellings of the same frames."""
    if len(a) != len(b) or any(x.get_chemical_symbols() != y.get_chemical_symbols()
                               or not np.allclose(x.positions, y.positions, atol=1e-6)
                               for x, y in zip(a, b, strict=True)):
        raise DatasetError("the two datasets do not hold the same frames; label one source "
                           "twice with `lpsc-lmp data label`")
    fa = np.concatenate([x.get_forces().ravel() for x in a])
    fb = np.concatenate([x.get_forces().ravel() for x in b])
    ea = np.array([x.get_potential_energy() / len(x) for x in a])
    eb = np.array([x.get_potential_energy() / len(x) for x in b])
    pa = np.array([-x.get_stress()[:3].mean() for x in a]) * EV_A3_GPA
    pb = np.array([-x.get_stress()[:3].mean() for x in b]) * EV_A3_GPA
    return {"frames": len(a),
            "force_rms_diff_eV_A": float(np.sqrt(np.mean((fb - fa) ** 2))),
            "force_rms_a_eV_A": float(np.sqrt(np.mean(fa ** 2))),
            "force_rms_b_eV_A": float(np.sqrt(np.mean(fb ** 2))),
            "energy_offset_eV_atom": float(np.mean(eb - ea)),
            "energy_diff_std_meV_atom": float(np.std(eb - ea) * 1000.0),
            "pressure_mean_a_GPa": float(pa.mean()), "pressure_mean_b_GPa": float(pb.mean())}


def _labeller(folder: Path) -> tuple[str, str | None] | None:
    rec = folder / LABEL_RECORD
    if not rec.is_file():
        return None
    r = json.loads(rec.read_text())
    return r["labeller"], r.get("modal")


def compare_labels(name_a: str, name_b: str, root: Path | None = None, eos: bool = False,
                   echo=print) -> dict[str, Any]:
    """Compare datasets ``name_a`` and ``name_b`` (same frames); print and write the result."""
    from ..environments import run_in_env

    base = root or data_root()
    fa, fb = base / name_a, base / name_b
    out: dict[str, Any] = {"a": name_a, "b": name_b,
                           "splits": {s: compare_splits(_frames(fa, s), _frames(fb, s))
                                      for s in SPLITS}}
    if eos:
        out["eos"] = {}
        for name, folder in ((name_a, fa), (name_b, fb)):
            who = _labeller(folder)
            if who is None:
                raise DatasetError(f"{folder} has no {LABEL_RECORD}: --eos needs datasets made "
                                   "by `lpsc-lmp data label`")
            echo(f"energy-volume curve of {who[0]}{' ' + who[1] if who[1] else ''} ...")
            out["eos"][name] = run_in_env(LABEL_ENV, "lpsc_lmp.training.label",
                                          ["eos", who[0], *([who[1]] if who[1] else [])])
    for s, r in out["splits"].items():
        echo(f"{s}: {r['frames']} frames; force RMS difference {r['force_rms_diff_eV_A']:.3f} "
             f"eV/A (force RMS {r['force_rms_a_eV_A']:.3f} / {r['force_rms_b_eV_A']:.3f}); "
             f"energy difference {r['energy_offset_eV_atom']:+.4f} eV/atom offset, "
             f"{r['energy_diff_std_meV_atom']:.2f} meV/atom spread; mean pressure "
             f"{r['pressure_mean_a_GPa']:.2f} / {r['pressure_mean_b_GPa']:.2f} GPa")
    for name, e in (out.get("eos") or {}).items():
        echo(f"{name}: a0 = {e['a0_A']:.4f} A (V0 {e['V0_A3']:.1f} A^3), B = {e['B_GPa']:.1f} "
             "GPa")
    path = fb / f"labels_vs_{name_a}.json"
    write_text_atomic(path, json.dumps(out, indent=2) + "\n")
    echo(f"wrote {path}")
    return out
