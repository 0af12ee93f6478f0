"""One writer per ensemble directory: ``ensemble_dir/.lock`` held with ``fcntl.flock``.

Whoever runs seeds into an ensemble directory (``ensemble``, ``sweep``, the dispatcher engine
while its jobs are queued) holds an exclusive, non-blocking lock on ``.lock`` for the whole run. A
second run pointed at the same directory stops at once with one line naming the PID (and host) of
the holder. The lock dies with its process (the kernel releases it), so there is never a stale
lock to remove by hand; the file itself stays and records the last holder and the number of seeds
it was asked for (read by ``lpsc-lmp status``).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import LockError

LOCK_NAME = ".lock"


def read_lock(directory: Path) -> dict[str, Any]:
    """What the last (or current) holder wrote into the lock file; {} if none or unreadable."""
    try:
        return json.loads((Path(directory) / LOCK_NAME).read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def is_locked(directory: Path) -> bool:
    """True while the process recorded in ``directory/.lock`` (this host) is alive.

    Read-only on purpose: probing with flock could make a run starting at that instant fail.
    """
    info = read_lock(directory)
    if not info.get("pid") or info.get("host") not in (None, socket.gethostname()):
        return bool(info.get("pid"))  # another host: assume its holder is alive
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DirLock:
    """Exclusive lock on ``directory/.lock``; use as a context manager or acquire()/release()."""

    def __init__(self, directory: Path, info: dict[str, Any] | None = None):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.info = dict(info or {})
        self._fh = None

    def acquire(self) -> DirLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # never truncate before we own it
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            holder = read_lock(self.directory)
            who = f"PID {holder.get('pid', '?')}"
            if holder.get("host") and holder["host"] != socket.gethostname():
                who += f" on {holder['host']}"
            raise LockError(f"{self.directory} is in use by another run ({who}, lock "
                            f"{self.path}); wait for it to finish or stop that process") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": time.strftime("%Y-%m-%dT%H:%M:%S"), **self.info}) + "\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            info = read_lock(self.directory)
            info["last_pid"] = info.pop("pid", None)  # released: no live holder any more
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.write(json.dumps(info) + "\n")
            self._fh.flush()
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
