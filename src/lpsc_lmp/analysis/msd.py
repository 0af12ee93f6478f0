"""Mean squared displacements of Li from unwrapped trajectories.

Units: positions in Angstrom, MSD in Angstrom^2; the functions here are time-agnostic (one
value per stored frame), the caller owns the time axis (ps in this project).

Conventions
-----------
* ``pos`` arrays are ``(n_frames, n_atoms, 3)`` *unwrapped* Cartesian positions (image flags
  applied). Wrapped coordinates give a bounded, meaningless MSD; :func:`check_unwrapped` flags
  the obvious symptom (a jump of more than half a cell between consecutive frames).
* Single-origin MSD (the paper's Eq. 1, and what LAMMPS ``compute msd`` writes):
  ``MSD(t_k) = 1/N sum_i |r_i(t_k) - r_i(t_0)|^2``.
* Multi-origin MSD averages over every time origin:
  ``MSD(m) = 1/N sum_i 1/(T-m) sum_{k=0}^{T-m-1} |r_i(k+m) - r_i(k)|^2``, computed per atom
  with the FFT algorithm of Calandrini et al. / nMoldyn (``S1 - 2 S2``, with ``S2`` the
  autocorrelation obtained by zero-padded FFT): O(T log T) per atom, float64 throughout.
* Collective (charge) MSD, normalised per ion: ``|sum_i Delta r_i(t)|^2 / N_Li``. For
  uncorrelated ions its expectation equals the tracer MSD, so ``D_sigma = slope / 6`` and the
  Haven ratio is ``D_tracer / D_sigma``. It equals ``N_Li * MSD_com`` with ``MSD_com`` the MSD
  of the Li centre of mass.
"""

from __future__ import annotations

import numpy as np

from ..errors import AnalysisError

__all__ = [
    "check_unwrapped",
    "collective_msd",
    "collective_msd_multi_origin",
    "msd_per_atom_multi_origin",
    "multi_origin_msd",
    "remove_drift",
    "single_origin_msd",
]


def _as_traj(pos: np.ndarray) -> np.ndarray:
    """Return ``pos`` as float64 ``(n_frames, n_atoms, 3)`` or raise ``ValueError``."""
    arr = np.asarray(pos, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise AnalysisError(
            f"positions must have shape (n_frames, n_atoms, 3), got {arr.shape}; "
            "transpose to frame-major order"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise AnalysisError(f"positions are empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise AnalysisError("positions contain NaN/inf; re-read the trajectory")
    return arr


def remove_drift(pos: np.ndarray, reference_com: np.ndarray) -> np.ndarray:
    """Subtract the displacement of a reference centre of mass from every atom.

    Args:
        pos: unwrapped positions, ``(n_frames, n_atoms, 3)``, Angstrom.
        reference_com: ``(n_frames, 3)`` unwrapped COM trajectory of the reference (e.g. the
            P/S/Cl framework, ``framework_com`` in ``result.npz``), Angstrom.

    Returns:
        ``pos - (com(t) - com(0))`` as float64, Angstrom. The absolute origin is unchanged.
    """
    arr = _as_traj(pos)
    com = np.asarray(reference_com, dtype=np.float64)
    if com.shape != (arr.shape[0], 3):
        raise AnalysisError(
            f"reference_com must have shape ({arr.shape[0]}, 3) to match positions, got {com.shape}"
        )
    return arr - (com - com[0])[:, None, :]


def check_unwrapped(pos: np.ndarray, cell: np.ndarray) -> bool:
    """Return ``False`` when some atom jumps by more than half a cell vector between frames.

    A jump that large between stored frames is the signature of wrapped coordinates (or of a
    frame interval far too long). ``cell`` is ``(3, 3)`` with rows as vectors, Angstrom.
    """
    arr = _as_traj(pos)
    if arr.shape[0] < 2:
        return True
    half = 0.5 * np.min(np.linalg.norm(np.asarray(cell, dtype=np.float64), axis=1))
    step = np.linalg.norm(np.diff(arr, axis=0), axis=2)
    return bool(np.max(step) < half)


def single_origin_msd(pos: np.ndarray) -> np.ndarray:
    """Atom-averaged MSD from the first frame, ``(n_frames,)`` in Angstrom^2."""
    arr = _as_traj(pos)
    disp = arr - arr[0]
    return np.mean(np.sum(disp * disp, axis=2), axis=1)


def _fast_len(n: int) -> int:
    """Smallest 5-smooth integer ``>= n`` (fast lengths for pocketfft)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = p35
            while q < n:
                q *= 2
            best = min(best, q)
            p35 *= 3
        p5 *= 5
    return best


def msd_per_atom_multi_origin(pos: np.ndarray) -> np.ndarray:
    """Multi-origin MSD of each atom, ``(n_frames, n_atoms)`` in Angstrom^2.

    FFT algorithm (Calandrini et al. 2011, nMoldyn): for lag ``m`` and ``T`` frames,
    ``MSD(m) = S1(m) - 2 S2(m)`` with
    ``S1(m) = 1/(T-m) sum_{k=0}^{T-m-1} (x(k+m)^2 + x(k)^2)`` (prefix sums) and
    ``S2(m) = 1/(T-m) sum_{k=0}^{T-m-1} x(k+m) x(k)`` (autocorrelation by FFT zero-padded
    to at least ``2T``, so there is no circular wrap-around). Summed over x, y, z.
    """
    arr = _as_traj(pos)
    n = arr.shape[0]
    m = np.arange(n)
    norm = (n - m).astype(np.float64)[:, None]
    nfft = _fast_len(2 * n)
    spec = np.fft.rfft(arr, n=nfft, axis=0)
    acf = np.fft.irfft(spec * np.conj(spec), n=nfft, axis=0)[:n]  # (n, atoms, 3)
    s2 = np.sum(acf, axis=2) / norm
    sq = np.sum(arr * arr, axis=2)  # (n, atoms)
    prefix = np.concatenate([np.zeros((1, sq.shape[1])), np.cumsum(sq, axis=0)], axis=0)
    total = prefix[-1]
    s1 = (prefix[n - m] + (total[None, :] - prefix[m])) / norm
    out = s1 - 2.0 * s2
    out[0] = 0.0
    return out


def multi_origin_msd(pos: np.ndarray) -> np.ndarray:
    """Atom-averaged multi-origin MSD, ``(n_frames,)`` in Angstrom^2 (see module docstring)."""
    return np.mean(msd_per_atom_multi_origin(pos), axis=1)


def _collective_traj(pos: np.ndarray) -> np.ndarray:
    """Sum of Li displacements from frame 0, ``(n_frames, 1, 3)``, Angstrom."""
    arr = _as_traj(pos)
    return np.sum(arr - arr[0], axis=1)[:, None, :]


def collective_msd(pos: np.ndarray) -> np.ndarray:
    """Single-origin collective MSD ``|sum_i Delta r_i(t)|^2 / N``, ``(n_frames,)``, A^2.

    Per seed this is one realisation of a single collective coordinate and is very noisy; its
    seed average is what estimates ``6 D_sigma t``.
    """
    n_atoms = np.asarray(pos).shape[1]
    c = _collective_traj(pos)[:, 0, :]
    return np.sum(c * c, axis=1) / n_atoms


def collective_msd_multi_origin(pos: np.ndarray) -> np.ndarray:
    """Multi-origin collective MSD ``<|sum_i Delta r_i(lag)|^2> / N``, ``(n_frames,)``, A^2."""
    n_atoms = np.asarray(pos).shape[1]
    return msd_per_atom_multi_origin(_collective_traj(pos))[:, 0] / n_atoms
