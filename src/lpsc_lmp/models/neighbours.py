"""Neighbour lists of many small periodic frames at once, as the tensors of a batched graph.

Used by the batched evaluator (:mod:`lpsc_lmp.models.batch_eval`) to build MACE and NequIP
graphs directly, without the models' per-frame ASE conversions: vesin per frame on a CPU, one
dense torch neighbour list for all frames on a GPU (:func:`periodic_edges`). Units: A.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
