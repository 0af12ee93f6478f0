"""The cell of an ensemble (lpsc_lmp.runs.cell): the model's own cell from a short NpT run,
cached, and checked against the lattices of the model's training data."""

from __future__ import annotations

import pytest

from lpsc_lmp.models.registry import load_card
from lpsc_lmp.runs import cell
from lpsc_lmp.runs.settings import EnsembleSettings


def test_training_lattice_range_of_a_bundled_model():
    lo, hi = cell.training_lattice_range(load_card("dp-7net"))
    assert 9.5 < lo < 9.859 < hi < 10.2


def test_outside_training_warns_only_outside():
    out = {"model": "m", "a_A": 10.57, "key": {"temperature_K": 1200.0},
           "training_a_range_A": [9.69, 10.01]}
    assert "outside the lattices of its training frames (9.690-10.010 A)" in \
        cell.outside_training(out)
    assert cell.outside_training({**out, "a_A": 9.9}) is None
    assert cell.outside_training({**out, "training_a_range_A": None}) is None


def test_model_cell_runs_npt_once_and_reuses_it(tmp_path, monkeypatch):
    """A short NpT run of the default model: a lattice parameter near its starting one, with
    a spread and a pressure; the second call reads the cache (no NpT), and says when the cell
    lies outside the training lattices."""
    monkeypatch.setattr(cell, "NPT_TIME_PS", 0.4)
    s = EnsembleSettings(model="dp-7net", temperature_K=600.0, seeds=2, time_ps=1.0,
                         runs=str(tmp_path), cell="model", gpus="none")
    said: list[str] = []
    out = cell.model_cell(s, load_card("dp-7net"), echo=said.append)
    assert 9.3 < out["a_A"] < 10.5 and out["a_std_A"] >= 0.0
    assert out["key"]["time_ps"] == 0.4 and abs(out["pressure_GPa"]) < 20
    assert len(out["training_a_range_A"]) == 2
    assert (tmp_path / "dp-7net" / "cells" / "T600K.json").is_file()
    assert any("finding its own cell" in m for m in said)

    def no_npt(*_a, **_k):
        raise AssertionError("the cached cell should be reused")

    monkeypatch.setattr(cell, "run_in_env", no_npt)
    said.clear()
    again = cell.model_cell(s, load_card("dp-7net"), echo=said.append)
    assert again["a_A"] == pytest.approx(out["a_A"]) and not any("finding" in m for m in said)
