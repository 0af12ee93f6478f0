"""Batched execution of an ensemble: K seeds advance together, the model evaluates them at once.

``lpsc-lmp ensemble ... --batch K`` gives every worker process K seeds (replicas) that run in
lock step. LAMMPS still integrates each replica (its own instance, deck, thermostat, computes,
``fix vector`` outputs, the same ``result.npz`` as the ordinary mode, docs/run-format.md); only
the model evaluation is shared: one forward pass per MD step for all replicas.

Design
------
- One process, K LAMMPS instances (``lammps_env.open_lammps``), each set up from its seed's deck
  (``templates/pair/python-callback.j2``: ``fix ext all external pf/callback 1 1``).
- Each replica's production run (chunks of ``pos_every`` steps, exactly as
  :func:`lpsc_lmp.runner.run_md`) is driven by its own Python thread. The LAMMPS C call releases
  the GIL; the ``fix external`` callback re-acquires it and posts the replica's positions and
  box (an :class:`ase.Atoms`, built exactly as :class:`lpsc_lmp.routes.PythonCallback` does) to
  a :class:`_LockStep`. When every live replica has posted, the last one evaluates the whole
  batch with :class:`BatchedEvaluator` and runs on; the others copy their forces, energy and
  virial into LAMMPS when their turn comes.
- One replica runs at a time: a replica that has posted hands the turn to the next one (fixed
  cyclic order) that has not, so exactly one thread wakes per hand-off. LAMMPS code is also
  serialised by a token lock (held while inside LAMMPS, given up while waiting; after an
  interrupt the replicas only take turns on it): the instances share one MPI library and the
  PyPI build is not initialised for concurrent MPI calls; the LAMMPS work per step of a small
  cell is microseconds, the model evaluation dominates.
- A replica that fails (LAMMPS error, non-finite energy, runaway temperature, a failed batch
  evaluation: its forces are set to NaN so its chunk check fails) leaves the lock step; the others
  go on. Every replica calls the callback the same number of times (one per step plus one per
  ``run`` set-up), so the lock step holds without step numbers.
- Batch composition is fixed (replicas in job order), so a batch of seeds gives the same arrays
  on every run.

Evaluators (``BatchedEvaluator.mode``)
-------------------------------------
- ``mace-batched-graph``: one batched graph through the model of the MACE ASE calculator
  (float64, as the ordinary route). The first batch is MACE's own (``AtomicData.from_config``
  per replica, ``torch_geometric.Batch.from_data_list``); later batches of the same replicas
  reuse it with only the geometry replaced (``_mace_fast``: vesin neighbour lists on a CPU,
  :func:`periodic_edges` on a GPU), equal to MACE's own to 1e-14. Energies per graph, forces,
  stress per graph (3x3).
- ``nequip-aoti-batch``: a NequIP/Allegro AOTInductor package compiled for target ``batch``
  (dynamic number of frames). Its input is built directly (``_nequip_graph``): neighbour lists
  from vesin per frame on a CPU (2.3x less Python per replica than NequIP's per-frame ASE
  conversion), or for all frames at once in torch on a GPU (:func:`periodic_edges`); without
  vesin, NequIP's own path (calculator transforms + ``AtomicDataDict.batched_from_list``).
  The file is ``<model dir>/<deploy stem>.batch.nequip.pt2`` (CPU; ``make models`` makes it)
  or ``<deploy stem>.batch.cuda.nequip.pt2`` (GPU: an AOTInductor package runs only on the
  device type it was compiled for), made by ``python -m lpsc_lmp.batched compile MODEL
  [--device cuda]`` or by the first batched sweep on that device
  (:func:`lpsc_lmp.deploy.derive_for_device`; nequip-compile, 40-100 s). That package is
  exported for >= 2 frames (a single frame indexes out of bounds), so a batch of one (K=1, or
  the last replica alive) goes through the ASE calculator.
- ``deepmd-multi-frame``: DeePMD-kit's ``DeepPot.eval`` with a frame axis (coordinates
  ``(K, 3N)``, cells ``(K, 9)``), the model of its ASE calculator ``deepmd.calculator.DP``, so a
  DeePMD model runs batched on its card's python-callback route (``--batch`` picks that route;
  the ordinary mode keeps ``pair_style deepmd``).
- ``loop``: the model's own ASE calculator called once per replica (NO batching: the fallback
  for a NequIP model without a batch package). Logged and recorded in the manifest.

Float round-off: a batched forward pass reduces in other block sizes (matrix products over more
rows), so a replica's forces differ from the per-structure evaluation by round-off (~1e-12 eV/A
in float64 MACE; float32 NequIP ~1e-6), and a batched seed tracks the same seed of the ordinary
mode to round-off that MD chaos amplifies slowly (tests/test_batched.py bounds it over 50 steps).
With batch size 1 (and the loop evaluator) the arithmetic is that of the ordinary mode.

A native route (``pair_style deepmd``, ``nequip``, ``mace``: the model evaluates inside LAMMPS)
cannot be batched; ``--batch`` uses the card's python-callback route, and refuses a card without
one (:func:`check_batchable`).

Neighbour lists of the direct graphs (``edges``, :data:`EDGE_METHODS`): vesin per frame on a
CPU, one torch neighbour list for all replicas on a GPU; ``edges="torch"`` runs the GPU code on
a CPU (tests). The model runs on ``device`` (default: the worker's GPU if torch sees one).

Per-seed manifests carry ``batch_size``, ``batch_mode``, ``batch_seeds``, ``device`` (and the
NequIP ``batch_model_file`` with its sha256) besides the usual keys; ``steps_per_s`` is per
seed (aggregate = batch size x steps_per_s).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .deck import split_production_run
from .routes import (
    CALLBACK_ROUTES,
    FIX_ID,
    CallbackFrame,
    RouteError,
    default_device,
    device_model_file,
    device_type,
    load_calculator,
)
from .runner import (
    SeedFailed,
    lammps_failure,
    package_versions,
    production,
    record_seed,
    sha256_file,
)


class BatchError(ValueError):
    """Batched mode cannot be used as asked; the message names the fix."""


def check_batchable(route: str, model: str = "") -> None:
    """Refuse ``--batch`` for a model whose route is not evaluated in Python."""
    if route not in CALLBACK_ROUTES:
        raise BatchError(f"--batch needs a model evaluated in Python (route python-callback); "
                         f"model {model or '?'} uses the native route '{route}': drop --batch "
                         "and use --workers instead")


def batch_file_for(model_file: str | Path, device: str = "cpu") -> Path:
    """Where the NequIP AOTI package for target ``batch`` of ``model_file`` lives:
    ``<stem>.batch.nequip.pt2`` for the CPU, ``<stem>.batch.<device type>.nequip.pt2`` for a
    GPU (an AOTInductor package runs only on the device type it was compiled for)."""
    p = Path(model_file)
    return device_model_file(p.with_name(f"{p.name.split('.')[0]}.batch.nequip.pt2"), device)


def batch_file_fresh(model_file: str | Path, device: str = "cpu") -> bool:
    """The batch package for ``device`` exists and is not older than the NequIP package(s)
    beside the model (a retrained model must not run with the old batch package)."""
    b = batch_file_for(model_file, device)
    if not b.is_file():
        return False
    stale = [z for z in b.parent.glob("*.nequip.zip") if z.stat().st_mtime > b.stat().st_mtime]
    if stale:
        print(f"  {b.name} is older than {stale[0].name}: ignored (loop fallback); remake it "
              f"with `lpsc-lmp models prepare MODEL --device {device_type(device)}`",
              file=sys.stderr, flush=True)
    return not stale


# ------------------------------------------------------------------ evaluator
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
                             f"({model_file}); for NequIP run `python -m lpsc_lmp.batched "
                             "compile MODEL` first")

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


def torch_device(device: Any) -> Any:
    import torch

    return device if isinstance(device, torch.device) else torch.device(str(device))


#: How :func:`batch_edges` finds neighbours: ``auto`` (vesin on a CPU, torch on a GPU),
#: ``vesin`` (per frame, on the CPU) or ``torch`` (:func:`periodic_edges`, all frames at once on
#: the evaluator's device; on a CPU the same code as on a GPU, which is how it is tested).
EDGE_METHODS = ("auto", "vesin", "torch")


def edge_method(device: Any, edges: str = "auto") -> str:
    """The neighbour-list method ``edges`` means on ``device``: ``vesin`` or ``torch``."""
    if edges != "auto":
        return edges
    return "vesin" if torch_device(device).type == "cpu" else "torch"


def batch_edges_available(device: Any, edges: str = "auto") -> bool:
    """Whether :func:`batch_edges` runs here: the torch method always, vesin if installed."""
    if edge_method(device, edges) == "torch":
        return True
    try:
        import vesin  # noqa: F401
    except ImportError:
        return False
    return True


def batch_edges(atoms_list: list[Any], r_max: float, device: Any, edges: str = "auto"
                ) -> tuple[Any, Any, Any, Any]:
    """Neighbour lists of the replicas of a batch (one composition, N atoms each) as torch
    tensors for a batched graph: positions (K*N, 3), ``edge_index`` (2, E; centre/sender i,
    neighbour/receiver j, with frame offsets k*N), integer cell shifts S (E, 3) such that the
    edge vector is x_j - x_i + S @ cell, and the cells (K, 3, 3). ``edges`` (EDGE_METHODS):
    vesin per frame on the CPU, or :func:`periodic_edges` for all frames at once on ``device``
    (positions then wrapped into their cells; the default on a GPU). Units: A."""
    import torch

    k, n = len(atoms_list), len(atoms_list[0])
    pos = np.stack([a.positions for a in atoms_list]).astype(np.float64)
    cells = np.stack([a.cell.array for a in atoms_list]).astype(np.float64)
    if edge_method(device, edges) == "torch":
        cells_t = torch.as_tensor(cells, device=device)
        pos_t, edge_index, unit = periodic_edges(torch.as_tensor(pos, device=device), cells_t,
                                                 r_max)
        return pos_t, edge_index, unit, cells_t
    from vesin import NeighborList

    nl = NeighborList(cutoff=r_max, full_list=True)
    ei, sh = [], []
    for f in range(k):
        i, j, sft = nl.compute(points=pos[f], box=cells[f], periodic=True, quantities="ijS")
        ei.append(np.stack([i.astype(np.int64) + f * n, j.astype(np.int64) + f * n]))
        sh.append(sft)
    return (torch.from_numpy(pos).reshape(k * n, 3),
            torch.from_numpy(np.concatenate(ei, axis=1)),
            torch.from_numpy(np.concatenate(sh).astype(np.float64)), torch.from_numpy(cells))


#: Largest pair-distance tensor :func:`periodic_edges` builds at once (elements; x3 doubles):
#: 2^25 x 24 B = 0.8 GB. Larger batches are split into groups of frames.
EDGE_CHUNK_ELEMENTS = 1 << 25


def periodic_edges(pos: Any, cells: Any, r_max: float) -> tuple[Any, Any, Any]:
    """Neighbour lists of K periodic frames of N atoms at once, in torch (on the frames'
    device): ``pos`` (K, N, 3) and ``cells`` (K, 3, 3, rows = lattice vectors), A. Returns the
    positions wrapped into their cells (K*N, 3), ``edge_index`` (2, E; centre, neighbour, with
    frame offsets k*N) and integer cell shifts S (E, 3) such that the edge vector is
    pos[j] - pos[i] + S @ cell, every pair within ``r_max`` both ways, no self pair. Dense in
    N^2 x images: meant for the small cells of an ensemble, on a GPU; frames are taken in
    groups so that no intermediate exceeds :data:`EDGE_CHUNK_ELEMENTS` pair images."""
    import torch

    k, n, _ = pos.shape
    inv = torch.linalg.inv(cells)
    frac = torch.einsum("knd,kde->kne", pos, inv)
    pos = torch.einsum("kne,ked->knd", frac - torch.floor(frac), cells)
    widths = 1.0 / torch.linalg.norm(inv, dim=1)  # distance between opposite faces
    reach = torch.ceil(r_max / widths.min(dim=0).values).long().tolist()
    rng = [torch.arange(-x, x + 1, dtype=pos.dtype, device=pos.device) for x in reach]
    shifts = torch.stack(torch.meshgrid(*rng, indexing="ij"), -1).reshape(-1, 3)
    zero = int(torch.nonzero((shifts == 0).all(1))[0])
    ar = torch.arange(n, device=pos.device)
    group = max(1, EDGE_CHUNK_ELEMENTS // (n * n * len(shifts)))
    edges, units = [], []
    for f0 in range(0, k, group):
        p, c = pos[f0:f0 + group], cells[f0:f0 + group]
        cart = torch.einsum("ms,ksd->kmd", shifts, c)
        d = p[:, None, :, None, :] - p[:, :, None, None, :] + cart[:, None, None, :, :]
        mask = (d * d).sum(-1) < r_max * r_max
        mask[:, ar, ar, zero] = False
        f, i, j, m = torch.nonzero(mask, as_tuple=True)
        edges.append(torch.stack([(f + f0) * n + i, (f + f0) * n + j]))
        units.append(shifts[m])
    return pos.reshape(k * n, 3), torch.cat(edges, 1), torch.cat(units)


def voigt_to_3x3(v: np.ndarray) -> np.ndarray:
    """ASE Voigt (xx yy zz yz xz xy) -> symmetric 3x3."""
    xx, yy, zz, yz, xz, xy = v
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


# ------------------------------------------------------------------ lock step
class _Stopped(Exception):
    """The batch was interrupted: replicas stop at their next chunk boundary."""


class _LockStep:
    """Collects one structure from every live replica, evaluates them together, and decides
    which replica runs: one at a time, handing the turn on in a fixed cyclic order.

    A replica that has posted its structure hands the turn to the next live replica that has
    not posted yet in this step (that one is waiting with its result of the step before, or to
    start); the last one to post evaluates the batch on its own thread and runs on, so it posts
    first in the next step. Exactly one thread wakes per hand-off: waking all K replicas after
    each batch to contend for the LAMMPS token cost ~100 us per replica-step at K=16-64 on two
    cores. Which thread runs when does not change any result (the batch is always evaluated in
    replica order)."""

    def __init__(self, evaluator: BatchedEvaluator, n: int):
        self.ev = evaluator
        self.mu = threading.Lock()  # guards the state below; held during the evaluation
        self.turn = [threading.Lock() for _ in range(n)]  # released = "your turn"
        for t in self.turn:
            t.acquire()
        self.order: list[int] = list(range(n))  # live replicas, cyclic hand-off order
        self.posted: dict[int, Any] = {}
        self.results: dict[int, Any] = {}
        self.sizes: list[int] = []
        self.started = False
        self.stopped = False

    def start(self) -> None:
        """Give the first live replica its turn (the others wait in :meth:`wait_turn`)."""
        with self.mu:
            self.started = True
            first = self.order[0] if self.order else None
        if first is not None:
            self._give(first)

    def wait_turn(self, i: int) -> None:
        self.turn[i].acquire()

    def submit(self, i: int, atoms: Any) -> Any:
        """Post replica ``i``'s structure (called on its thread, with the turn); returns its
        ``(energy, forces, virial)``, the exception of a failed evaluation, or :class:`_Stopped`."""
        with self.mu:
            if self.stopped:
                return _Stopped("interrupted")
            self.posted[i] = atoms
            if len(self.posted) == len(self.order):  # (posted: live replicas only)
                self._evaluate()
                return self.results.pop(i)  # runs on: no hand-off
            nxt = self._next_unposted(i)
        self._give(nxt)
        self.turn[i].acquire()
        with self.mu:
            if i not in self.results:  # released by stop()
                self.posted.pop(i, None)
                return _Stopped("interrupted")
            return self.results.pop(i)

    def stop(self) -> None:
        """Release every waiting replica with a :class:`_Stopped` result (SIGTERM, Ctrl-C);
        from then on they only take turns on the LAMMPS token."""
        with self.mu:
            self.stopped = True
        for i in range(len(self.turn)):
            self._give(i, quiet=True)

    def leave(self, i: int) -> None:
        """Replica ``i`` is done (finished or failed; before the start: its set-up failed). If
        it held the turn, the turn goes on; if the others had all posted, their batch is
        evaluated first."""
        with self.mu:
            if i not in self.order:
                return
            k = self.order.index(i)
            self.order.remove(i)
            self.posted.pop(i, None)
            if not self.started or self.stopped or not self.order:
                return
            if len(self.posted) == len(self.order):
                self._evaluate()  # every live replica now has its result: the next one runs
                nxt = self.order[k % len(self.order)]
            else:
                nxt = self._next_unposted(i, k)
        self._give(nxt)

    def _next_unposted(self, i: int, k: int | None = None) -> int:  # holds self.mu
        """The first live replica after ``i`` (or after position ``k`` of a replica that just
        left) in cyclic order that has not posted in this step."""
        n = len(self.order)
        k = self.order.index(i) + 1 if k is None else k
        for step in range(n):
            j = self.order[(k + step) % n]
            if j not in self.posted:
                return j
        raise RuntimeError("lock step: no replica left to run")  # (a bug: all had posted)

    def _give(self, j: int, quiet: bool = False) -> None:
        try:
            self.turn[j].release()
        except RuntimeError:  # already released (only stop() may find that)
            if not (quiet or self.stopped):
                raise

    def _evaluate(self) -> None:  # holds self.mu
        idx = sorted(self.posted)
        try:
            res = self.ev.evaluate([self.posted[i] for i in idx])
            for k, i in enumerate(idx):
                self.results[i] = (float(res["energy"][k]), res["forces"][k], res["virial"][k])
        except Exception as exc:  # noqa: BLE001 (handed to every replica of the batch)
            for i in idx:
                self.results[i] = exc
        self.sizes.append(len(idx))
        self.posted = {}


class _Replica(CallbackFrame):
    """One seed's LAMMPS instance and its ``fix external`` callback."""

    def __init__(self, index: int, lmp: Any, type_map: list[str], lockstep: _LockStep,
                 token: threading.Lock, fix_id: str = FIX_ID):
        super().__init__(lmp, type_map, fix_id)
        self.i, self.lockstep, self.token = index, lockstep, token
        self.error: str | None = None

    def __call__(self, caller: Any, ntimestep: int, nlocal: int, tag: np.ndarray,
                 x: np.ndarray, f: np.ndarray) -> None:
        cell, origin = self.box()
        # the replica's own Atoms, updated in place (no copy per step): the batch evaluation
        # that reads it ends before this replica's next step can change it
        atoms = self.atoms
        atoms.cell.array[:] = cell
        self.order.positions(tag, x, nlocal, origin, atoms.arrays["positions"])
        self.token.release()  # the next replica runs LAMMPS while this one waits
        try:
            res = self.lockstep.submit(self.i, atoms)
        finally:
            self.token.acquire()
        self.calls += 1
        if isinstance(res, _Stopped):  # interrupted: coast to the chunk end without the model
            self.error = "interrupted"  # (zero forces: NaN positions could crash LAMMPS)
            f[:nlocal] = 0.0
            self.set_global.energy(0.0)
            return
        if isinstance(res, Exception):
            self.error = f"batched model evaluation failed: {res.__class__.__name__}: {res}"
            f[:nlocal] = np.nan
            self.set_global.energy(float("nan"))
            return
        energy, forces, virial = res
        self.order.forces(forces, f, nlocal)
        self.set_global(energy, virial)


