"""Kill/resume soak (slow): kill -9 of the whole process group at random moments, resume,
and compare bit for bit with an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lpsc_lmp.rundir import read_manifest, seed_dir, seed_state
from lpsc_lmp.runs.lock import is_locked

LPSC = [sys.executable, "-m", "lpsc_lmp.cli"]
ARGS = ["ensemble", "--model", "dp-7net", "--T", "1000", "--time", "0.4", "--fit-window",
        "0.1", "0.4", "--seeds", "6", "--workers", "2"]
SEEDS = range(1, 7)


def run(runs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*LPSC, *ARGS, "--runs", str(runs)], capture_output=True, text=True,
                          timeout=1800)


@pytest.mark.slow
def test_random_kills_then_resume_equal_an_uninterrupted_run(tmp_path):
    ref = run(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]
    ref_dir = tmp_path / "ref" / "dp-7net" / "T1000K"
    runs = tmp_path / "killed"
    edir = runs / "dp-7net" / "T1000K"
    rng = random.Random(7)
    kills = 0
    for _ in range(8):
        proc = subprocess.Popen([*LPSC, *ARGS, "--runs", str(runs)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 12.0))
        if proc.poll() is not None:
            break  # finished before this kill
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: no chance to clean up
        proc.wait()
        kills += 1
    assert kills >= 3
    final = run(runs)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "seeds: 6 used, 0 failed" in final.stdout
    for seed in SEEDS:
        assert seed_state(seed_dir(edir, seed)) == "done"
        a, b = read_manifest(seed_dir(ref_dir, seed)), read_manifest(seed_dir(edir, seed))
        with np.load(seed_dir(ref_dir, seed) / "result.npz") as za, \
                np.load(seed_dir(edir, seed) / "result.npz") as zb:
            for key in za.files:
                np.testing.assert_array_equal(za[key], zb[key], err_msg=f"seed {seed} {key}")
        assert a["fingerprint"] == b["fingerprint"]
    assert not list(edir.rglob("*.tmp")) and not list((edir / "jobs").iterdir())
    assert not is_locked(edir)
