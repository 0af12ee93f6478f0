"""The ensemble directory lock: exclusive, non-blocking, names its holder, dies with it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from lpsc_lmp.errors import LockError
from lpsc_lmp.runs.lock import DirLock, is_locked, read_lock

HOLD = """
import sys, time
from lpsc_lmp.runs.lock import DirLock
lk = DirLock(sys.argv[1], {"seeds": 7}).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_second_holder_is_refused_with_pid(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert is_locked(tmp_path) and read_lock(tmp_path)["seeds"] == 7
        with pytest.raises(LockError) as exc:
            DirLock(tmp_path).acquire()
        msg = str(exc.value)
        assert f"PID {proc.pid}" in msg and "\n" not in msg
    finally:
        proc.kill()
        proc.wait()
    # the kernel released the lock with the process: no stale lock
    deadline = time.time() + 10
    while True:
        try:
            lk = DirLock(tmp_path, {"seeds": 3}).acquire()
            break
        except LockError:
            assert time.time() < deadline
            time.sleep(0.1)
    assert read_lock(tmp_path)["seeds"] == 3 and is_locked(tmp_path)
    lk.release()
    assert not is_locked(tmp_path)
    assert read_lock(tmp_path)["seeds"] == 3  # what was asked stays readable


def test_context_manager_and_reacquire(tmp_path):
    with DirLock(tmp_path / "new") as lk:
        assert (tmp_path / "new" / ".lock").is_file()
        with pytest.raises(LockError):  # a second open file description in this process
            DirLock(tmp_path / "new").acquire()
        assert lk.path.name == ".lock"
    with DirLock(tmp_path / "new"):
        pass
