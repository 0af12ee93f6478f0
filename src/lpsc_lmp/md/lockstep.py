"""Lock-step batched MD: K seeds advance together and the model evaluates them at once.

``lpsc-lmp ensemble ... --batch K`` gives every worker process K seeds (replicas) that run in
lock step. LAMMPS still integrates each replica (its own instance, deck, thermostat, computes,
``fix vector`` outputs, the same ``result.npz`` as the ordinary mode); only the model evaluation
is shared: one forward pass per MD step for all replicas
(:class:`lpsc_lmp.models.batch_eval.BatchedEvaluator`).

Design
------
- One process, K LAMMPS instances, each set up from its seed's deck
  (``templates/pair/python-callback.j2``: ``fix ext all external pf/callback 1 1``).
- Each replica's production run (chunks of ``pos_every`` steps, exactly as
  :func:`lpsc_lmp.md.runner.run_md`) is driven by its own Python thread. The LAMMPS C call
  releases the GIL; the ``fix external`` callback re-acquires it and posts the replica's
  positions and box (an :class:`ase.Atoms`, as :class:`lpsc_lmp.md.callback.PythonCallback`
  builds it) to a :class:`_LockStep`. When every live replica has posted, the last one evaluates
  the whole batch and runs on; the others copy their forces, energy and virial into LAMMPS when
  their turn comes.
- One replica runs at a time: a replica that has posted hands the turn to the next one (fixed
  cyclic order) that has not, so exactly one thread wakes per hand-off. LAMMPS code is also
  serialised by a token lock (held while inside LAMMPS, given up while waiting; after an
  interrupt the replicas only take turns on it): the instances share one MPI library and the
  PyPI build is not initialised for concurrent MPI calls; the LAMMPS work per step of a small
  cell is small next to the model evaluation.
- A replica that fails (LAMMPS error, non-finite energy, runaway temperature, a failed batch
  evaluation: its forces are set to NaN so its chunk check fails) leaves the lock step; the
  others go on. Every replica calls the callback the same number of times (one per step plus one
  per ``run`` set-up), so the lock step holds without step numbers.
- Batch composition is fixed (replicas in job order), so a batch of seeds gives the same arrays
  on every run. A native route (the model evaluates inside LAMMPS) cannot be batched.
- SIGTERM / Ctrl-C release every replica; each leaves LAMMPS at its next chunk boundary before
  the process exits.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BatchError, RouteError, SeedFailed
from ..lammps_env import open_lammps
from ..models.batch_eval import BatchedEvaluator
from .callback import FIX_ID, CallbackFrame
from .deck import split_production_run
from .runner import lammps_failure, production


class _Stopped(Exception):
    """The batch was interrupted: replicas stop at their next chunk boundary."""


class _LockStep:
    """Collects one structure from every live replica, evaluates them together, and decides
    which replica runs: one at a time, handing the turn on in a fixed cyclic order.

    A replica that has posted its structure hands the turn to the next live replica that has
    not posted yet in this step (that one is waiting with its result of the step before, or to
    start); the last one to post evaluates the batch on its own thread and runs on, so it posts
    first in the next step. Exactly one thread wakes per hand-off: waking all K replicas after
    each batch to contend for the LAMMPS token costs more than the step itself
    (bench/results/batched.md). Which thread runs when does not change any result (the batch
    is always evaluated in replica order)."""

    def __init__(self, evaluator: BatchedEvaluator, n: int):
        self.ev = evaluator
        self.mu = threading.Lock()  # guards the state below; held during the evaluation
        self.turn = [threading.Lock() for _ in range(n)]  # released = "your turn"
        for t in self.turn:
            t.acquire()
        self.order: list[int] = list(range(n))  # live replicas, cyclic hand-off order
        self.posted: dict[int, Any] = {}
        self.results: dict[int, Any] = {}
        self.sizes: list[int] = []
        self.started = False
        self.stopped = False

    def start(self) -> None:
        """Give the first live replica its turn (the others wait in :meth:`wait_turn`)."""
        with self.mu:
            self.started = True
            first = self.order[0] if self.order else None
        if first is not None:
            self._give(first)

    def wait_turn(self, i: int) -> None:
        self.turn[i].acquire()

    def submit(self, i: int, atoms: Any) -> Any:
        """Post replica ``i``'s structure (called on its thread, with the turn); returns its
        ``(energy, forces, virial)``, the exception of a failed evaluation, or :class:`_Stopped`."""
        with self.mu:
            if self.stopped:
                return _Stopped("interrupted")
            self.posted[i] = atoms
            if len(self.posted) == len(self.order):  # (posted: live replicas only)
                self._evaluate()
                return self.results.pop(i)  # runs on: no hand-off
            nxt = self._next_unposted(i)
        self._give(nxt)
        self.turn[i].acquire()
        with self.mu:
            if i not in self.results:  # released by stop()
                self.posted.pop(i, None)
                return _Stopped("interrupted")
            return self.results.pop(i)

    def stop(self) -> None:
        """Release every waiting replica with a :class:`_Stopped` result (SIGTERM, Ctrl-C);
        from then on they only take turns on the LAMMPS token."""
        with self.mu:
            self.stopped = True
        for i in range(len(self.turn)):
            self._give(i, quiet=True)

    def leave(self, i: int) -> None:
        """Replica ``i`` is done (finished or failed; before the start: its set-up failed). If
        it held the turn, the turn goes on; if the others had all posted, their batch is
        evaluated first."""
        with self.mu:
            if i not in self.order:
                return
            k = self.order.index(i)
            self.order.remove(i)
            self.posted.pop(i, None)
            if not self.started or self.stopped or not self.order:
                return
            if len(self.posted) == len(self.order):
                self._evaluate()  # every live replica now has its result: the next one runs
                nxt = self.order[k % len(self.order)]
            else:
                nxt = self._next_unposted(i, k)
        self._give(nxt)

    def _next_unposted(self, i: int, k: int | None = None) -> int:  # holds self.mu
        """The first live replica after ``i`` (or after position ``k`` of a replica that just
        left) in cyclic order that has not posted in this step."""
        n = len(self.order)
        k = self.order.index(i) + 1 if k is None else k
        for step in range(n):
            j = self.order[(k + step) % n]
            if j not in self.posted:
                return j
        raise RuntimeError("lock step: no replica left to run")  # (a bug: all had posted)

    def _give(self, j: int, quiet: bool = False) -> None:
        try:
            self.turn[j].release()
        except RuntimeError:  # already released (only stop() may find that)
            if not (quiet or self.stopped):
                raise

    def _evaluate(self) -> None:  # holds self.mu
        idx = sorted(self.posted)
        try:
            res = self.ev.evaluate([self.posted[i] for i in idx])
            for k, i in enumerate(idx):
                self.results[i] = (float(res["energy"][k]), res["forces"][k], res["virial"][k])
        except Exception as exc:  # noqa: BLE001 (handed to every replica of the batch)
            for i in idx:
                self.results[i] = exc
        self.sizes.append(len(idx))
        self.posted = {}


class _Replica(CallbackFrame):
    """One seed's LAMMPS instance and its ``fix external`` callback."""

    def __init__(self, index: int, lmp: Any, type_map: list[str], lockstep: _LockStep,
                 token: threading.Lock, fix_id: str = FIX_ID):
        super().__init__(lmp, type_map, fix_id)
        self.i, self.lockstep, self.token = index, lockstep, token
        self.error: str | None = None

    def __call__(self, caller: Any, ntimestep: int, nlocal: int, tag: np.ndarray,
                 x: np.ndarray, f: np.ndarray) -> None:
        cell, origin = self.box()
        # the replica's own Atoms, updated in place (no copy per step): the batch evaluation
        # that reads it ends before this replica's next step can change it
        atoms = self.atoms
        atoms.cell.array[:] = cell
        self.order.positions(tag, x, nlocal, origin, atoms.arrays["positions"])
        self.token.release()  # the next replica runs LAMMPS while this one waits
        try:
            res = self.lockstep.submit(self.i, atoms)
        finally:
            self.token.acquire()
        self.calls += 1
        if isinstance(res, _Stopped):  # interrupted: coast to the chunk end without the model
            self.error = "interrupted"  # (zero forces: NaN positions could crash LAMMPS)
            f[:nlocal] = 0.0
            self.set_global.energy(0.0)
            return
        if isinstance(res, Exception):
            self.error = f"batched model evaluation failed: {res.__class__.__name__}: {res}"
            f[:nlocal] = np.nan
            self.set_global.energy(float("nan"))
            return
        energy, forces, virial = res
        self.order.forces(forces, f, nlocal)
        self.set_global(energy, virial)


