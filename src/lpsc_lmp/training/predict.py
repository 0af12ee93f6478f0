"""A model's own predictions on labelled frames, in the model's environment.

``python -m lpsc_lmp.training.predict MODEL FILE [FILE ...]`` (MODEL: a registered name or a
model folder) prints, per extxyz file, the reference and predicted energies per atom (eV/atom)
and force components (eV/A) and the RMSEs: energy per atom (meV/atom) and force over all
Cartesian components (eV/A). Used by ``lpsc-lmp evaluate`` and ``train`` for the architectures
that run in an environment of their own (:func:`predict_in_env`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..environments import json_main, run_in_env
from ..models.calculators import load_calculator
from ..models.registry import ModelCard, load_card_at

#: The arrays of each file's answer (the rest are numbers).
ARRAYS = ("e_ref", "e_pred", "f_ref", "f_pred")


def rmse_fields(e_ref: np.ndarray, e_pred: np.ndarray, f_ref: np.ndarray, f_pred: np.ndarray
                ) -> dict[str, float]:
    """Energy RMSE per atom (meV/atom, from eV/atom inputs) and force RMSE over all components
    (eV/A)."""
    return {"energy_rmse_meV_atom": float(np.sqrt(np.mean((e_pred - e_ref) ** 2)) * 1000.0),
            "force_rmse_eV_A": float(np.sqrt(np.mean((f_pred - f_ref) ** 2)))}


def predict(card: ModelCard, files: list[str]) -> dict[str, Any]:
    """Per file: reference and predicted energies per atom and force components, the RMSEs."""
    from ase.io import read

    calc = load_calculator(card.architecture, card.require_deploy_file())
    out = {}
    for f in files:
        e_ref, e_pred, f_ref, f_pred = [], [], [], []
        for at in read(f, index=":"):
            e_ref.append(at.get_potential_energy() / len(at))
            f_ref.append(at.get_forces().ravel())
            at.calc = calc
            e_pred.append(at.get_potential_energy() / len(at))
            f_pred.append(np.asarray(at.get_forces()).ravel())
        arrays = {"e_ref": np.array(e_ref), "e_pred": np.array(e_pred),
                  "f_ref": np.concatenate(f_ref), "f_pred": np.concatenate(f_pred)}
        out[f] = {"frames": len(e_ref), **arrays, **rmse_fields(*arrays.values())}
    return {"model": card.name, "model_file": str(card.deploy_file), "files": out}


def predict_in_env(card: ModelCard, files: list[Path]) -> dict[str, dict[str, Any]]:
    """:func:`predict` run in the card's environment; per file (str) the arrays (numpy) and the
    RMSEs."""
    res = run_in_env(card.env, "lpsc_lmp.training.predict",
                     [str(card.directory), *map(str, files)])
    return {f: {k: (np.asarray(v) if k in ARRAYS else v) for k, v in r.items()}
            for f, r in res["files"].items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m lpsc_lmp.training.predict MODEL FILE [FILE ...]",
              file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    return json_main(lambda: predict(load_card_at(args[0]), args[1:]))


if __name__ == "__main__":
    sys.exit(main())
