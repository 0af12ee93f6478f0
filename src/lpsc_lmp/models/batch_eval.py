"""One forward pass for many structures: the model side of lock-step batched ensembles.

:class:`BatchedEvaluator` returns energies, forces and virials of a list of :class:`ase.Atoms`
of one composition (the K replicas of a ``--batch K`` worker, :mod:`lpsc_lmp.md.lockstep`) in
one call. ``mode`` says how:

- ``mace-batched-graph``: one batched graph through the model of the MACE ASE calculator
  (float64, as the ordinary route). The first batch is MACE's own (``AtomicData.from_config``
  per replica, ``torch_geometric.Batch.from_data_list``); later batches of the same replicas
  reuse it with only the geometry replaced (``_mace_fast``, neighbour lists from
  :mod:`lpsc_lmp.models.neighbours`), equal to MACE's own to round-off.
- ``nequip-aoti-batch``: a NequIP/Allegro AOTInductor package compiled for target ``batch``
  (:func:`lpsc_lmp.models.calculators.batch_file_for`, made by ``lpsc-lmp models prepare
  [--device cuda]`` or the first batched ensemble on that device). Its input is built directly
  (``_nequip_graph``); without vesin on a CPU, NequIP's own per-frame path. The package is
  exported for >= 2 frames, so a batch of one (K = 1, or the last replica alive) goes through
  the ASE calculator.
- ``deepmd-multi-frame``: DeePMD-kit's ``DeepPot.eval`` with a frame axis (coordinates
  ``(K, 3N)``, cells ``(K, 9)``), the model of its ASE calculator ``deepmd.calculator.DP``.
- ``loop``: the model's own ASE calculator once per structure (no batching: the fallback for a
  NequIP model without a batch package). Recorded in the manifests.

Float round-off: a batched forward pass reduces in other block sizes, so forces differ from the
per-structure evaluation by round-off (float64 MACE ~1e-12 eV/A, float32 NequIP ~1e-6). With
one structure (and the loop evaluator) the arithmetic is that of the ordinary route.

Neighbour lists of the direct graphs (``edges``, :data:`~lpsc_lmp.models.neighbours.EDGE_METHODS`):
vesin per frame on a CPU, one torch neighbour list for all replicas on a GPU; ``edges="torch"``
runs the GPU code on a CPU (tests). The model runs on ``device`` (default: the worker's GPU if
torch sees one).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..devices import default_device
from ..errors import BatchError
from .calculators import batch_file_for, batch_file_fresh, load_calculator
from .neighbours import (
    EDGE_METHODS,
    batch_edges,
    batch_edges_available,
    torch_device,
)


class BatchedEvaluator:
    """Energies (eV), forces (eV/A) and virials (eV, LAMMPS order xx yy zz xy xz yz) of a list
    of :class:`ase.Atoms` of one composition, in one forward pass (``mode`` says how)."""

    def __init__(self, architecture: str, model_file: str | Path, device: str | None = None,
                 mode: str = "auto", edges: str = "auto"):
        self.architecture = architecture
        self.device = device or default_device()
        if edges not in EDGE_METHODS:
            raise BatchError(f"edges '{edges}' is not one of {', '.join(EDGE_METHODS)}")
        self.edges = edges  # neighbour lists of the direct graphs (batch_edges)
        self.calc = load_calculator(architecture, model_file, device=self.device)
        self.calls = 0
        self.seconds = 0.0
        self.graph = "model's own"  # "direct": the batched input built by lpsc-lmp (fast)
        if architecture == "mace" and mode in ("auto", "mace-batched-graph"):
            self.mode = "mace-batched-graph"
            self._init_mace()
        elif architecture == "deepmd" and mode in ("auto", "deepmd-multi-frame"):
            self.mode = "deepmd-multi-frame"
        elif architecture in ("nequip", "allegro") and mode in ("auto", "nequip-aoti-batch") \
                and batch_file_fresh(model_file, self.device):
            self.mode = "nequip-aoti-batch"
            self.batch_file = batch_file_for(model_file, self.device)
            self._init_nequip(self.batch_file)
        elif mode in ("auto", "loop"):
            self.mode = "loop"
        else:
            raise BatchError(f"evaluator mode '{mode}' is not available for {architecture} "
                             f"({model_file}); for NequIP run `lpsc-lmp models prepare MODEL` "
                             "first")

    # -- MACE
    def _init_mace(self) -> None:
        from mace import data as mace_data

        c = self.calc
        if len(c.models) != 1:
            raise BatchError("batched MACE evaluation supports one model file, not a committee")
        c.arrays_keys.update({c.charges_key: "charges"})
        self._keyspec = mace_data.KeySpecification(info_keys=c.info_keys,
                                                   arrays_keys=c.arrays_keys)

    def _mace(self, atoms_list: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from mace import data as mace_data
        from mace.tools import torch_geometric, torch_tools

        c = self.calc
        model = c.models[0]
        dtype = next(model.parameters()).dtype
        data = self._mace_fast(atoms_list, dtype)
        self.graph = "direct" if data is not None else "model's own"
        if data is None:  # MACE's own per-frame graphs (also the template of the fast path)
            with torch_tools.default_dtype(c.default_dtype):
                graphs = [mace_data.AtomicData.from_config(
                    mace_data.config_from_atoms(a, key_specification=self._keyspec,
                                                head_name=c.head),
                    z_table=c.z_table, cutoff=c.r_max, heads=c.available_heads)
                    for a in atoms_list]
            batch = torch_geometric.Batch.from_data_list(graphs).to(c.device)
            for key in batch.keys:
                v = batch[key]
                if hasattr(v, "is_floating_point") and v.is_floating_point():
                    batch[key] = v.to(dtype=dtype)
            data = batch.to_dict()
            if batch_edges_available(c.device, self.edges):
                self._mace_template = (self._mace_key(atoms_list), data)
        out = model(dict(data), compute_stress=True, training=False)
        e = out["energy"].detach().cpu().numpy().astype(float) * c.energy_units_to_eV
        f = out["forces"].detach().cpu().numpy().astype(float) \
            * (c.energy_units_to_eV / c.length_units_to_A)
        s = out["stress"].detach().cpu().numpy().astype(float) \
            * (c.energy_units_to_eV / c.length_units_to_A ** 3)
        return e, f.reshape(len(atoms_list), -1, 3), s.reshape(len(atoms_list), 3, 3)

    @staticmethod
    def _mace_key(atoms_list: list[Any]) -> tuple:
        return len(atoms_list), tuple(atoms_list[0].numbers)

    def _mace_fast(self, atoms_list: list[Any], dtype: Any) -> dict[str, Any] | None:
        """The batch of the previous call with the same number of replicas and composition,
        its geometry replaced (positions, edges, shifts, cells): MACE's per-frame graph
        building costs ~3.7 ms of Python per 52-atom frame; only the geometry changes from step
        to step. Neighbour lists from vesin per frame (CPU) or :func:`periodic_edges` (GPU),
        with MACE's convention (sender i, receiver j, vector = x_j - x_i + shift). None when
        there is no template yet or it does not match."""
        import torch

        tpl = getattr(self, "_mace_template", None)
        if tpl is None or tpl[0] != self._mace_key(atoms_list):
            return None
        data = dict(tpl[1])
        c = self.calc
        dev = torch_device(c.device)
        k, n = len(atoms_list), len(atoms_list[0])
        pos_t, edge_index, unit, cells_t = batch_edges(atoms_list, float(c.r_max), dev,
                                                       self.edges)
        frame = edge_index[0] // n
        shifts = torch.einsum("es,esd->ed", unit, cells_t[frame])
        data.update({
            "positions": pos_t.to(dev, dtype),
            "edge_index": edge_index.to(dev),
            "shifts": shifts.to(dev, dtype),
            "unit_shifts": unit.to(dev, dtype),
            "cell": cells_t.reshape(k * 3, 3).to(dev, dtype),
        })
        if "rcell" in data:
            data["rcell"] = (2 * torch.pi * torch.linalg.inv(cells_t.transpose(1, 2))
                             ).reshape(k * 3, 3).to(dev, dtype)
        if "volume" in data:
            data["volume"] = torch.abs(torch.linalg.det(cells_t)).to(dev, dtype)
        return data

    # -- NequIP
    def _init_nequip(self, batch_file: Path) -> None:
        from nequip.integrations.ase import NequIPCalculator

        class _BatchTarget(NequIPCalculator):
            @classmethod
            def _get_aoti_compile_target(cls):
                from nequip.scripts._compile_utils import AOTI_BATCH_TARGET, COMPILE_TARGET_DICT

                return COMPILE_TARGET_DICT[AOTI_BATCH_TARGET]

        self._nq = _BatchTarget.from_compiled_model(str(batch_file), device=self.device)

    def _nequip(self, atoms_list: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from nequip.data import AtomicDataDict

        if len(atoms_list) == 1:  # the batch package is exported for >= 2 frames (0/1
            return self._loop(atoms_list)  # specialisation); one frame: the ASE calculator
        c = self._nq
        data = self._nequip_graph(atoms_list)
        self.graph = "direct" if data is not None else "model's own"
        if data is None:  # NequIP's own per-frame path (ASE calculator transforms)
            frames = [c.atoms_to_data(a) for a in atoms_list]
            data = AtomicDataDict.batched_from_list(frames)
        out = c.model(data)
        e = out[AtomicDataDict.TOTAL_ENERGY_KEY].detach().cpu().numpy().astype(float)
        f = out[AtomicDataDict.FORCE_KEY].detach().cpu().numpy().astype(float)
        s = out[AtomicDataDict.STRESS_KEY].detach().cpu().numpy().astype(float)
        conv = c.energy_units_to_eV
        return (e.reshape(-1) * conv, f.reshape(len(atoms_list), -1, 3)
                * conv / c.length_units_to_A,
                s.reshape(len(atoms_list), 3, 3) * conv / c.length_units_to_A ** 3)

    # -- DeePMD-kit
    def _deepmd(self, atoms_list: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One ``DeepPot.eval`` of all frames (DeePMD evaluates a frame axis natively); stress
        as its ASE calculator makes it: -sym(virial) / V."""
        dp, tdict = self.calc.dp, self.calc.type_dict
        atype = [tdict[k] for k in atoms_list[0].get_chemical_symbols()]
        coords = np.stack([a.get_positions().reshape(-1) for a in atoms_list])
        cells = np.stack([a.cell.array.reshape(-1) for a in atoms_list])
        e, f, v = dp.eval(coords=coords, cells=cells, atom_types=atype)[:3]
        n = len(atoms_list)
        v = np.asarray(v, dtype=float).reshape(n, 3, 3)
        vol = np.array([abs(np.linalg.det(a.cell.array)) for a in atoms_list])
        s = -0.5 * (v + v.transpose(0, 2, 1)) / vol[:, None, None]
        return (np.asarray(e, dtype=float).reshape(n),
                np.asarray(f, dtype=float).reshape(n, -1, 3), s)

    def _nequip_graph(self, atoms_list: list[Any]) -> dict[str, Any] | None:
        """The batched input of the NequIP ``batch`` package built directly, without NequIP's
        per-frame ASE conversion (~1.4 ms of Python per 52-atom frame): neighbour lists from
        vesin per frame on a CPU, or for all frames at once in torch on a GPU
        (:func:`periodic_edges`); atom types from the calculator's own type mapper, once per
        composition. None (NequIP's path) when neither applies (CPU without vesin)."""
        import torch
        from nequip.data import AtomicDataDict as K_

        c = self._nq
        dev = torch.device(self.device)
        if not batch_edges_available(dev, self.edges):
            return None
        first = atoms_list[0]
        key = tuple(first.numbers)
        if getattr(self, "_nq_types_key", None) != key:
            d0 = c.atoms_to_data(first)
            self._nq_types = d0[K_.ATOM_TYPE_KEY].to(dev)
            self._nq_numbers = d0[K_.ATOMIC_NUMBERS_KEY].to(dev)
            self._nq_rmax = next(float(t.r_max) for t in c.transforms if hasattr(t, "r_max"))
            self._nq_types_key = key
        n, k = len(first), len(atoms_list)
        pos_t, edge_index, shifts, cells_t = batch_edges(atoms_list, self._nq_rmax, dev,
                                                         self.edges)
        return {
            K_.POSITIONS_KEY: pos_t.to(dev),
            K_.EDGE_INDEX_KEY: edge_index.to(dev),
            K_.EDGE_CELL_SHIFT_KEY: shifts.to(dev),
            K_.CELL_KEY: cells_t.to(dev),
            K_.PBC_KEY: torch.ones((k, 3), dtype=torch.bool, device=dev),
            K_.ATOM_TYPE_KEY: self._nq_types.repeat(k),
            K_.ATOMIC_NUMBERS_KEY: self._nq_numbers.repeat(k),
            K_.BATCH_KEY: torch.arange(k, device=dev).repeat_interleave(n),
            K_.NUM_NODES_KEY: torch.full((k,), n, dtype=torch.int64, device=dev),
        }

    # -- reference: the ASE calculator, one structure at a time
    def _loop(self, atoms_list: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from ase.calculators.calculator import all_changes

        es, fs, ss = [], [], []
        for a in atoms_list:
            self.calc.calculate(a, ["energy", "forces", "stress"], all_changes)
            r = self.calc.results
            es.append(float(r["energy"]))
            fs.append(np.asarray(r["forces"], dtype=float).reshape(-1, 3))
            v = np.asarray(r["stress"], dtype=float).reshape(-1)
            ss.append(v.reshape(3, 3) if v.size == 9 else voigt_to_3x3(v))
        return np.array(es), np.stack(fs), np.stack(ss)

    def evaluate_single(self, atoms_list: list[Any]) -> dict[str, np.ndarray]:
        """Per-structure evaluation with the model's own ASE calculator (the ordinary route)."""
        return self._pack(atoms_list, *self._loop(atoms_list))

    def evaluate(self, atoms_list: list[Any]) -> dict[str, np.ndarray]:
        """``energy`` (B,), ``forces`` (B, N, 3), ``stress`` (B, 3, 3; eV/A^3, ASE sign) and
        ``virial`` (B, 6; eV, LAMMPS order xx yy zz xy xz yz) in one call."""
        t0 = time.perf_counter()
        fn = {"mace-batched-graph": self._mace, "nequip-aoti-batch": self._nequip,
              "deepmd-multi-frame": self._deepmd, "loop": self._loop}[self.mode]
        res = self._pack(atoms_list, *fn(atoms_list))
        self.calls += 1
        self.seconds += time.perf_counter() - t0
        return res

    @staticmethod
    def _pack(atoms_list, e, f, s) -> dict[str, np.ndarray]:
        vol = np.array([abs(np.linalg.det(a.cell.array)) for a in atoms_list])
        # LAMMPS virial = -stress * V (stress = dE/dstrain / V), order xx yy zz xy xz yz
        virial = -vol[:, None] * s[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]
        return {"energy": e, "forces": f, "stress": s, "virial": virial}


def voigt_to_3x3(v: np.ndarray) -> np.ndarray:
    """ASE Voigt (xx yy zz yz xz xy) -> symmetric 3x3."""
    xx, yy, zz, yz, xz, xy = v
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
