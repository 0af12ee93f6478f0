"""MSD kernels: FFT multi-origin vs brute force, single origin, drift, collective MSD."""

from __future__ import annotations

import numpy as np
import pytest

from lpsc_lmp.analysis import msd


def _brute_multi(pos: np.ndarray) -> np.ndarray:
    """O(T^2) reference: average over all origins of |r(k+m) - r(k)|^2, per atom."""
    n = pos.shape[0]
    out = np.zeros((n, pos.shape[1]))
    for m in range(n):
        d = pos[m:] - pos[: n - m]
        out[m] = np.sum(d * d, axis=2).mean(axis=0)
    return out


@pytest.mark.parametrize("n_frames", [1, 2, 3, 17, 64, 101, 257])
def test_fft_equals_bruteforce(n_frames: int) -> None:
    rng = np.random.default_rng(n_frames)
    pos = 50.0 + np.cumsum(rng.normal(size=(n_frames, 5, 3)), axis=0)  # offset tests S1 terms
    fft = msd.msd_per_atom_multi_origin(pos)
    ref = _brute_multi(pos)
    assert fft.shape == (n_frames, 5)
    np.testing.assert_allclose(fft, ref, rtol=0, atol=1e-10 * max(1.0, ref.max()))
    np.testing.assert_allclose(msd.multi_origin_msd(pos), ref.mean(axis=1), atol=1e-9)


def test_fft_float32_input_is_computed_in_float64() -> None:
    rng = np.random.default_rng(1)
    pos = np.cumsum(rng.normal(size=(200, 3, 3)), axis=0).astype(np.float32)
    ref = _brute_multi(pos.astype(np.float64))
    np.testing.assert_allclose(msd.msd_per_atom_multi_origin(pos), ref, atol=1e-9)


def test_single_origin_known_values() -> None:
    t = np.arange(5.0)
    pos = np.zeros((5, 2, 3))
    pos[:, 0, 0] = t  # atom 0 moves 1 A per frame along x
    pos[:, 1, 1] = 2 * t  # atom 1 moves 2 A per frame along y
    np.testing.assert_allclose(msd.single_origin_msd(pos), (t**2 + 4 * t**2) / 2)
    # a uniformly moving atom: multi-origin equals single-origin
    np.testing.assert_allclose(msd.multi_origin_msd(pos), (t**2 + 4 * t**2) / 2, atol=1e-10)


def test_remove_drift_recovers_undrifted_msd() -> None:
    rng = np.random.default_rng(2)
    pos = np.cumsum(rng.normal(size=(100, 8, 3)), axis=0)
    drift = np.outer(np.arange(100), [0.3, -0.2, 0.1]) + 7.0
    drifted = pos + (drift - drift[0])[:, None, :]
    assert msd.single_origin_msd(drifted)[-1] > msd.single_origin_msd(pos)[-1] + 10
    fixed = msd.remove_drift(drifted, drift)
    np.testing.assert_allclose(fixed, pos, atol=1e-12)
    with pytest.raises(ValueError, match="reference_com"):
        msd.remove_drift(pos, drift[:10])


def test_collective_msd_limits() -> None:
    rng = np.random.default_rng(3)
    n = 10
    # fully correlated: every atom makes the same move -> collective = N * tracer
    one = np.cumsum(rng.normal(size=(50, 1, 3)), axis=0)
    pos = np.repeat(one, n, axis=1)
    np.testing.assert_allclose(msd.collective_msd(pos), n * msd.single_origin_msd(pos))
    np.testing.assert_allclose(
        msd.collective_msd_multi_origin(pos), n * msd.multi_origin_msd(pos), atol=1e-9
    )
    # independent atoms: over many seeds the collective MSD averages to the tracer MSD
    seeds = np.cumsum(rng.normal(size=(2000, 20, n, 3)), axis=1)
    coll = np.mean([msd.collective_msd(s) for s in seeds], axis=0)
    trac = np.mean([msd.single_origin_msd(s) for s in seeds], axis=0)
    assert abs(coll[-1] / trac[-1] - 1) < 0.1


def test_collective_multi_origin_bruteforce() -> None:
    rng = np.random.default_rng(4)
    pos = np.cumsum(rng.normal(size=(40, 6, 3)), axis=0)
    summed = np.sum(pos - pos[0], axis=1)[:, None, :]
    ref = _brute_multi(summed)[:, 0] / 6
    np.testing.assert_allclose(msd.collective_msd_multi_origin(pos), ref, atol=1e-10)


def test_check_unwrapped_flags_wrapped_coordinates() -> None:
    cell = np.eye(3) * 10.0
    rng = np.random.default_rng(5)
    pos = 5 + np.cumsum(0.5 * rng.normal(size=(400, 4, 3)), axis=0)
    assert msd.check_unwrapped(pos, cell)
    assert not msd.check_unwrapped(np.mod(pos, 10.0), cell)


def test_bad_input_shapes() -> None:
    with pytest.raises(ValueError, match="n_frames, n_atoms, 3"):
        msd.single_origin_msd(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        msd.multi_origin_msd(np.full((4, 2, 3), np.nan))


def test_fast_len_is_5_smooth_and_minimal() -> None:
    def smooth(k: int) -> bool:
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        return k == 1

    for n in [1, 2, 7, 97, 1000, 1402, 14002]:
        f = msd._fast_len(n)
        assert f >= n and smooth(f)
        assert not any(smooth(k) for k in range(n, f))
