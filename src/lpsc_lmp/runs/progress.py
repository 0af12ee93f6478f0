"""Live progress of ensembles and sweeps: seeds done/failed/running, ETA, aggregate ns/day.

On a terminal one line is redrawn in place (at most twice a second); when stdout is not a TTY
(logs, CI, ``nohup``) every event is a plain line of its own, so logs stay readable.

Rates come from the seeds' manifests: each finished seed contributes its simulated time
(``time_ps``) and its ``wall_s``; the seeds of a lock-step batch (``--batch K``) all record the
batch's wall time, so each counts 1/K of it (``batch_size`` in the manifest). ns/day is the
per-worker rate (sum of ps / sum of those worker seconds) times the number of workers; the ETA
is the seeds left times the mean worker seconds per seed divided by the workers.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


class Progress:
    """Counts of one run (an ensemble or a whole sweep) and their display."""

    def __init__(self, total: int, workers: int, stream: TextIO | None = None,
                 tty: bool | None = None, min_interval: float = 0.5, clock=time.monotonic):
        self.total, self.workers = total, max(1, workers)
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.done = self.failed = self.running = 0
        self.sim_ps = self.wall_s = 0.0
        self.n_timed = 0
        self.min_interval = min_interval
        self.clock = clock
        self.t0 = clock()
        self._last_draw = -1e9
        self._drawn = False

    # ------------------------------------------------------------ events
    def started(self, n: int = 1) -> None:
        self.running += n
        self.refresh()

    def stopped(self, n: int = 1) -> None:
        """Seeds that stopped running without a result (requeued)."""
        self.running = max(0, self.running - n)
        self.refresh()

    def finished(self, status: str, wall_s: float | None = None, time_ps: float | None = None,
                 label: str = "", was_running: bool = True, share: int = 1) -> None:
        """A seed ended: ``status`` is ``done`` or ``failed``; ``wall_s`` its wall time (s), shared
        by ``share`` seeds that ran together in one lock-step batch."""
        if was_running:
            self.running = max(0, self.running - 1)
        if status == "done":
            self.done += 1
            if wall_s and time_ps:
                self.sim_ps += time_ps
                self.wall_s += wall_s / share
                self.n_timed += 1
        else:
            self.failed += 1
        if not self.tty:
            what = f"{label} {status}" + (f" in {wall_s:.1f} s" if wall_s else "") + (
                f" (batch of {share})" if share > 1 else "")
            self._write_line(f"{what.strip()} | {self.line()}")
        elif status != "done":
            self.message(f"{label} {status}".strip())
        self.refresh(force=True)

    def message(self, text: str) -> None:
        """A line of its own (above the live line on a terminal)."""
        if self.tty and self._drawn:
            self.stream.write("\r\033[K")
        self._write_line(text)
        self._drawn = False
        self.refresh(force=True)

    # ------------------------------------------------------------ numbers
    @property
    def left(self) -> int:
        return max(0, self.total - self.done - self.failed)

    def ns_per_day(self) -> float | None:
        if not self.wall_s:
            return None
        return self.sim_ps / self.wall_s * 86400.0 / 1000.0 * min(self.workers,
                                                                   max(1, self.total))

    def eta_s(self) -> float | None:
        if not self.n_timed:
            return None
        return self.left * (self.wall_s / self.n_timed) / min(self.workers, max(1, self.left))

    def line(self) -> str:
        todo = max(0, self.left - self.running)
        rate = self.ns_per_day()
        return (f"{self.done + self.failed}/{self.total} seeds: {self.done} done, "
                f"{self.failed} failed, {self.running} running, {todo} todo | "
                f"ETA {fmt_duration(self.eta_s()) if self.left else '0s'} | "
                f"{'?' if rate is None else f'{rate:.2f}'} ns/day | "
                f"elapsed {fmt_duration(self.clock() - self.t0)}")

    # ------------------------------------------------------------ display
    def refresh(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = self.clock()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        self.stream.write("\r\033[K" + self.line())
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def _write_line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