def lockstep_cpu(environ: Any = None) -> int | None:
    """The one CPU that all replica threads of this process run on, or None to leave placement
    to the OS.

    Only one replica thread runs at a time, so they lose nothing by sharing a CPU, and each
    hand-off then stays on it: a hand-off that wakes a thread on another (idle) CPU cost
    ~80 us per replica-step more on the 2-vCPU development machine (lock-step ceiling at K=16,
    best of 4 interleaved: 180 us per replica-step unpinned, 96 us on one CPU). Pinned only
    with one OpenMP/torch thread (the default for small cells; more threads need more CPUs),
    more than one CPU allowed, more than one replica (:func:`run_md_batch`) and a worker slot
    given: the CPU is slot ``LPSC_LMP_SLOT`` modulo the allowed CPUs. The local sweep gives each
    of its workers its slot, so they never share a CPU; without a slot (cluster jobs, direct
    calls) placement stays with the OS, since processes that each picked a CPU could pick the
    same one. ``LPSC_LMP_PIN=0`` turns it off."""
    env = os.environ if environ is None else environ
    if env.get("LPSC_LMP_PIN", "1") == "0" or env.get("OMP_NUM_THREADS", "1") != "1":
        return None
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    slot = env.get("LPSC_LMP_SLOT", "")
    return allowed[int(slot) % len(allowed)] if slot.isdigit() else None


