"""NEB barriers of the Li jumps (lpsc_lmp.study.barriers)."""

from __future__ import annotations

import numpy as np
import pytest

from lpsc_lmp.structure import A_EXPERIMENT, build_lpsc
from lpsc_lmp.study.barriers import jump_targets


def _mic(d: np.ndarray) -> np.ndarray:
    return d - A_EXPERIMENT * np.round(d / A_EXPERIMENT)


def test_jump_targets_are_the_three_argyrodite_jumps():
    atoms = build_lpsc(A_EXPERIMENT)
    li = atoms.positions[0]
    targets = jump_targets()
    dist = {j: float(np.linalg.norm(t - li)) for j, (t, _) in targets.items()}
    assert dist["doublet"] < dist["intracage"] < dist["intercage"] < 3.5
    assert targets["doublet"][1] is None  # the partner site of its own doublet is empty
    for jump in ("intracage", "intercage"):
        target, vac = targets[jump]
        assert vac is not None and vac != 0 and atoms[vac].symbol == "Li"
        # the removed Li holds the other site of the target's doublet (a 48h-48h pair)
        assert np.linalg.norm(_mic(atoms.positions[vac] - target)) == pytest.approx(
            dist["doublet"], abs=0.05)
    # no atom already sits on a target site
    for target, _ in targets.values():
        assert np.linalg.norm(_mic(atoms.positions - target), axis=1).min() > 1.0


def test_intercage_barrier_of_the_default_model():
    """A converged band between relaxed end states, with a positive barrier; the jumping Li
    ends in the target doublet, and the band has one image per half A of jump."""
    from lpsc_lmp.study.barriers import IMAGE_SPACING_A, MAX_IMAGES, MIN_IMAGES, barriers

    out = barriers("dp-7net", ("intercage",))["jumps"]["intercage"]
    assert out["ends_relaxed"] and out["converged"] and out["vacancy"]
    assert out["end_from_site_A"] < 1.0 and out["spectator_max_A"] >= 0.0
    assert out["images"] == min(MAX_IMAGES, max(MIN_IMAGES,
                                                round(out["distance_A"] / IMAGE_SPACING_A)))
    assert 0.02 < out["barrier_eV"] < 1.0
    assert out["profile_eV"][0] == 0.0 and max(out["profile_eV"]) == out["barrier_eV"]


def test_barriers_go_on_the_card_and_are_reused(tmp_path, monkeypatch):
    """Computed once, summarised on the card with the model's sha256; a later call (no run
    cache) takes them from the card; a changed model file computes again."""
    import shutil

    from lpsc_lmp.models.registry import load_card, update_card
    from lpsc_lmp.study import run as study_run
    from lpsc_lmp.study.barriers import PROTOCOL

    pot = tmp_path / "potentials"
    shutil.copytree(load_card("dp-7net").directory, pot / "dp-7net",
                    ignore=shutil.ignore_patterns("*.pth", "checkpoint*", "*.pb"))
    shutil.copy(load_card("dp-7net").deploy_file, pot / "dp-7net")
    monkeypatch.setenv("LPSC_LMP_POTENTIALS", str(pot))
    calls = []

    def fake(env, module, args):
        calls.append(args)
        return {"model": args[0], "protocol": PROTOCOL, "lattice_A": 9.859, "fmax": 0.05,
                "jumps": {"intercage": {"barrier_eV": 0.28123456, "reverse_barrier_eV": 0.33,
                                        "end_energy_eV": -0.05, "distance_A": 3.7,
                                        "converged": True, "profile_eV": [0.0, 0.28]}}}

    monkeypatch.setattr(study_run, "run_in_env", fake)
    out = study_run.all_barriers(["dp-7net"], tmp_path / "runs", echo=lambda *_: None)
    card = load_card("dp-7net").raw["barriers"]
    assert calls == [["dp-7net"]] and out["dp-7net"]["jumps"]["intercage"]["converged"]
    assert card["jumps"]["intercage"] == {"barrier_eV": 0.2812, "reverse_barrier_eV": 0.33,
                                          "end_energy_eV": -0.05, "distance_A": 3.7,
                                          "converged": True}
    shutil.rmtree(tmp_path / "runs")
    again = study_run.barriers_of("dp-7net", tmp_path / "runs", echo=lambda *_: None)
    assert len(calls) == 1 and again["from_card"] and again["jumps"] == card["jumps"]
    old = dict(load_card("dp-7net").raw["barriers"], protocol=PROTOCOL - 1)
    update_card("dp-7net", "barriers", old)  # computed by an older protocol
    study_run.barriers_of("dp-7net", tmp_path / "runs", echo=lambda *_: None)
    assert len(calls) == 2 and load_card("dp-7net").raw["barriers"]["protocol"] == PROTOCOL
    deploy = load_card("dp-7net").deploy_file
    deploy.write_bytes(deploy.read_bytes() + b"\n")  # another model file
    study_run.barriers_of("dp-7net", tmp_path / "runs", echo=lambda *_: None)
    assert len(calls) == 3


def test_barriers_command_marks_unconverged_bands(monkeypatch):
    from click.testing import CliRunner

    from lpsc_lmp.cli import main
    from lpsc_lmp.study import run as study_run

    fake = {"t": {"jumps": {"doublet": {"unstable_end": True},
                            "intracage": {"barrier_eV": 0.1, "converged": True},
                            "intercage": {"barrier_eV": 4.04, "converged": False}}}}
    monkeypatch.setattr(study_run, "all_barriers", lambda *a, **k: fake)
    r = CliRunner().invoke(main, ["barriers", "t"])
    assert r.exit_code == 0, r.output
    assert "no metastable end" in r.output and "4.040 *" in r.output
    assert "did not converge" in r.output
