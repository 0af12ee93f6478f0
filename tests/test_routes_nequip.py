"""The python-callback route with the bundled NequIP model (AOTInductor package for ASE).

Anything that imports nequip runs in `.venv/nequip` through `python -m lpsc_lmp.route_checks`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lpsc_lmp.errors import RegistryError
from lpsc_lmp.md.route_checks import run_check
from lpsc_lmp.models.registry import load_card
from lpsc_lmp.paths import env_python

MODEL = "nequip-7net"


def _have_model() -> bool:
    try:
        card = load_card(MODEL)
    except RegistryError:
        return False
    return env_python(card.env).exists() and card.deploy_file.is_file()


needs_nequip = pytest.mark.skipif(not _have_model(),
                                  reason=f"{MODEL} (derived by make install) or .venv/nequip "
                                         "missing")


def test_card_derives_compiled_model_from_package():
    card_file = Path(__file__).resolve().parents[1] / "potentials" / MODEL / "card.yaml"
    if not card_file.is_file():
        pytest.skip(f"{MODEL} not registered")
    card = load_card(MODEL, route="python-callback")
    assert card.route == "python-callback" and card.env == "nequip"
    assert card.raw["route"] == ["nequip", "python-callback"]
    assert card.files["deploy"].endswith(".nequip.pt2")
    assert card.raw["derive"][card.files["deploy"]]["tool"] == "nequip-compile"
    assert (card.directory / card.raw["derive"][card.files["deploy"]]["from"]).is_file()


@needs_nequip
def test_nequip_lammps_equals_ase_calculator():
    res = run_check("nequip", ["parity", MODEL, "--index", "::10", "--route",
                                "python-callback"])
    assert res["route"] == "python-callback"
    assert res["frames"] >= 5
    assert res["max_dE_eV_atom"] < 1e-6
    assert res["max_dF_eV_A"] < 1e-5
    assert res["max_dvirial_eV"] < 1e-5


@needs_nequip
def test_nequip_nve_conserves_energy_like_ase():
    res = run_check("nequip", ["nve", MODEL, "--steps", "200", "--dt-fs", "0.5", "--route",
                                "python-callback"])
    lmp, ase_ = res["lammps"], res["ase"]
    assert abs(res["etot0_diff_eV"]) < 1e-3
    assert lmp["max_dev_meV_atom"] < 2.0 * ase_["max_dev_meV_atom"] + 0.1
    assert abs(lmp["drift_meV_atom"]) < 1.0


@needs_nequip
def test_models_add_compiled_nequip(tmp_path):
    from lpsc_lmp.errors import ExportError
    from lpsc_lmp.models.add import add_model

    card = load_card(MODEL)
    add_model("nq", "nequip", "7net", card.deploy_file, root=tmp_path)
    added = load_card("nq", root=tmp_path)
    assert list(added.type_map) == ["Li", "P", "S", "Cl"]
    assert added.cutoff_A == pytest.approx(5.0)
    assert added.route == "python-callback"
    with pytest.raises(ExportError):  # a compiled NequIP file claimed as MACE
        add_model("wrong", "mace", "PBE", card.deploy_file, root=tmp_path)


@pytest.mark.slow
@needs_nequip
def test_models_add_nequip_package_compiles(tmp_path):
    from lpsc_lmp.models.add import add_model

    card = load_card(MODEL)
    add_model("nq-pkg", "nequip", "7net", card.directory / card.files["package"], root=tmp_path)
    assert (tmp_path / "nq-pkg" / "model.nequip.pt2").is_file()


@pytest.mark.slow
@needs_nequip
def test_nequip_ensemble_end_to_end(tmp_path):
    import json
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "lpsc-lmp"
    env = dict(os.environ, LPSC_LMP_RUNS=str(tmp_path), OMP_NUM_THREADS="1")
    r = subprocess.run([str(exe), "ensemble", "--model", MODEL, "--T", "1000", "--seeds", "2",
                        "--time", "0.2", "--fit-window", "0.05", "0.2", "--tdamp", "20",
                        "--route", "python-callback"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / MODEL / "T1000K" / "seeds" / "seed_000001" /
                    "manifest.json").read_text())
    assert m["status"] == "done" and m["route"] == "python-callback"