def lockstep_cpu(environ: Any = None) -> int | None:
    """The one CPU that all replica threads of this process run on, or None to leave placement
    to the OS.

    Only one replica thread runs at a time, so they lose nothing by sharing a CPU, and each
    hand-off then stays on it: a hand-off that wakes a thread on another (idle) CPU is far
    slower (pinned and unpinned ceilings side by side: bench/results/batched.md). Pinned only
    with one OpenMP/torch thread (the default for small cells; more threads need more CPUs),
    more than one CPU allowed, more than one replica (:func:`run_md_batch`) and a worker slot
    given: the CPU is slot ``LPSC_LMP_SLOT`` modulo the allowed CPUs. The local sweep gives each
    of its workers its slot, so they never share a CPU; without a slot (cluster jobs, direct
    calls) placement stays with the OS, since processes that each picked a CPU could pick the
    same one. ``LPSC_LMP_PIN=0`` turns it off."""
    env = os.environ if environ is None else environ
    if env.get("LPSC_LMP_PIN", "1") == "0" or env.get("OMP_NUM_THREADS", "1") != "1":
        return None
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    slot = env.get("LPSC_LMP_SLOT", "")
    return allowed[int(slot) % len(allowed)] if slot.isdigit() else None


def _start_uninterrupted(threads: list[threading.Thread]) -> None:
    """Start ``threads`` with SIGINT/SIGTERM held back (in the main thread), so an interrupt
    never finds a thread half-started: running, but not yet ``is_alive()`` to the cleanup
    that then closes its LAMMPS under it. The threads inherit the blocked mask, so the signal
    is handled by the main thread once it is unblocked."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        for t in threads:
            t.start()
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        for t in threads:
            t.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def run_md_batch(decks: list[str], workdirs: list[Path], evaluator: BatchedEvaluator,
                 type_map: list[str], li_type: int, temperature_K: float, timestep_ps: float,
                 msd_every: int, pos_every: int, thermo_every: int,
                 before_production: Any = None
                 ) -> tuple[list[dict[str, np.ndarray] | SeedFailed], dict[str, Any]]:
    """Run the decks (one replica each) in lock step; per replica the arrays of ``result.npz``
    (as :func:`lpsc_lmp.md.runner.run_md`) or the :class:`SeedFailed` that stopped it. Also a
    summary (evaluator calls, mean batch size, model seconds, production seconds: from the
    start of the production runs, after ``before_production()`` if given, to their end)."""
    n = len(decks)
    splits = [split_production_run(d) for d in decks]
    nsteps = splits[0][1]
    if any(s[1] != nsteps for s in splits):
        raise BatchError("the decks of a batch must have the same production run length")
    if nsteps % pos_every:
        raise ValueError(f"run length {nsteps} steps is not a multiple of pos_every {pos_every}")
    lockstep = _LockStep(evaluator, n)
    cpu = lockstep_cpu() if n > 1 else None  # (one replica: no hand-offs)
    token = threading.Lock()  # held by the thread inside LAMMPS (after stop(): all contend)
    out: list[Any] = [None] * n
    lmps: list[Any] = [None] * n
    reps: list[_Replica | None] = [None] * n
    cwd = os.getcwd()
    # set-up, one replica after another (file paths in decks are relative to the seed dir)
    for i, (setup, _) in enumerate(splits):
        try:
            os.chdir(workdirs[i])
            lmps[i] = open_lammps(log=None)
            lmps[i].commands_string(setup)
            reps[i] = _Replica(i, lmps[i], type_map, lockstep, token)
            lmps[i].set_fix_external_callback(FIX_ID, reps[i], lmps[i])
        except RouteError as exc:  # (a type map that does not fit the data file)
            out[i] = SeedFailed(str(exc))
            lockstep.leave(i)
        except Exception as exc:  # noqa: BLE001
            out[i] = exc if isinstance(exc, SeedFailed) else lammps_failure(exc)
            lockstep.leave(i)
        finally:
            os.chdir(cwd)

    def drive(i: int) -> None:
        lmp, rep = lmps[i], reps[i]
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})  # this thread only (Linux)
        lockstep.wait_turn(i)
        token.acquire()
        try:
            def recorded_error() -> None:
                if rep.error:
                    raise SeedFailed(rep.error)

            out[i] = production(lmp, nsteps, li_type, temperature_K, timestep_ps, msd_every,
                                pos_every, thermo_every, after_chunk=recorded_error)
        except SeedFailed as exc:
            out[i] = exc
        except Exception as exc:  # noqa: BLE001 (LAMMPS errors arrive as plain exceptions)
            out[i] = lammps_failure(exc)
        finally:
            token.release()
            lockstep.leave(i)
            finished[i].set()

    # Each replica's end is an Event, not Thread.is_alive()/join(): on Python 3.11 a join()
    # interrupted by KeyboardInterrupt can mark a thread that is still running as stopped
    # (threading._wait_for_tstate_lock, bpo-45274), and LAMMPS would then be closed under it.
    finished = [threading.Event() for _ in range(n)]
    threads = [threading.Thread(target=drive, args=(i,), daemon=True, name=f"replica-{i}")
               for i in range(n) if out[i] is None]
    waits = [finished[i] for i in range(n) if out[i] is None]
    if before_production is not None:  # (benchmarks: processes that start together)
        before_production()
    t_start = time.perf_counter()
    try:
        _start_uninterrupted(threads)
        lockstep.start()
        for ev in waits:
            while not ev.wait(0.2):  # wakes up for signals (KeyboardInterrupt in main thread)
                pass
    except BaseException:
        # SIGTERM / Ctrl-C: let every replica leave LAMMPS at its next chunk boundary (its
        # callbacks return at once, without the model), so no thread is inside LAMMPS or torch
        # when the process exits (that aborts in C++: "terminate called without an active
        # exception")
        lockstep.stop()
        for ev in waits:
            ev.wait(60.0)
        raise
    finally:
        if all(ev.is_set() for ev in waits):
            for lmp in lmps:
                if lmp is not None:
                    lmp.close()
    sizes = lockstep.sizes
    summary = {"batch_mode": evaluator.mode, "evaluations": evaluator.calls,
               "mean_batch": round(float(np.mean(sizes)), 3) if sizes else 0.0,
               "model_seconds": round(evaluator.seconds, 3),
               # the production runs of all replicas (after their LAMMPS set-up, one by one)
               "production_seconds": round(time.perf_counter() - t_start, 3),
               "cpu": cpu}
    return out, summary
