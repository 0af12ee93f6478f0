"""Batched execution (``lpsc-lmp ensemble --batch K``, lpsc_lmp.md.lockstep).

The MD runs go through the ordinary ensemble machinery (workers in the model's environment);
the evaluator check runs ``python -m lpsc_lmp.md.route_checks batch-check MODEL`` in that
environment.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lpsc_lmp.environments import env_for_subprocess, thread_env
from lpsc_lmp.errors import EnsembleError, RegistryError
from lpsc_lmp.md.route_checks import run_check
from lpsc_lmp.models.registry import load_card
from lpsc_lmp.paths import env_python
from lpsc_lmp.runs.settings import EnsembleSettings
from lpsc_lmp.runs.sweep import run_ensemble

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _have(model: str) -> bool:
    try:
        card = load_card(model)
    except RegistryError:
        return False
    return env_python(card.env).exists() and card.deploy_file.is_file()


def needs(model: str):
    return pytest.mark.skipif(not _have(model), reason=f"{model} or its env missing "
                                                       "(make install)")


def _quiet(*_a, **_k) -> None:
    pass


def _settings(model: str, runs: Path, tag: str, seeds: int, batch: int, steps: int = 50,
              T: float = 800.0, route: str | None = "python-callback") -> EnsembleSettings:
    return EnsembleSettings(model=model, temperature_K=T, seeds=seeds, time_ps=steps / 1000.0,
                            msd_every_steps=10, pos_every_steps=steps // 2,
                            thermo_every_steps=10, fit_window_ps=(0.2 * steps / 1000.0,
                                                                  steps / 1000.0),
                            runs=str(runs), tag=tag, gpus="none", batch=batch,
                            route=route)


def _results(edir: Path, seeds: int) -> list[dict[str, np.ndarray]]:
    out = []
    for s in range(1, seeds + 1):
        sdir = edir / "seeds" / f"seed_{s:06d}"
        m = json.loads((sdir / "manifest.json").read_text())
        assert m["status"] == "done", m.get("reason")
        with np.load(sdir / "result.npz") as z:
            out.append({k: z[k] for k in z.files})
    return out


# ------------------------------------------------------------------ refusal
def test_native_only_card_refuses_batch(tmp_path, monkeypatch):
    """A card without a python-callback route cannot be batched (nothing written); one with it
    (dp-7net: [deepmd, python-callback]) runs --batch on that route."""
    import shutil

    import yaml

    src = Path(__file__).resolve().parents[1] / "potentials" / "dp-7net"
    if not (src / "compressed.pth").is_file():
        pytest.skip("dp-7net not prepared")
    pot = tmp_path / "pot" / "dp-native"
    pot.mkdir(parents=True)
    card = yaml.safe_load((src / "card.yaml").read_text())
    card.update(name="dp-native", route="deepmd")
    (pot / "card.yaml").write_text(yaml.safe_dump(card))
    for f in ("frozen.pth", "compressed.pth"):
        shutil.copy(src / f, pot / f)
    monkeypatch.setenv("LPSC_LMP_POTENTIALS", str(tmp_path / "pot"))
    runs = tmp_path / "runs"
    s = _settings("dp-native", runs, "x", seeds=2, batch=2, route=None)
    with pytest.raises(EnsembleError, match="drop --batch"):
        run_ensemble(s, echo=_quiet)
    assert not runs.exists(), "nothing may be written before the refusal"
    monkeypatch.undo()  # the real registry again
    from lpsc_lmp.runs.ensemble import card_for

    assert card_for(_settings("dp-7net", runs, "x", 2, batch=2, route=None)).route == \
        "python-callback"
    assert card_for(_settings("dp-7net", runs, "x", 2, batch=0, route=None)).route == "deepmd"


def test_negative_batch_refused(tmp_path):
    s = _settings("mace-7net", tmp_path, "x", seeds=2, batch=-1)
    with pytest.raises(EnsembleError, match="--batch"):
        s.validate()


# ------------------------------------------------------------------ evaluator
@pytest.mark.parametrize("model,edges", [
    pytest.param("mace-7net", "auto", marks=needs("mace-7net")),
    pytest.param("mace-7net", "torch", marks=needs("mace-7net")),
    pytest.param("nequip-7net", "auto", marks=needs("nequip-7net")),
    pytest.param("nequip-7net", "torch", marks=needs("nequip-7net")),
    pytest.param("dp-7net", "auto", marks=needs("dp-7net"))])
def test_batched_evaluator_equals_per_structure(model, edges):
    """Batched = the model's ASE calculator per structure. ``edges=torch`` runs on the CPU the
    code that assembles the graphs on a GPU (one torch neighbour list for all replicas)."""
    card = load_card(model)
    res = run_check(card.env, ["batch-check", model, "--edges", edges], timeout=300)
    assert res["mode"] != "loop", "no batched evaluator (NequIP: run `make models`)"
    if not model.startswith("dp"):  # the second batch reused/assembled its graph directly
        assert res["graph"] == "direct", res
        assert res["edges"] == ("vesin" if edges == "auto" else edges), res
    assert res["n"] >= 4
    # float64 models to 1e-6; NequIP is float32, and its batched graph lists the edges in
    # another order than its ASE calculator (sums in another order): ~10 float32 ulps
    tol = ({"energy": 5e-5, "forces": 1e-5, "stress": 1e-7, "virial": 1e-4}
           if model.startswith("nequip") else dict.fromkeys(("energy", "forces", "stress",
                                                             "virial"), 1e-6))
    for k in ("energy", "forces", "stress", "virial"):
        assert res[f"max_abs_{k}"] < tol[k], (k, res)


def test_periodic_edges_equal_ase_neighbour_list():
    """The torch neighbour list of the batched NequIP input (GPU path) finds exactly ASE's
    pairs and cell shifts, for positions outside the cell and a sheared cell."""
    import torch
    from ase.neighborlist import neighbor_list

    from lpsc_lmp.models.neighbours import periodic_edges
    from lpsc_lmp.structure import build_lpsc

    rng = np.random.default_rng(3)
    frames = []
    for _ in range(3):
        at = build_lpsc()
        at.set_cell(at.cell.array @ (np.eye(3) + rng.normal(0, 0.04, (3, 3))), scale_atoms=True)
        at.positions += rng.normal(0, 0.3, at.positions.shape) + [0.0, -12.0, 25.0]
        frames.append(at)
    pos = torch.tensor(np.stack([a.positions for a in frames]))
    cells = torch.tensor(np.stack([a.cell.array for a in frames]))
    wrapped, ei, sh = periodic_edges(pos, cells, 5.0)
    n = len(frames[0])
    wrapped = wrapped.numpy()
    ei, sh = ei.numpy(), sh.numpy().astype(int)
    for f, at in enumerate(frames):
        sel = ei[0] // n == f
        w = at.copy()
        w.positions = wrapped[f * n:(f + 1) * n]
        i, j, s = neighbor_list("ijS", w, 5.0)
        ours = sorted(zip(ei[0][sel] - f * n, ei[1][sel] - f * n, map(tuple, sh[sel]),
                          strict=True))
        theirs = sorted(zip(i, j, map(tuple, s), strict=True))
        assert ours == theirs and len(ours) > 1000
        # the wrapped positions are the same atoms (moved by lattice vectors only)
        frac = np.linalg.solve(at.cell.array.T, (w.positions - at.positions).T).T
        np.testing.assert_allclose(frac, np.round(frac), atol=1e-9)


def test_nequip_files_per_device(tmp_path, monkeypatch):
    """An AOTInductor package runs only on the device type it was compiled for: the
    python-callback file and the batch package have a GPU variant each, which an ensemble on a
    GPU compiles once (here with a stand-in for nequip-compile), and the calculator loads."""
    import shutil

    from lpsc_lmp.errors import RouteError
    from lpsc_lmp.models import derive as deploy
    from lpsc_lmp.models.calculators import batch_file_for, device_model_file, load_calculator

    src = Path(__file__).resolve().parents[1] / "potentials" / "nequip-7net"
    f = src / "model.nequip.pt2"
    assert device_model_file(f, "cpu") == f
    assert device_model_file(f, "cuda:1").name == "model.cuda.nequip.pt2"
    assert batch_file_for(f).name == "model.batch.nequip.pt2"
    assert batch_file_for(f, "cuda").name == "model.batch.cuda.nequip.pt2"
    assert device_model_file(tmp_path / "m.model", "cuda") == tmp_path / "m.model"  # MACE
    pot = tmp_path / "pot" / "nequip-7net"
    pot.mkdir(parents=True)
    for name in ("card.yaml", "nequip-7net.nequip.zip"):
        shutil.copy(src / name, pot / name)
    (pot / "model.nequip.pt2").write_bytes(b"stand-in")
    monkeypatch.setenv("LPSC_LMP_POTENTIALS", str(tmp_path / "pot"))
    calls = []

    def fake_compile(src_, out, how):
        calls.append((src_.name, out.name, how["target"], how["device"]))
        out.write_bytes(b"compiled")

    monkeypatch.setattr(deploy, "nequip_compile", fake_compile)
    card = load_card("nequip-7net", route="python-callback")
    with pytest.raises(RouteError, match="models prepare MODEL --device cuda"):
        load_calculator("nequip", card.deploy_file, "cuda")
    monkeypatch.setenv("LPSC_LMP_DETECTED_GPUS", "")  # no GPU: refused, nothing compiled
    with pytest.raises(RegistryError, match="on the GPU machine"):
        deploy.derive_for_device(card, "cuda")
    assert calls == []
    monkeypatch.setenv("LPSC_LMP_DETECTED_GPUS", "0")  # (stand-in for a GPU machine)
    said = []
    made = deploy.derive_for_device(card, "cuda", batch=True, echo=said.append)
    assert calls == [("nequip-7net.nequip.zip", "model.cuda.nequip.pt2", "ase", "cuda"),
                     ("nequip-7net.nequip.zip", "model.batch.cuda.nequip.pt2", "batch", "cuda")]
    assert [p.name for p in made] == ["model.cuda.nequip.pt2", "model.batch.cuda.nequip.pt2"]
    assert "for cuda" in said[0]
    assert deploy.derive_for_device(card, "cuda", batch=True) == []  # once
    assert deploy.derive_for_device(card, "cpu") == []  # the CPU file is the card's own
    monkeypatch.undo()
    assert deploy.derive_for_device(load_card("mace-7net"), "cuda", batch=True) == []


def test_manifest_says_where_the_model_ran(tmp_path):
    """Seeds of a model evaluated in Python record the device (cpu here: no GPU); on a GPU a
    NequIP seed also records the file compiled for it. Native routes are left as they are."""
    from lpsc_lmp.md.seeds import with_device

    f = tmp_path / "model.nequip.pt2"
    f.write_bytes(b"cpu")
    meta = {"route": "python-callback", "model_file": str(f)}
    assert with_device(meta) == dict(meta, device="cpu")
    (tmp_path / "model.cuda.nequip.pt2").write_bytes(b"gpu")
    gpu = with_device(dict(meta, device="cuda"))
    assert gpu["device_model_file"] == str(tmp_path / "model.cuda.nequip.pt2")
    assert len(gpu["device_model_sha256"]) == 64
    native = {"route": "nequip", "model_file": str(f)}
    assert with_device(native) == native


def test_seed_without_its_gpu_file_names_the_fix(tmp_path):
    """A NequIP seed on a GPU whose file for the GPU was never compiled (a cluster node) fails
    with the command that makes it, not as a LAMMPS error."""
    from lpsc_lmp.errors import SeedFailed
    from lpsc_lmp.md.runner import run_md
    from lpsc_lmp.runs.ensemble import render_for_seed
    from lpsc_lmp.structure import build_lpsc, write_lammps_data

    card = load_card("nequip-7net", route="python-callback")
    s = _settings("nequip-7net", tmp_path, "x", seeds=1, batch=0, steps=10)
    write_lammps_data(build_lpsc(), tmp_path / "structure.data", card.type_map)
    deck = render_for_seed(s, card, tmp_path / "structure.data", 1).text
    meta = {"architecture": "nequip", "model_file": str(tmp_path / "model.nequip.pt2"),
            "type_map": list(card.type_map), "device": "cuda"}
    with pytest.raises(SeedFailed, match=r"^\S+model\.cuda\.nequip\.pt2 is missing; run "
                                         "`lpsc-lmp models prepare MODEL --device cuda`"):
        run_md(deck, tmp_path, 1, 800.0, 0.001, 10, 5, 10, route="python-callback",
               route_meta=meta)


def test_periodic_edges_in_groups_of_frames(monkeypatch):
    """Large batches are split into groups of frames (bounded memory): same edges, same order."""
    import torch

    from lpsc_lmp.models import neighbours as batched
    from lpsc_lmp.structure import build_lpsc

    rng = np.random.default_rng(5)
    at = build_lpsc()
    pos = torch.tensor(np.stack([at.positions + rng.normal(0, 0.2, at.positions.shape)
                                 for _ in range(5)]))
    cells = torch.tensor(np.stack([at.cell.array] * 5))
    whole = batched.periodic_edges(pos, cells, 5.0)
    monkeypatch.setattr(batched, "EDGE_CHUNK_ELEMENTS", 1)  # one frame per group
    grouped = batched.periodic_edges(pos, cells, 5.0)
    for a, b in zip(whole, grouped, strict=True):
        assert torch.equal(a, b)


# ------------------------------------------------------------------ MD
def _check_md(model: str, tmp_path: Path, seeds: int, atol_pos: float,
              thermo_rtol: float = 1e-8) -> None:
    b1 = run_ensemble(_settings(model, tmp_path, "b1", seeds, batch=seeds), echo=_quiet)
    b2 = run_ensemble(_settings(model, tmp_path, "b2", seeds, batch=seeds), echo=_quiet)
    ordinary = run_ensemble(_settings(model, tmp_path, "o", seeds, batch=0), echo=_quiet)
    r1, r2, ro = _results(b1, seeds), _results(b2, seeds), _results(ordinary, seeds)
    man = json.loads((b1 / "seeds" / "seed_000001" / "manifest.json").read_text())
    assert man["batch_size"] == seeds and man["batch_summary"]["mean_batch"] == seeds
    for a, b, o in zip(r1, r2, ro, strict=True):
        assert sorted(a) == sorted(o)  # the same result.npz keys as the ordinary mode
        for k in a:
            assert a[k].dtype == o[k].dtype and a[k].shape == o[k].shape, k
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"not reproducible: {k}")
        # round-off of the batched forward pass, amplified a little by 50 MD steps
        np.testing.assert_allclose(a["li_unwrapped"], o["li_unwrapped"], rtol=0, atol=atol_pos)
        np.testing.assert_allclose(a["msd"], o["msd"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(a["thermo"], o["thermo"], rtol=thermo_rtol, atol=1e-6)
    # the seeds of a batch are distinct trajectories
    assert not np.array_equal(r1[0]["li_unwrapped"], r1[1]["li_unwrapped"])


@needs("nequip-7net")
def test_batched_md_reproducible_and_matches_ordinary_nequip(tmp_path):
    # float32 model, edges summed in another order than the ASE calculator's: the pressure
    # (~5e4 bar) agrees to ~1e-7 relative
    _check_md("nequip-7net", tmp_path, seeds=3, atol_pos=1e-6, thermo_rtol=1e-6)


@pytest.mark.slow  # the lock-step MD machinery is covered by the NequIP case (default suite)
@needs("dp-7net")
def test_batched_md_reproducible_and_matches_ordinary_deepmd(tmp_path):
    """DeePMD batched through DeepPot.eval with a frame axis vs the ordinary python-callback
    route (DP calculator, one frame per call); compressed float64 model."""
    _check_md("dp-7net", tmp_path, seeds=3, atol_pos=1e-8)


@pytest.mark.slow
@needs("mace-7net")
def test_batched_md_reproducible_and_matches_ordinary_mace(tmp_path):
    _check_md("mace-7net", tmp_path, seeds=2, atol_pos=1e-8)


@pytest.mark.slow
@needs("nequip-7net")
def test_batched_diffusion_agrees_with_ordinary(tmp_path):
    """D of a tiny ensemble (6 seeds x 2 ps at 1000 K): batched vs ordinary within errors."""
    from lpsc_lmp.analysis.diffusion import fit_ensemble
    from lpsc_lmp.analysis.ensemble_data import read_ensemble

    D = {}
    for tag, batch in (("b", 6), ("o", 0)):
        s = _settings("nequip-7net", tmp_path, tag, seeds=6, batch=batch, steps=2000, T=1000.0)
        s.pos_every_steps, s.thermo_every_steps = 100, 100
        s.fit_window_ps = (0.4, 2.0)
        edir = run_ensemble(s, echo=_quiet)
        ens = read_ensemble(edir, load_positions=False)
        res = fit_ensemble(ens.t_msd, ens.msd_total, s.window())
        D[tag] = res
    b, o = D["b"], D["o"]
    err = float(np.hypot(b.stderr_cm2s, o.stderr_cm2s))
    assert abs(b.D_cm2s - o.D_cm2s) <= 3 * err + 1e-12, (b, o)


# ------------------------------------------------------------------ lock step, no ML model
class _LJEvaluator:
    """A stand-in for BatchedEvaluator (ASE Lennard-Jones, one structure at a time) that gives
    replica ``poison`` a NaN energy while the whole batch is alive."""

    mode = "loop"

    def __init__(self, n: int, poison: int | None = None):
        from ase.calculators.lj import LennardJones

        from lpsc_lmp.models.batch_eval import BatchedEvaluator

        self.calc = LennardJones(sigma=2.0, epsilon=0.01, rc=5.0, smooth=True)
        self.n, self.poison, self.calls, self.seconds, self.sizes = n, poison, 0, 0.0, []
        self._pack = BatchedEvaluator._pack
        self._loop = BatchedEvaluator._loop.__get__(self)

    def evaluate(self, atoms_list):
        self.calls += 1
        self.sizes.append(len(atoms_list))
        res = self._pack(atoms_list, *self._loop(atoms_list))
        if self.poison is not None and len(atoms_list) == self.n:
            res["energy"][self.poison] = np.nan
        return res


def _lj_decks(tmp_path: Path, n: int, steps: int = 40):
    from lpsc_lmp.runs.ensemble import render_for_seed
    from lpsc_lmp.structure import build_lpsc, write_lammps_data

    # any python-callback card: only its deck is used
    card = load_card("mace-7net", route="python-callback")
    s = _settings("mace-7net", tmp_path, "lj", seeds=n, batch=n, steps=steps)
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "structure.data"
    write_lammps_data(build_lpsc(), data, card.type_map)
    decks = [render_for_seed(s, card, data, seed).text for seed in range(1, n + 1)]
    dirs = []
    for i in range(n):
        (tmp_path / f"r{i}").mkdir()
        dirs.append(tmp_path / f"r{i}")
    return decks, dirs, list(card.type_map), s


def _run_lj(tmp_path: Path, n: int, poison: int | None):
    from lpsc_lmp.md.lockstep import run_md_batch

    decks, dirs, tm, s = _lj_decks(tmp_path, n)
    ev = _LJEvaluator(n, poison)
    res, summary = run_md_batch(decks, dirs, ev, tm, tm.index("Li") + 1, s.temperature_K,
                                s.timestep_fs / 1000, s.msd_every_steps, s.pos_every_steps,
                                s.thermo_every_steps)
    return res, summary, ev


def test_lock_step_lj_reproducible(tmp_path):
    r1, summ, ev = _run_lj(tmp_path / "a", 3, None)
    r2, _, _ = _run_lj(tmp_path / "b", 3, None)
    assert all(isinstance(r, dict) for r in r1), r1
    assert set(ev.sizes) == {3} and summ["mean_batch"] == 3
    for a, b in zip(r1, r2, strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(r1[0]["li_unwrapped"], r1[2]["li_unwrapped"])


def test_failed_replica_leaves_the_batch(tmp_path):
    from lpsc_lmp.errors import SeedFailed

    res, _, ev = _run_lj(tmp_path, 3, poison=1)
    assert isinstance(res[1], SeedFailed) and "non-finite" in str(res[1])
    assert isinstance(res[0], dict) and isinstance(res[2], dict)  # the others finished
    assert 2 in ev.sizes  # ... in a batch of two after replica 1 left


def test_lock_step_same_arrays_pinned_or_not(tmp_path, monkeypatch):
    """Which thread runs when (one CPU for all replica threads, or the OS's choice) changes no
    result."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("LPSC_LMP_PIN", "0")
    r1, s1, _ = _run_lj(tmp_path / "free", 3, None)
    monkeypatch.setenv("LPSC_LMP_PIN", "1")
    monkeypatch.setenv("LPSC_LMP_SLOT", "1")
    r2, s2, _ = _run_lj(tmp_path / "pinned", 3, None)
    assert s1["cpu"] is None
    if len(os.sched_getaffinity(0)) > 1:
        assert s2["cpu"] in os.sched_getaffinity(0)
    for a, b in zip(r1, r2, strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


class _CountingEvaluator:
    """Evaluator of :class:`_LockStep` tests: energy = 10 x call number + replica index."""

    mode = "test"

    def __init__(self):
        self.batches: list[list[int]] = []

    def evaluate(self, atoms_list):
        self.batches.append(list(atoms_list))
        k = len(self.batches)
        return {"energy": np.array([10.0 * k + i for i in atoms_list]),
                "forces": np.zeros((len(atoms_list), 1, 3)),
                "virial": np.zeros((len(atoms_list), 6))}


def _drive_lockstep(n: int, steps: list[int], fail_setup: set[int] = frozenset(),
                    stop_after: int | None = None):
    """Threads standing in for replicas: replica i makes ``steps[i]`` calls to submit (its
    'callbacks'); a replica in ``fail_setup`` leaves before the start. Returns the evaluator,
    what each replica got back, and the most replicas ever running at once."""
    import threading
    import time

    from lpsc_lmp.md.lockstep import _LockStep, _Stopped

    ev = _CountingEvaluator()
    ls = _LockStep(ev, n)
    got: dict[int, list] = {i: [] for i in range(n)}
    running, most = [0], [0]
    guard = threading.Lock()

    def enter():
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])

    def leave():
        with guard:
            running[0] -= 1

    def replica(i):
        ls.wait_turn(i)
        enter()
        try:
            for _ in range(steps[i]):
                time.sleep(0.0005 * ((i * 7) % 3))  # uneven "LAMMPS" work
                leave()
                res = ls.submit(i, i)
                enter()
                got[i].append(res)
                if isinstance(res, _Stopped):
                    break
        finally:
            leave()
            ls.leave(i)

    for i in fail_setup:
        ls.leave(i)
    threads = [threading.Thread(target=replica, args=(i,), daemon=True)
               for i in range(n) if i not in fail_setup]
    for t in threads:
        t.start()
    ls.start()
    if stop_after is not None:
        while len(ev.batches) < stop_after:
            time.sleep(0.001)
        ls.stop()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a replica thread hung"
    return ev, got, most[0]


