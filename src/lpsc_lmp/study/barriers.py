"""Li jump barriers of the ordered cell by nudged elastic bands (ASE), for any registered model
or teacher, in its own environment.

The 52-atom cell keeps one Li per 48h doublet; the jumps of the argyrodite Li sublattice
(de Klerk et al., Chem. Mater. 2016) are taken for the first Li of the cell, to the nearest
48h site of each kind: ``doublet`` (the empty other site of its own 48h-24g-48h doublet),
``intracage`` (a site of another doublet of the same cage, the 12 48h sites around one 4d S)
and ``intercage`` (a site of a doublet of a neighbouring cage). A doublet holds one Li, so the
intracage and intercage jumps go into a vacant doublet: the Li of the target doublet is removed
(a Li vacancy, 51 atoms; the models carry no charge, so no background is needed) in both end
states. End points are relaxed at fixed cell (BFGS), the end from the relaxed start with the
jumping Li moved to the target. The Li sublattice of these models is soft: when one Li moves,
its neighbours may relax to the other side of their own doublet, and two end states that differ
in more than the jump make a band of a concerted move that does not converge. So the start is
then relaxed again from the end state with the jumping Li put back, and the end again from that
start, until no other atom moves more than :data:`SPECTATOR_A` between the ends (at most
:data:`ROUNDS` rounds; the largest such move is reported). A band of one image per
:data:`IMAGE_SPACING_A` of jump length (:data:`MIN_IMAGES` to :data:`MAX_IMAGES` interior
images, IDPP interpolation) is relaxed by FIRE, first without a climbing image to
:data:`FMAX_PLAIN` eV/A, then with one to :data:`FMAX` eV/A, :data:`STEPS` steps in all. The
barrier is the highest image energy minus the initial one (and, reversed, minus the final one);
an end point that relaxes back to within :data:`SAME_SITE_A` of the start is reported as having
no metastable end state instead of a barrier (the end states are those of the model: each model
relaxes them its own way). ``end_from_site_A`` is the distance of the relaxed end from the
nearer 48h site of the target doublet. Energies in eV, distances in A; the lattice is the
experimental one (a = 9.859 A) for every model, so barriers compare at one geometry.

``python -m lpsc_lmp.study.barriers MODEL [JUMP ...]`` prints the barriers as JSON.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ..environments import json_main
from ..models.calculators import load_calculator
from ..models.registry import load_card_at
from ..structure import A_EXPERIMENT, build_lpsc, doublet_pairs, li_48h_sites

JUMPS = ("doublet", "intracage", "intercage")
#: Version of the protocol below; stored barriers of another version are computed again.
PROTOCOL = 2
#: Interior images: one per this jump length (A), within MIN_IMAGES..MAX_IMAGES.
IMAGE_SPACING_A = 0.5
MIN_IMAGES = 5
MAX_IMAGES = 9
FMAX = 0.05
#: The band is first relaxed without a climbing image to this force (eV/A).
FMAX_PLAIN = 0.2
#: FIRE steps of the band, both stages together.
STEPS = 600
#: Optimiser steps for the end points (they must be minima for the barrier to mean anything).
RELAX_STEPS = 2000
#: An end point that relaxes to within this distance (A) of the start is the start.
SAME_SITE_A = 1.0
#: Largest move (A) of an atom other than the jumping Li between consistent end states.
SPECTATOR_A = 0.5
#: Rounds of relaxing start and end from each other.
ROUNDS = 3


def _mic(d: np.ndarray, a: float) -> np.ndarray:
    return d - a * np.round(d / a)


def jump_targets(a: float = A_EXPERIMENT, li: int = 0
                 ) -> dict[str, tuple[np.ndarray, int | None]]:
    """Each jump of Li ``li``: the target position (A, nearest periodic image to the Li) and
    the index of the Li to remove so that the target doublet is vacant (None: none needed)."""
    from ase.spacegroup import crystal

    atoms = build_lpsc(a)
    sites = li_48h_sites(a)
    pos = atoms.positions[li]
    dist = np.linalg.norm(_mic(sites - pos, a), axis=1)
    own = int(np.argmin(dist))
    holder = {int(np.argmin(np.linalg.norm(_mic(sites - p, a), axis=1))): i
              for i, (p, s) in enumerate(zip(atoms.positions, atoms.get_chemical_symbols(),
                                             strict=True)) if s == "Li"}
    occupied = set(holder)
    partner = {int(i): int(j) for i, j in doublet_pairs(sites, a)}
    partner.update({j: i for i, j in list(partner.items())})
    s4d = crystal(["S"], basis=[(0.25, 0.25, 0.75)], spacegroup=216,
                  cellpar=[a, a, a, 90, 90, 90]).positions
    cage = np.array([int(np.argmin(np.linalg.norm(_mic(s4d - p, a), axis=1))) for p in sites])
    empty = [k for k in range(len(sites)) if k not in occupied]
    vec = {k: _mic(sites[k] - pos, a) for k in empty}

    def nearest(cands: list[int]) -> tuple[np.ndarray, int | None]:
        k = min(cands, key=lambda c: np.linalg.norm(vec[c]))
        return pos + vec[k], holder.get(partner[k])

    return {
        "doublet": (pos + vec[partner[own]], None),
        "intracage": nearest([k for k in empty if cage[k] == cage[own] and k != partner[own]]),
        "intercage": nearest([k for k in empty if cage[k] != cage[own]]),
    }


def _relax(atoms: Any, calc: Any) -> tuple[Any, bool]:
    """Relax at fixed cell to :data:`FMAX`; returns the atoms and whether it converged."""
    from ase.optimize import BFGS

    atoms.calc = calc
    return atoms, bool(BFGS(atoms, logfile=None).run(fmax=FMAX / 2, steps=RELAX_STEPS))


def _moved(a_atoms: Any, b_atoms: Any, cell: float) -> np.ndarray:
    return np.linalg.norm(_mic(b_atoms.positions - a_atoms.positions, cell), axis=1)


def end_states(start: Any, li: int, target: np.ndarray, calc: Any, a: float = A_EXPERIMENT
               ) -> tuple[Any, Any, float, bool]:
    """Relaxed start and end of a jump of Li ``li`` to ``target`` (A) that differ in little
    but that jump (see the module docstring): (start, end, largest move of another atom
    between them in A, whether every relaxation converged)."""
    start, ok = _relax(start, calc)
    for round_ in range(ROUNDS):
        end = start.copy()
        end.positions[li] = target
        end, ok_end = _relax(end, calc)
        ok = ok and ok_end
        others = np.delete(_moved(start, end, a), li).max()
        if others < SPECTATOR_A or round_ == ROUNDS - 1:
            break
        back = end.copy()
        back.positions[li] = start.positions[li]
        start, ok_back = _relax(back, calc)
        ok = ok and ok_back
    return start, end, float(others), ok


def _band(images: list[Any]) -> bool:
    """Relax a band in two stages; whether the climbing stage reached :data:`FMAX`."""
    from ase.mep import NEB
    from ase.optimize import FIRE

    band = NEB(images, climb=False, method="improvedtangent", allow_shared_calculator=True)
    band.interpolate("idpp", mic=True)
    plain = FIRE(band, logfile=None)
    plain.run(fmax=FMAX_PLAIN, steps=STEPS // 2)
    band.climb = True
    return bool(FIRE(band, logfile=None).run(fmax=FMAX, steps=STEPS - plain.nsteps))


def barrier(calc: Any, jump: str, a: float = A_EXPERIMENT, li: int = 0) -> dict[str, Any]:
    """NEB barrier of one jump (see the module docstring)."""
    target, vacancy = jump_targets(a, li)[jump]
    start = build_lpsc(a)
    sites = [target]
    if vacancy is not None:
        sites.append(start.positions[vacancy].copy())  # the other site of the target doublet
        del start[vacancy]
        li -= int(vacancy < li)
    start, end, others, relaxed = end_states(start, li, target, calc, a)
    hop = float(np.linalg.norm(_mic(end.positions[li] - start.positions[li], a)))
    if hop < SAME_SITE_A:
        return {"jump": jump, "unstable_end": True, "end_hop_A": hop,
                "vacancy": vacancy is not None, "ends_relaxed": relaxed,
                "target_distance_A": float(np.linalg.norm(_mic(target - start.positions[li],
                                                               a)))}
    n_images = int(np.clip(round(hop / IMAGE_SPACING_A), MIN_IMAGES, MAX_IMAGES))
    images = [start] + [start.copy() for _ in range(n_images)] + [end]
    for im in images[1:-1]:
        im.calc = calc
    converged = _band(images)
    energies = np.array([im.get_potential_energy() for im in images])
    return {"jump": jump, "distance_A": hop, "vacancy": vacancy is not None,
            "end_from_site_A": float(min(np.linalg.norm(_mic(end.positions[li] - s, a))
                                         for s in sites)),
            "spectator_max_A": others,
            "barrier_eV": float(energies.max() - energies[0]),
            "reverse_barrier_eV": float(energies.max() - energies[-1]),
            "end_energy_eV": float(energies[-1] - energies[0]),
            "profile_eV": [float(e - energies[0]) for e in energies],
            "converged": converged, "ends_relaxed": relaxed,
            "downhill": bool(energies[1:-1].min() < min(energies[0], energies[-1]) - FMAX),
            "fmax": FMAX, "images": n_images}


def describe_jump(r: dict[str, Any], detail: bool = True) -> str:
    """One jump of a barrier table: "no metastable end", "-" (not computed) or the barrier
    (eV). ``detail`` adds the end energy, hop, offset of the end and largest other move, and
    marks a band that did not converge ("band not converged: "); without it such a barrier
    ends in " *"."""
    if r.get("unstable_end"):
        return "no metastable end"
    if "barrier_eV" not in r:
        return "-"
    converged = r.get("converged", True)
    if not detail:
        return f"{r['barrier_eV']:.3f}" + ("" if converged else " *")
    extra = f", off {r['end_from_site_A']:.1f} A" if "end_from_site_A" in r else ""
    if "spectator_max_A" in r:
        extra += f", others {r['spectator_max_A']:.1f} A"
    return (("" if converged else "band not converged: ")
            + f"{r['barrier_eV']:.3f} (end {r['end_energy_eV']:+.2f} eV, hop "
            f"{r['distance_A']:.1f} A{extra})")


def barriers(model: str, jumps: tuple[str, ...] = JUMPS) -> dict[str, Any]:
    """The barriers of ``jumps`` for a registered model (in its own environment)."""
    import torch

    torch.set_num_threads(1)
    card = load_card_at(model, route="python-callback") if model else None
    calc = load_calculator(card.architecture, card.require_deploy_file())
    return {"model": card.name, "protocol": PROTOCOL, "lattice_A": A_EXPERIMENT, "fmax": FMAX,
            "steps": STEPS, "jumps": {j: barrier(calc, j) for j in jumps}}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m lpsc_lmp.study.barriers MODEL [JUMP ...]", file=sys.stderr)
        return 2
    return json_main(lambda: barriers(args[0], tuple(args[1:]) or JUMPS))


if __name__ == "__main__":
    sys.exit(main())
