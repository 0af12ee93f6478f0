"""Sweeps, the shared seed queue, GPU pinning, retries and locks, with real LAMMPS workers.

The ensembles use a stand-in model: a registered card whose deck (a copy of the project's
templates with ``pair/deepmd.j2`` replaced by ``pair_style zero``) runs the real worker, runner and
LAMMPS, only with zero forces, so a seed of 2 ps takes well under a second and every scheduling
path (queue, batches, workers dying, retries, locks) is exercised for real.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lpsc_lmp.devices import resolve_gpus
from lpsc_lmp.paths import templates_dir
from lpsc_lmp.rundir import seed_dir, seed_state
from lpsc_lmp.runs.local import plan_slots
from lpsc_lmp.runs.plan import plan_seeds
from lpsc_lmp.runs.progress import Progress
from lpsc_lmp.runs.settings import EnsembleSettings
from lpsc_lmp.runs.sweep import parse_list

LPSC = [sys.executable, "-m", "lpsc_lmp.cli"]

CARD = """name: {name}
architecture: deepmd
reference: none
type_map: [Li, P, S, Cl]
cutoff_A: 5.0
route: deepmd
env: dp
files: {{deploy: model.pth}}
"""


@pytest.fixture()
def fake(tmp_path, monkeypatch):
    """Two stand-in models (zero forces), a template dir, a runs dir; env set for subprocesses."""
    pots = tmp_path / "potentials"
    for name in ("zero-a", "zero-b"):
        (pots / name).mkdir(parents=True)
        (pots / name / "card.yaml").write_text(CARD.format(name=name))
        (pots / name / "model.pth").write_text(f"stand-in {name}\n")
    tpl = tmp_path / "tpl"
    shutil.copytree(templates_dir(), tpl)
    (tpl / "pair" / "deepmd.j2").write_text(
        "pair_style      zero 5.0\npair_coeff      * *\n"
        "{% if kill_seed is defined and seed == kill_seed %}"
        'shell           "test -f {{ marker }} || (touch {{ marker }}; kill -9 $PPID)"\n'
        "{% endif %}")
    env = {"LPSC_LMP_POTENTIALS": str(pots), "LPSC_LMP_DETECTED_GPUS": ""}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return {"pots": pots, "tpl": tpl, "runs": tmp_path / "runs", "tmp": tmp_path}


def base_cmd(fake, *extra):
    return [*LPSC, "sweep", "--models", "zero-a,zero-b", "--temps", "700 1000", "--seeds", "3",
            "--time", "2", "--fit-window", "0.5", "2", "--templates", str(fake["tpl"]),
            "--runs", str(fake["runs"]), *extra]


def manifest(edir: Path, seed: int) -> dict:
    return json.loads((edir / "seeds" / f"seed_{seed:06d}" / "manifest.json").read_text())


def test_sweep_runs_every_ensemble_and_resumes(fake):
    out = subprocess.run(base_cmd(fake, "--workers", "2", "--seeds", "2"), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "no GPU visible: 2 worker(s) on CPU" in out.stdout
    assert out.stdout.count("no GPU visible") == 1
    # not a TTY: plain progress lines, one per seed, with the counts
    assert "8/8 seeds: 8 done, 0 failed, 0 running, 0 todo" in out.stdout
    assert "\r" not in out.stdout
    for model in ("zero-a", "zero-b"):
        for T in ("700", "1000"):
            edir = fake["runs"] / model / f"T{T}K"
            for seed in (1, 2):
                m = manifest(edir, seed)
                assert m["status"] == "done" and m["attempt"] == 1
                assert m["temperature_K"] == float(T) and m["model"] == model
                assert m["cuda_visible_devices"] == ""
            assert not (edir / "jobs").exists() or not list((edir / "jobs").iterdir())
            assert json.loads((edir / ".lock").read_text())["seeds"] == 2
    # a rerun touches nothing; more seeds extend every ensemble
    mt = (fake["runs"] / "zero-a" / "T700K" / "seeds" / "seed_000001" / "manifest.json")
    before = mt.stat().st_mtime_ns
    again = subprocess.run(base_cmd(fake, "--seeds", "2"), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("2 done, 0 failed, 0 to run") == 4
    assert mt.stat().st_mtime_ns == before
    # status sees all four ensembles
    st = subprocess.run([*LPSC, "status", str(fake["runs"])], capture_output=True, text=True)
    assert st.returncode == 0, st.stderr
    rows = [ln for ln in st.stdout.splitlines() if ln.startswith("zero-")]
    assert len(rows) == 4 and all(ln.split()[3] == "2" for ln in rows)
    assert "total" in st.stdout and "     8 " in st.stdout


def test_gpu_pinning_round_robin(fake, monkeypatch):
    """Injected GPUs 0,1: 2 workers, one per GPU; each seed records its GPU."""
    env = dict(os.environ, LPSC_LMP_DETECTED_GPUS="0,1")
    cmd = base_cmd(fake, "--workers-per-gpu", "2", "--workers", "2")
    cmd[cmd.index("--models") + 1] = "zero-a"
    cmd[cmd.index("--temps") + 1] = "700"
    cmd[cmd.index("--seeds") + 1] = "4"
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "2 worker(s) on GPU(s) 0,1, round robin" in out.stdout
    edir = fake["runs"] / "zero-a" / "T700K"
    used = [manifest(edir, s)["cuda_visible_devices"] for s in range(1, 5)]
    assert set(used) == {"0", "1"}


def test_slot_planning_and_gpu_resolution():
    assert plan_slots(None, [], 1)[0] == [""]
    assert plan_slots(3, [], 2)[0] == ["", "", ""]
    assert plan_slots(None, ["0", "1"], 2)[0] == ["0", "1", "0", "1"]
    slots, note = plan_slots(5, ["0", "1"], 2)
    assert slots == ["0", "1", "0", "1"] and "capped" in note
    assert plan_slots(3, ["7"], 4)[0] == ["7", "7", "7"]
    assert resolve_gpus("none", detect=lambda: ["0"]) == []
    assert resolve_gpus("auto", detect=lambda: ["0", "3"]) == ["0", "3"]
    assert resolve_gpus("2,3") == ["2", "3"]
    with pytest.raises(ValueError):
        resolve_gpus("0;rm -rf")
    assert parse_list("700, 800 900,700", float) == [700.0, 800.0, 900.0]


def test_retry_policy_crash(fake):
    """A crashing seed: failed at attempt 1, retried once by the next command (attempt 2), then
    stays failed and counted; --retry-failed reruns it anyway."""
    deck = fake["tpl"] / "nvt.lmp.j2"
    deck.write_text(deck.read_text().replace(
        "# Li MSD from t = 0", "{% if seed == 2 %}fix bad all no_such_fix_style{% endif %}\n"
        "# Li MSD from t = 0"))
    cmd = base_cmd(fake, "--workers", "1")
    cmd[cmd.index("--models") + 1] = "zero-a"
    cmd[cmd.index("--temps") + 1] = "1000"
    edir = fake["runs"] / "zero-a" / "T1000K"
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "2 done, 1 failed" in first.stdout
    m = manifest(edir, 2)
    assert m["status"] == "failed" and m["attempt"] == 1 and "LAMMPS error" in m["reason"]
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert "2 done, 0 failed, 1 to run (1 of them retries)" in second.stdout
    assert manifest(edir, 2)["attempt"] == 2 and manifest(edir, 2)["status"] == "failed"
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert "2 done, 1 failed, 0 to run" in third.stdout
    assert manifest(edir, 2)["attempt"] == 2
    forced = subprocess.run([*cmd, "--retry-failed"], capture_output=True, text=True, timeout=300)
    assert "2 done, 0 failed, 1 to run" in forced.stdout
    assert manifest(edir, 2)["attempt"] == 3
    s, counts = plan_seeds(edir, 3, max_retries=5)
    assert s == [(2, 4)] and counts == {"done": 2, "failed": 0, "retry": 1, "todo": 0}


def test_killed_worker_seed_is_rerun_and_corrupt_result_redone(fake):
    """Seed 2's worker is SIGKILLed once (from inside its deck): the seed is recorded, requeued
    in the same run, and finishes as attempt 2; the seeds queued behind it are not charged.
    Then a truncated result.npz is found by its checksum and redone; nothing else is touched."""
    tpl = fake["tpl"] / "nvt.lmp.j2"
    tpl.write_text(tpl.read_text().replace("{% include", "{% set kill_seed = 2 %}"
                                           "{% set marker = '" + str(fake["tmp"] / "killed")
                                           + "' %}{% include", 1))
    cmd = base_cmd(fake, "--workers", "1", "--seeds", "4")
    cmd[cmd.index("--models") + 1] = "zero-b"
    cmd[cmd.index("--temps") + 1] = "700"
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (fake["tmp"] / "killed").exists()
    assert "seed 2: worker died (code -9), requeued as attempt 2" in out.stdout
    edir = fake["runs"] / "zero-b" / "T700K"
    atts = {s: manifest(edir, s)["attempt"] for s in (1, 2, 3, 4)}
    assert atts == {1: 1, 2: 2, 3: 1, 4: 1}
    assert all(manifest(edir, s)["status"] == "done" for s in (1, 2, 3, 4))
    # corrupt seed 3's result
    res = edir / "seeds" / "seed_000003" / "result.npz"
    res.write_bytes(res.read_bytes()[:100])
    assert seed_state(res.parent) == "todo"
    keep = {s: (edir / "seeds" / f"seed_{s:06d}" / "manifest.json").stat().st_mtime_ns
            for s in (1, 2, 4)}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert "3 done, 0 failed, 1 to run" in again.stdout
    assert seed_state(res.parent) == "done" and manifest(edir, 3)["attempt"] == 2
    assert keep == {s: (edir / "seeds" / f"seed_{s:06d}" / "manifest.json").stat().st_mtime_ns
                    for s in (1, 2, 4)}


def test_second_sweep_on_same_directory_is_refused(fake):
    """A second run on a directory in use stops at once, in one line; SIGTERM stops the first
    with the resume hint, keeping what finished."""
    cmd = base_cmd(fake, "--workers", "1", "--time", "5000")
    cmd[cmd.index("--models") + 1] = "zero-a"
    cmd[cmd.index("--temps") + 1] = "700"
    i = cmd.index("--fit-window")
    cmd[i + 1:i + 3] = ["5", "40"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    edir = fake["runs"] / "zero-a" / "T700K"
    deadline = time.time() + 120
    while not (edir / "seeds").exists():
        assert time.time() < deadline and first.poll() is None
        time.sleep(0.1)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    err = [ln for ln in second.stderr.splitlines() if ln.startswith("Error")]
    assert len(err) == 1 and f"PID {first.pid}" in err[0] and "in use by another run" in err[0]
    # status shows it running meanwhile
    st = subprocess.run([*LPSC, "status", str(edir)], capture_output=True, text=True)
    assert "(running)" in st.stdout
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 130
    assert "rerun the same command to resume" in out
    assert not list(edir.rglob("*.tmp")) and not list((edir / "jobs").iterdir())
    assert all(seed_state(seed_dir(edir, s)) in ("done", "todo") for s in (1, 2, 3))


def test_progress_line_tty_and_plain():
    clock = iter(range(0, 1000, 10)).__next__
    buf = io.StringIO()
    p = Progress(4, 2, stream=buf, tty=False, clock=clock)
    p.started(2)
    p.finished("done", wall_s=100.0, time_ps=70.0, label="m/T700K seed 1")
    line = buf.getvalue().splitlines()[-1]
    assert line.startswith("m/T700K seed 1 done in 100.0 s | 1/4 seeds: 1 done, 0 failed, "
                           "1 running, 2 todo")
    # 70 ps / 100 s per worker x 2 workers = 120.96 ns/day; ETA 3 left x 100 s / 2
    assert "120.96 ns/day" in line and "ETA 2m30s" in line
    tty = io.StringIO()
    q = Progress(2, 1, stream=tty, tty=True, clock=clock)
    q.started()
    q.finished("failed", label="m/T700K seed 2: boom")
    text = tty.getvalue()
    assert "\r\033[K" in text and "m/T700K seed 2: boom failed" in text
    q.close()
    assert tty.getvalue().endswith("\n")


def test_progress_counts_a_lock_step_batch_once():
    """The K seeds of one batch all record the batch's wall time: each counts 1/K of it, so
    ns/day is the rate the worker really ran at (K x one seed's), not K times too low."""
    buf = io.StringIO()
    p = Progress(8, 2, stream=buf, tty=False, clock=iter(range(0, 1000, 10)).__next__)
    p.started(8)
    for k in range(4):
        p.finished("done", wall_s=100.0, time_ps=70.0, label=f"m/T700K seed {k + 1}", share=4)
    line = buf.getvalue().splitlines()[-1]
    # 4 x 70 ps in 100 s on one worker, 2 workers: 483.84 ns/day; ETA 4 left x 25 s / 2
    assert line.startswith("m/T700K seed 4 done in 100.0 s (batch of 4) | 4/8 seeds")
    assert "483.84 ns/day" in line and "ETA 50s" in line


def test_settings_defaults_state_the_policy():
    s = EnsembleSettings(model="x", temperature_K=700)
    assert s.max_retries == 1 and s.gpus == "auto" and s.workers_per_gpu == 1


def test_slots_filled_together_get_equal_batches():
    """300 seeds, 4 worker slots, --batch 64: four batches of 64 (the shares come from the
    queue as the round began); later, one free slot takes a fair share of what is left; and
    batches never mix ensembles."""
    from collections import deque

    from lpsc_lmp.runs.local import take_job
    from lpsc_lmp.runs.plan import SeedTask

    queue = deque(SeedTask(0, s, 1) for s in range(1, 301))
    queued = len(queue)
    sizes = [len(take_job(queue, 4, 64, queued)) for _ in range(4)]
    assert sizes == [64, 64, 64, 64] and len(queue) == 44
    assert len(take_job(queue, 4, 64)) == 11  # one slot free later: 44 / 4
    q2 = deque([SeedTask(0, 1, 1), SeedTask(0, 2, 1), SeedTask(1, 1, 1)])
    assert [t.ens for t in take_job(q2, 1, 4)] == [0, 0]
    assert len(take_job(deque(SeedTask(0, s, 1) for s in range(3)), 2, 4)) == 2


def test_long_seeds_run_first_and_alone():
    """A teacher's seeds (minutes each) next to a student's (seconds): the teacher's start
    first and one per worker job, so two workers run two of them at once."""
    from collections import deque
    from types import SimpleNamespace

    from lpsc_lmp.runs.local import take_job
    from lpsc_lmp.runs.plan import LONG_SEED_S, SeedTask, long_ensembles, long_seeds_first

    ens = [SimpleNamespace(seed_s=60.0, s=SimpleNamespace(batch=None)),
           SimpleNamespace(seed_s=3 * LONG_SEED_S, s=SimpleNamespace(batch=None)),
           SimpleNamespace(seed_s=3 * LONG_SEED_S, s=SimpleNamespace(batch=3)),
           SimpleNamespace(seed_s=None, s=SimpleNamespace(batch=None))]
    assert long_ensembles(ens) == {1}
    tasks = [SeedTask(0, 3, 1), SeedTask(0, 4, 1), SeedTask(1, 3, 1), SeedTask(1, 4, 1)]
    queue = deque(long_seeds_first(tasks, ens))
    assert [(t.ens, t.seed) for t in queue] == [(1, 3), (1, 4), (0, 3), (0, 4)]
    jobs = [take_job(queue, 2, 4, 4, long_ensembles(ens)) for _ in range(3)]
    assert [[(t.ens, t.seed) for t in j] for j in jobs] == [[(1, 3)], [(1, 4)], [(0, 3), (0, 4)]]
