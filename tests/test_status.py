"""``lpsc-lmp status`` on synthetic run directories (manifests written by hand)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lpsc_lmp.files import sha256_file
from lpsc_lmp.runs.lock import DirLock
from lpsc_lmp.runs.status import ensemble_status, find_ensemble_dirs, format_table, status_rows


def make_ensemble(root: Path, model: str, T: float, done: int, failed: int, partial: int,
                  corrupt: int = 0, time_ps: float = 70.0, wall_s: float = 1000.0,
                  batch_size: int | None = None) -> Path:
    edir = root / model / f"T{T:g}K"
    (edir / "seeds").mkdir(parents=True)
    (edir / "ensemble.json").write_text(json.dumps({"format": 1, "model": model,
                                                    "temperature_K": T, "time_ps": time_ps}))
    seed = 0
    for kind, n in (("done", done), ("failed", failed), ("partial", partial),
                    ("corrupt", corrupt)):
        for _ in range(n):
            seed += 1
            sdir = edir / "seeds" / f"seed_{seed:06d}"
            sdir.mkdir()
            if kind == "partial":
                (sdir / "in.lammps").write_text("run 10\n")
                continue
            if kind == "failed":
                m = {"status": "failed", "reason": "boom", "attempt": 2}
            else:
                (sdir / "result.npz").write_bytes(b"x" * 50)
                m = {"status": "done", "wall_s": wall_s, "time_ps": time_ps,
                     "result_sha256": sha256_file(sdir / "result.npz")}
                if batch_size:
                    m["batch_size"] = batch_size
                if kind == "corrupt":
                    (sdir / "result.npz").write_bytes(b"x" * 10)
            (sdir / "manifest.json").write_text(json.dumps(m))
    return edir


def test_counts_ns_and_rate(tmp_path):
    edir = make_ensemble(tmp_path, "m1", 700, done=4, failed=1, partial=2, corrupt=1)
    DirLock(edir, {"seeds": 10}).acquire().release()  # a finished run asked for 10 seeds
    st = ensemble_status(edir)
    assert (st.done, st.failed, st.running, st.todo) == (4, 1, 0, 5)  # 2 partial+1 corrupt+2
    assert st.target == 10 and abs(st.ns - 0.28) < 1e-12
    assert abs(st.ns_per_day - 70.0 / 1000.0 * 86400 / 1000) < 1e-9   # 6.048 ns/day
    assert not st.locked


def test_rate_of_a_batched_ensemble(tmp_path):
    """Seeds of a lock-step batch of 4 share its 1000 s: the worker ran 4 x 70 ps in 1000 s."""
    edir = make_ensemble(tmp_path, "m1", 700, done=4, failed=0, partial=0, batch_size=4)
    st = ensemble_status(edir)
    assert abs(st.ns_per_day - 4 * 70.0 / 1000.0 * 86400 / 1000) < 1e-9   # 24.192 ns/day


def test_running_while_locked_and_table(tmp_path):
    a = make_ensemble(tmp_path, "m1", 700, done=2, failed=0, partial=2)
    make_ensemble(tmp_path, "m2", 1000, done=1, failed=1, partial=0)
    with DirLock(a, {"seeds": 6}):
        st = ensemble_status(a)
        assert (st.done, st.running, st.todo, st.locked) == (2, 2, 2, True)
        rows = status_rows(tmp_path)
        assert [r.model for r in rows] == ["m1", "m2"]
        table = format_table(rows)
        assert "(running)" in table.splitlines()[2]
    assert find_ensemble_dirs(a) == [a]
    assert find_ensemble_dirs(tmp_path / "m2") == [tmp_path / "m2" / "T1000K"]


def test_cli(tmp_path):
    make_ensemble(tmp_path, "m1", 700, done=3, failed=0, partial=0)
    out = subprocess.run([sys.executable, "-m", "lpsc_lmp.cli", "status", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    row = next(ln for ln in out.stdout.splitlines() if ln.startswith("m1"))
    assert row.split()[:8] == ["m1", "700", "-", "3", "0", "0", "0", "0.210"]
    js = subprocess.run([sys.executable, "-m", "lpsc_lmp.cli", "status", str(tmp_path),
                         "--json"], capture_output=True, text=True)
    assert json.loads(js.stdout)[0]["done"] == 3
    missing = subprocess.run([sys.executable, "-m", "lpsc_lmp.cli", "status",
                              str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