def _start_uninterrupted(threads: list[threading.Thread]) -> None:
    """Start ``threads`` with SIGINT/SIGTERM held back (in the main thread), so an interrupt
    never finds a thread half-started: running, but not yet ``is_alive()`` to the cleanup
    that then closes its LAMMPS under it. The threads inherit the blocked mask, so the signal
    is handled by the main thread once it is unblocked."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        for t in threads:
            t.start()
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        for t in threads:
            t.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def run_md_batch(decks: list[str], workdirs: list[Path], evaluator: BatchedEvaluator,
                 type_map: list[str], li_type: int, temperature_K: float, timestep_ps: float,
                 msd_every: int, pos_every: int, thermo_every: int,
                 before_production: Any = None
                 ) -> tuple[list[dict[str, np.ndarray] | SeedFailed], dict[str, Any]]:
    """Run the decks (one replica each) in lock step; per replica the arrays of ``result.npz``
    (as :func:`lpsc_lmp.runner.run_md`) or the :class:`SeedFailed` that stopped it. Also a
    summary (evaluator calls, mean batch size, model seconds, production seconds: from the
    start of the production runs, after ``before_production()`` if given, to their end)."""
    from .lammps_env import open_lammps

    n = len(decks)
    splits = [split_production_run(d) for d in decks]
    nsteps = splits[0][1]
    if any(s[1] != nsteps for s in splits):
        raise BatchError("the decks of a batch must have the same production run length")
    if nsteps % pos_every:
        raise ValueError(f"run length {nsteps} steps is not a multiple of pos_every {pos_every}")
    lockstep = _LockStep(evaluator, n)
    cpu = lockstep_cpu() if n > 1 else None  # (one replica: no hand-offs)
    token = threading.Lock()  # held by the thread inside LAMMPS (after stop(): all contend)
    out: list[Any] = [None] * n
    lmps: list[Any] = [None] * n
    reps: list[_Replica | None] = [None] * n
    cwd = os.getcwd()
    # set-up, one replica after another (file paths in decks are relative to the seed dir)
    for i, (setup, _) in enumerate(splits):
        try:
            os.chdir(workdirs[i])
            lmps[i] = open_lammps(log=None)
            lmps[i].commands_string(setup)
            reps[i] = _Replica(i, lmps[i], type_map, lockstep, token)
            lmps[i].set_fix_external_callback(FIX_ID, reps[i], lmps[i])
        except RouteError as exc:  # (a type map that does not fit the data file)
            out[i] = SeedFailed(str(exc))
            lockstep.leave(i)
        except Exception as exc:  # noqa: BLE001
            out[i] = exc if isinstance(exc, SeedFailed) else lammps_failure(exc)
            lockstep.leave(i)
        finally:
            os.chdir(cwd)

    def drive(i: int) -> None:
        lmp, rep = lmps[i], reps[i]
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})  # this thread only (Linux)
        lockstep.wait_turn(i)
        token.acquire()
        try:
            def recorded_error() -> None:
                if rep.error:
                    raise SeedFailed(rep.error)

            out[i] = production(lmp, nsteps, li_type, temperature_K, timestep_ps, msd_every,
                                pos_every, thermo_every, after_chunk=recorded_error)
        except SeedFailed as exc:
            out[i] = exc
        except Exception as exc:  # noqa: BLE001 (LAMMPS errors arrive as plain exceptions)
            out[i] = lammps_failure(exc)
        finally:
            token.release()
            lockstep.leave(i)
            finished[i].set()

    # Each replica's end is an Event, not Thread.is_alive()/join(): on Python 3.11 a join()
    # interrupted by KeyboardInterrupt can mark a thread that is still running as stopped
    # (threading._wait_for_tstate_lock, bpo-45274), and LAMMPS would then be closed under it.
    finished = [threading.Event() for _ in range(n)]
    threads = [threading.Thread(target=drive, args=(i,), daemon=True, name=f"replica-{i}")
               for i in range(n) if out[i] is None]
    waits = [finished[i] for i in range(n) if out[i] is None]
    if before_production is not None:  # (benchmarks: processes that start together)
        before_production()
    t_start = time.perf_counter()
    try:
        _start_uninterrupted(threads)
        lockstep.start()
        for ev in waits:
            while not ev.wait(0.2):  # wakes up for signals (KeyboardInterrupt in main thread)
                pass
    except BaseException:
        # SIGTERM / Ctrl-C: let every replica leave LAMMPS at its next chunk boundary (its
        # callbacks return at once, without the model), so no thread is inside LAMMPS or torch
        # when the process exits (that aborts in C++: "terminate called without an active
        # exception")
        lockstep.stop()
        for ev in waits:
            ev.wait(60.0)
        raise
    finally:
        if all(ev.is_set() for ev in waits):
            for lmp in lmps:
                if lmp is not None:
                    lmp.close()
    sizes = lockstep.sizes
    summary = {"batch_mode": evaluator.mode, "evaluations": evaluator.calls,
               "mean_batch": round(float(np.mean(sizes)), 3) if sizes else 0.0,
               "model_seconds": round(evaluator.seconds, 3),
               # the production runs of all replicas (after their LAMMPS set-up, one by one)
               "production_seconds": round(time.perf_counter() - t_start, 3),
               "cpu": cpu}
    return out, summary


def batch_model_files(evaluator: BatchedEvaluator) -> dict[str, str]:
    """The file the batched evaluator loaded where it is not the seed's ``model_file`` (the
    NequIP batch package), with its sha256, for the manifests."""
    f = getattr(evaluator, "batch_file", None)
    return {"batch_model_file": str(f), "batch_model_sha256": sha256_file(f)} if f else {}


def run_batch(ensemble_dir: Path, jobs: list[dict[str, Any]], meta: dict[str, Any] | None = None,
              evaluator: BatchedEvaluator | None = None) -> list[dict[str, Any]]:
    """Run the seeds of ``jobs`` (the worker's job file entries) as one batch into
    ``ensemble_dir/seeds``; return their manifests (docs/run-format.md; failures recorded)."""
    meta = meta or {}
    metas = [dict(j["meta"], **meta) for j in jobs]
    m0 = metas[0]
    check_batchable(m0["route"], m0.get("model", ""))
    if evaluator is None:
        evaluator = BatchedEvaluator(m0["architecture"], m0["model_file"],
                                     device=m0.get("device"))
    if evaluator.mode == "loop":
        print(f"  batched mode: no batched evaluator for {m0['architecture']} "
              "(loop fallback, one structure per call)", flush=True)
    sdirs, manifests = [], []
    started = datetime.now(UTC).isoformat()
    for job, m in zip(jobs, metas, strict=True):
        sdir = ensemble_dir / "seeds" / f"seed_{job['seed']:06d}"
        if sdir.exists():
            shutil.rmtree(sdir)
        sdir.mkdir(parents=True)
        (sdir / "in.lammps").write_text(job["deck"])
        sdirs.append(sdir)
        manifests.append({
            "format": 1, "seed": job["seed"], "started": started, "host": socket.gethostname(),
            "python": platform.python_version(), "packages": package_versions(),
            "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                       "DP_INTRA_OP_PARALLELISM_THREADS",
                                                       "DP_INTER_OP_PARALLELISM_THREADS")},
            "deck_sha256": hashlib.sha256(job["deck"].encode()).hexdigest(), **m,
            "device": evaluator.device, **batch_model_files(evaluator),
            "batch_size": len(jobs), "batch_mode": evaluator.mode,
            "batch_seeds": [j["seed"] for j in jobs]})
    t0 = time.perf_counter()
    results, summary = run_md_batch(
        [j["deck"] for j in jobs], sdirs, evaluator, list(m0["type_map"]), m0["li_type"],
        m0["temperature_K"], m0["timestep_ps"], m0["msd_every_steps"], m0["pos_every_steps"],
        m0["thermo_every_steps"])
    wall = time.perf_counter() - t0
    for sdir, man, res in zip(sdirs, manifests, results, strict=True):
        man["batch_summary"] = summary
        record_seed(sdir, man, res, wall)
    return manifests


# ------------------------------------------------------------------ NequIP batch package
def compile_nequip_batch(model: str, device: str = "cpu") -> Path:
    """``nequip-compile --target batch`` of a registered NequIP/Allegro model's package for
    ``device`` (cpu or cuda: 40-100 s), into :func:`batch_file_for` (written atomically)."""
    from .deploy import _nequip_compile
    from .registry import load_card

    card = load_card(model, route="python-callback")
    src = card.directory / card.files.get("package", "")
    if card.architecture not in ("nequip", "allegro") or not src.is_file():
        raise BatchError(f"{model} has no NequIP package to compile (files.package)")
    out = batch_file_for(card.deploy_file, device)
    _nequip_compile(src, out, {"target": "batch", "device": device_type(device)})
    return out


def check_evaluator(model: str, n: int = 4, device: str = "cpu", edges: str = "auto"
                    ) -> dict[str, Any]:
    """Batched vs per-structure (the model's ASE calculator) on ``n`` frames of the test set
    (different cells and positions): max abs differences, and the evaluator mode."""
    from ase.io import read

    from .paths import project_root
    from .registry import load_card

    card = load_card(model)
    every = read(project_root() / "data" / "lpsc-7net" / "test.extxyz", index=f":{2 * n}")
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


def main(argv: list[str] | None = None) -> int:
    """``python -m lpsc_lmp.batched compile MODEL [--device cpu|cuda]`` |
    ``check MODEL [--device D] [--edges auto|vesin|torch]`` (JSON on the last line)."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m lpsc_lmp.batched")
    ap.add_argument("action", choices=["compile", "check"])
    ap.add_argument("model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--edges", default="auto", choices=EDGE_METHODS)
    a = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if a.action == "compile":
        print(compile_nequip_batch(a.model, a.device))
    else:
        print(json.dumps(check_evaluator(a.model, device=a.device, edges=a.edges)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
