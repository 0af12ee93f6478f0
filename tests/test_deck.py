"""Decks rendered from templates/: golden output, strict variables, user edits take effect."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lpsc_lmp.errors import TemplateError
from lpsc_lmp.md.deck import split_production_run
from lpsc_lmp.paths import templates_dir
from lpsc_lmp.templating import render_template

GOLDEN = Path(__file__).parent / "golden"

CONTEXT = {
    "data_file": "DATA", "route": "deepmd", "model_file": "MODEL",
    "type_map": ["Li", "P", "S", "Cl"], "li_type": 1, "neighbor_skin_A": 2.0,
    "timestep_ps": 0.001, "temperature_K": 700.0, "seed": 42, "thermostat": "nose-hoover",
    "tdamp_ps": 0.1, "msd_every": 10, "thermo_every": 100, "nsteps": 70000,
}


@pytest.mark.parametrize("name,extra", [("nvt_deepmd_nh", {}),
                                        ("nvt_deepmd_langevin", {"thermostat": "langevin"})])
def test_golden_decks(name, extra):
    text = render_template({**CONTEXT, **extra}).text
    golden = GOLDEN / f"{name}.lmp"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_deck_ends_with_production_run():
    setup, n = split_production_run(render_template(CONTEXT).text)
    assert n == 70000
    assert "velocity        all create 700.0 42" in setup
    assert "pair_style      deepmd MODEL" in setup
    assert "\nrun" not in setup


def test_undefined_variable_is_an_error():
    ctx = dict(CONTEXT)
    del ctx["seed"]
    with pytest.raises(TemplateError, match="'seed' is undefined"):
        render_template(ctx)


def test_unknown_thermostat_is_an_error():
    with pytest.raises(TemplateError, match="unknown thermostat"):
        render_template({**CONTEXT, "thermostat": "berendsen"})


def test_edited_template_copy_is_used(tmp_path):
    copy = tmp_path / "tpl"
    shutil.copytree(templates_dir(), copy)
    deck = copy / "nvt.lmp.j2"
    deck.write_text(deck.read_text().replace("neigh_modify    every 1",
                                             "neigh_modify    every 2"))
    assert "neigh_modify    every 2" in render_template(CONTEXT, directory=copy).text
    deck.write_text(deck.read_text() + "{% if %}\n")
    with pytest.raises(TemplateError, match="line"):
        render_template(CONTEXT, directory=copy)


def test_missing_template_and_missing_run(tmp_path):
    with pytest.raises(TemplateError, match="not found"):
        render_template(CONTEXT, "nope.j2")
    with pytest.raises(TemplateError, match="must end with"):
        split_production_run("units metal\nrun 10\nprint done\n")
