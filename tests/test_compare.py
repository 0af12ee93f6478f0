"""Delta_XC and Delta_NN with uncertainties."""

from __future__ import annotations

import numpy as np
import pytest

from lpsc_lmp.analysis import compare as cmp

CARDS = {
    "dp-pbe": {"architecture": "deepmd", "reference": "PBE"},
    "dp-hse": {"architecture": "deepmd", "reference": "HSE06"},
    "nequip-pbe": {"architecture": "nequip", "reference": "pbe"},
    "nequip-hse": {"architecture": "nequip", "reference": "HSE"},
    "mace-pbe": {"architecture": "mace", "reference": "PBE"},
}
VALUES = {
    "dp-pbe": (2.0e-6, 0.02e-6),
    "dp-hse": (1.5e-6, 0.015e-6),
    "nequip-pbe": (3.0e-6, 0.03e-6),
    "nequip-hse": (2.0e-6, 0.02e-6),
    "mace-pbe": (3.3e-6, 0.03e-6),
}


def test_delta_xc_values_and_errors() -> None:
    xc = cmp.delta_xc(VALUES, CARDS)
    assert set(xc) == {"deepmd", "nequip"}  # mace has no HSE model
    assert xc["deepmd"].value == pytest.approx(0.5 / 1.5)
    assert xc["nequip"].value == pytest.approx(0.5)
    assert xc["deepmd"].models == ("dp-pbe", "dp-hse")
    # small relative errors: Monte Carlo agrees with first-order propagation
    lin = np.hypot(0.02 / 1.5, 2.0 * 0.015 / 1.5**2)
    assert xc["deepmd"].err_linear == pytest.approx(lin)
    assert xc["deepmd"].err_mc == pytest.approx(lin, rel=0.05)
    lo, hi = xc["deepmd"].ci95
    assert lo < xc["deepmd"].value < hi


def test_delta_nn_values() -> None:
    nn = cmp.delta_nn(VALUES, CARDS)
    assert set(nn) == {"PBE", "HSE"}
    assert nn["PBE"].value == pytest.approx((3.3 - 2.0) / 2.0)
    assert nn["HSE"].value == pytest.approx((2.0 - 1.5) / 1.5)
    assert nn["PBE"].err_mc > 0 and np.isnan(nn["PBE"].err_linear)
    assert nn["HSE"].to_dict()["models"] == ["dp-hse", "nequip-hse"]


def test_zero_errors_give_zero_spread() -> None:
    vals = {k: (v[0], 0.0) for k, v in VALUES.items()}
    xc = cmp.delta_xc(vals, CARDS, n_mc=100)
    assert xc["nequip"].err_mc == pytest.approx(0.0, abs=1e-15)


def test_card_errors() -> None:
    with pytest.raises(ValueError, match="card.yaml"):
        cmp.delta_xc({"unknown": (1.0, 0.1)}, CARDS)
    dup = dict(CARDS, **{"dp-pbe2": {"architecture": "deepmd", "reference": "PBE"}})
    with pytest.raises(ValueError, match="two PBE models"):
        cmp.delta_xc(dict(VALUES, **{"dp-pbe2": (1.0, 0.1)}), dup)


def test_normalise_functional() -> None:
    assert cmp.normalise_functional("hse06") == "HSE"
    assert cmp.normalise_functional(" PBE ") == "PBE"
    assert cmp.normalise_functional("scan") == "SCAN"


def test_load_cards(tmp_path) -> None:
    (tmp_path / "m1").mkdir()
    (tmp_path / "m1" / "card.yaml").write_text("architecture: deepmd\nreference: PBE\nx: 1\n")
    assert cmp.load_cards(tmp_path, ["m1"]) == {"m1": {"architecture": "deepmd",
                                                       "reference": "PBE"}}
    with pytest.raises(ValueError, match="not found"):
        cmp.load_cards(tmp_path, ["m2"])
    (tmp_path / "m3").mkdir()
    (tmp_path / "m3" / "card.yaml").write_text("architecture: mace\n")
    with pytest.raises(ValueError, match="reference"):
        cmp.load_cards(tmp_path, ["m3"])