def test_lockstep_batches_hold_every_live_replica():
    ev, got, most = _drive_lockstep(5, [6, 6, 3, 6, 6], fail_setup={4})
    assert most == 1  # one replica running at a time
    assert ev.batches[:3] == [[0, 1, 2, 3]] * 3  # replica 2 made 3 calls, then left
    assert ev.batches[3:] == [[0, 1, 3]] * 3
    for i in (0, 1, 3):
        assert [r[0] for r in got[i]] == [10.0 * k + i for k in range(1, 7)]
    assert [r[0] for r in got[2]] == [12.0, 22.0, 32.0] and got[4] == []


def test_lockstep_stop_releases_every_replica():
    from lpsc_lmp.md.lockstep import _Stopped

    ev, got, _ = _drive_lockstep(4, [10**6] * 4, stop_after=5)
    assert all(isinstance(got[i][-1], _Stopped) for i in range(4))
    assert len(ev.batches) < 10**6


def test_lockstep_cpu_rules():
    from lpsc_lmp.md.lockstep import lockstep_cpu

    allowed = sorted(os.sched_getaffinity(0))
    base = {"OMP_NUM_THREADS": "1"}
    if len(allowed) < 2:
        assert lockstep_cpu(base) is None
        return
    assert lockstep_cpu(dict(base, LPSC_LMP_SLOT="1")) == allowed[1]
    assert lockstep_cpu(dict(base, LPSC_LMP_SLOT=str(len(allowed)))) == allowed[0]
    assert lockstep_cpu(base) is None  # no slot: the OS places the threads
    assert lockstep_cpu(dict(base, LPSC_LMP_PIN="0")) is None
    assert lockstep_cpu({"OMP_NUM_THREADS": "2", "LPSC_LMP_SLOT": "1"}) is None


# ------------------------------------------------------------------ interruption
@needs("dp-7net")
def test_sigterm_to_batched_worker_leaves_no_half_written_seed(tmp_path):
    """SIGTERM to a worker running a batch mid-run: it exits 130, removes every seed of the
    batch that has no manifest, and leaves no temporary file, so a rerun redoes exactly those."""
    import signal
    import time

    from lpsc_lmp.rundir import seed_state
    from lpsc_lmp.runs.ensemble import prepare, worker_python
    from lpsc_lmp.runs.plan import Ensemble, SeedTask, job_entries

    s = _settings("dp-7net", tmp_path, "term", seeds=3, batch=3, steps=40000, route=None)
    edir, card, info = prepare(s)
    assert card.route == "python-callback"  # --batch picked the card's python-callback route
    e = Ensemble(s, edir, card, info, python=worker_python(card))
    job = tmp_path / "job.json"
    job.write_text(json.dumps(job_entries(e, [SeedTask(0, k, 1) for k in (1, 2, 3)],
                                          {"batch": 3})))
    env = dict(env_for_subprocess(e.python), **thread_env(1))
    env["PYTHONPATH"] = SRC
    proc = subprocess.Popen([e.python, "-m", "lpsc_lmp.md.worker", str(edir), str(job)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seeds = [edir / "seeds" / f"seed_{k:06d}" for k in (1, 2, 3)]
    deadline = time.time() + 120
    while not all((d / "in.lammps").is_file() for d in seeds):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.1)
    time.sleep(0.5)  # (set-up or production: either is interrupted the same way)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert not any(d.exists() for d in seeds), "a seed of the interrupted batch was left"
    assert [seed_state(d) for d in seeds] == ["todo"] * 3
    assert not list(edir.rglob("*.tmp*"))
