"""End-to-end: fake run directories in the exact run format (docs/run-format.md), CLI commands."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lpsc_lmp.analysis.arrhenius import KB_EV
from lpsc_lmp.analysis.ensemble_data import find_ensembles, read_ensemble
from lpsc_lmp.cli import main
from lpsc_lmp.errors import AnalysisError

N_LI = 24
VOL = 958.6


def make_ensemble(
    root: Path, model: str, T: float, D_A2ps: float, n_seeds: int = 10, time_ps: float = 7.0,
    msd_dt: float = 0.05, pos_every: int = 2, failed=(), missing=(), corrupt=(), seed0: int = 1,
    rng_seed: int = 0, drift: float = 0.2,
) -> Path:
    """Write runs/<model>/T<T>K with synthetic 3-D random walks (MSD = 6 D t).

    The framework drifts at ``drift`` A/ps; Li positions carry the same drift (so the position
    analysis must remove it), while the LAMMPS-style MSD column is drift-free.
    """
    rng = np.random.default_rng(rng_seed)
    ens = root / model / f"T{T:g}K"
    (ens / "seeds").mkdir(parents=True)
    meta = {"format": 1, "model": model, "temperature_K": T, "time_ps": time_ps,
            "timestep_fs": 1.0, "supercell": 1, "msd_every_steps": int(round(msd_dt * 1000)),
            "pos_every_steps": int(round(msd_dt * pos_every * 1000)),
            "thermostat": "nose-hoover", "tdamp_fs": 100.0, "n_li": N_LI, "volume_A3": VOL,
            "type_map": ["Li", "P", "S", "Cl"], "structure_sha256": "0" * 64,
            "model_sha256": "1" * 64, "template": "nvt.lmp.j2",
            "fit_window_ps": [15 / 70 * time_ps, 65 / 70 * time_ps]}
    (ens / "ensemble.json").write_text(json.dumps(meta))
    (ens / "structure.data").write_text("fake\n")
    n = int(round(time_ps / msd_dt))
    t_msd = np.arange(n + 1) * msd_dt
    t_pos = t_msd[::pos_every]
    for k in range(n_seeds):
        num = seed0 + k
        d = ens / "seeds" / f"seed_{num:06d}"
        d.mkdir()
        (d / "in.lammps").write_text("# fake deck\n")
        if num in missing:
            continue  # interrupted: no manifest
        if num in failed:
            (d / "manifest.json").write_text(json.dumps(
                {"status": "failed", "reason": "lost atoms", "seed": num}))
            continue
        steps = rng.normal(scale=np.sqrt(2 * D_A2ps * msd_dt), size=(n, N_LI, 3))
        li = 5.0 + np.concatenate([np.zeros((1, N_LI, 3)), np.cumsum(steps, axis=0)])
        disp = li - li[0]
        sq = disp**2
        msd = np.column_stack([sq[..., 0].mean(1), sq[..., 1].mean(1), sq[..., 2].mean(1),
                               sq.sum(2).mean(1)])
        com = np.outer(t_pos, [drift, -drift, 0.5 * drift]) + 3.0
        li_pos = li[::pos_every] + (com - com[0])[:, None, :]
        thermo_t = t_msd[::20]
        npz = d / "result.npz"
        np.savez(npz, t_msd=t_msd, msd=msd, t_pos=t_pos, li_unwrapped=li_pos.astype(np.float32),
                 framework_com=com, cell=np.eye(3) * 9.86, thermo_t=thermo_t,
                 thermo=np.tile([T, -200.0, -190.0, 1.0], (thermo_t.size, 1)))
        sha = hashlib.sha256(npz.read_bytes()).hexdigest()
        if num in corrupt:
            sha = "f" * 64
        (d / "manifest.json").write_text(json.dumps(
            {"status": "done", "result_sha256": sha, "seed": num}))
    return ens


def test_runread_counts_and_order(tmp_path: Path) -> None:
    ens = make_ensemble(tmp_path, "m", 1000.0, 0.1, n_seeds=8, failed=(3,), missing=(5,),
                        corrupt=(7,))
    data = read_ensemble(ens)
    assert data.seeds.tolist() == [1, 2, 4, 6, 8]
    c = data.counts()
    assert (c["done"], c["failed"], c["missing"], c["corrupt"]) == (5, 1, 1, 1)
    assert data.status.failed == {3: "lost atoms"}
    assert data.msd.shape == (5, 141, 4) and data.li_unwrapped.shape == (5, 71, N_LI, 3)
    assert data.framework_com.shape == (5, 71, 3)
    no_pos = read_ensemble(ens, load_positions=False)
    assert no_pos.li_unwrapped is None and no_pos.n_done == 5
    assert find_ensembles(tmp_path, "m") == [(1000.0, ens)]


def test_runread_errors(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="ensemble.json"):
        read_ensemble(tmp_path)
    ens = make_ensemble(tmp_path, "m", 700.0, 0.1, n_seeds=2, failed=(1, 2))
    with pytest.raises(AnalysisError, match="no finished seeds .*2 failed"):
        read_ensemble(ens)


def test_analyze_command(tmp_path: Path) -> None:
    D = 0.1  # A^2/ps
    ens = make_ensemble(tmp_path, "m", 1000.0, D, n_seeds=12, failed=(2,), missing=(4,))
    r = CliRunner().invoke(main, ["analyze", str(ens), "--n-boot", "200"])
    assert r.exit_code == 0, r.output
    assert "D = " in r.output and "10 done, 1 failed, 1 missing" in r.output
    out = json.loads((ens / "analysis" / "analysis.json").read_text())
    d = out["diffusion"]
    assert abs(d["D_cm2s"] - D * 1e-4) < 3.5 * d["stderr_cm2s"]
    assert d["window_ps"] == pytest.approx([1.5, 6.5])
    assert out["seeds"]["failed"] == 1 and out["seeds_missing"] == [4]
    # drift removed: the position-based tracer D agrees with the truth too
    p = out["positions"]["tracer_multi_origin"]
    assert abs(p["D_cm2s"] - D * 1e-4) < 3.5 * p["stderr_cm2s"]
    s = out["positions"]["tracer_single_origin"]
    assert s["D_cm2s"] == pytest.approx(d["D_cm2s"], rel=0.15)
    assert "haven_ratio" in out["positions"]
    sig = out["conductivity_NE_HR1_mScm"]["value"]
    assert sig == pytest.approx(d["D_cm2s"] * 1.552e8 * 300 / 1000, rel=0.01)
    assert len(out["convergence"]["ns"]) > 3
    rows = (ens / "analysis" / "analysis.csv").read_text().splitlines()
    assert rows[0] == "seed,D_cm2s" and len(rows) == 11
    for f in ("msd_fan.png", "msd_fan.pdf", "convergence.png", "convergence.pdf", "msd_mean.csv"):
        assert (ens / "analysis" / f).is_file(), f


def test_analyze_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["analyze", str(tmp_path / "nope")])
    assert r.exit_code != 0 and "not a directory" in r.output
    ens = make_ensemble(tmp_path, "m", 1000.0, 0.1, n_seeds=3)
    r = runner.invoke(main, ["analyze", str(ens), "--window", "1", "50", "--no-figures"])
    assert r.exit_code == 1
    assert "beyond the data" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def _arrhenius_runs(root: Path, model: str, ea: float, d0: float, temps, seed: int) -> None:
    for i, T in enumerate(temps):
        make_ensemble(root, model, T, d0 * np.exp(-ea / (KB_EV * T)), n_seeds=10,
                      rng_seed=seed + i)


def test_arrhenius_command(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _arrhenius_runs(runs, "dp-pbe", 0.25, 5.0, [700.0, 900.0, 1100.0], 10)
    r = CliRunner().invoke(main, ["arrhenius", "--model", "dp-pbe", "--runs", str(runs),
                                                    "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    out = json.loads((runs / "dp-pbe" / "arrhenius.json").read_text())
    fit = out["fit"]
    assert abs(fit["Ea_eV"] - 0.25) < 4 * fit["Ea_err_eV"]
    assert fit["Ea_err_eV"] < 0.05
    assert "Ea =" in r.output and "sigma(300 K)" in r.output
    lo, hi = out["D_at"]["ci95"]
    assert lo < out["D_at"]["value"] < hi
    assert (runs / "dp-pbe" / "arrhenius.png").is_file()
    r = CliRunner().invoke(main, ["arrhenius", "--model", "nope", "--runs", str(runs)])
    assert r.exit_code == 1 and "no ensembles" in r.output


def test_arrhenius_says_which_temperatures_it_left_out(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _arrhenius_runs(runs, "dp-pbe", 0.25, 5.0, [700.0, 900.0, 1100.0], 10)
    make_ensemble(runs, "dp-pbe", 1300.0, 0.5, n_seeds=1)  # one seed: no error bar
    r = CliRunner().invoke(main, ["arrhenius", "--model", "dp-pbe", "--runs", str(runs),
                                                    "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    assert "left out of the fit: T = 1300 K (no error bar (1 seed)" in r.output
    out = json.loads((runs / "dp-pbe" / "arrhenius.json").read_text())
    assert out["fit"]["T_K"] == [700.0, 900.0, 1100.0]
    r = CliRunner().invoke(main, ["report", "--runs", str(runs), "--out",
                                                 str(tmp_path / "r.md")])
    assert r.exit_code == 0, r.output
    assert "T = 1300 K: left out of the Arrhenius fit" in (tmp_path / "r.md").read_text()


def test_compare_and_report(tmp_path: Path) -> None:
    runs, pots = tmp_path / "runs", tmp_path / "potentials"
    specs = {"dp-pbe": ("deepmd", "PBE", 0.10), "dp-hse": ("deepmd", "HSE", 0.07),
             "mace-pbe": ("mace", "PBE", 0.14), "mace-hse": ("mace", "HSE", 0.09)}
    for i, (m, (arch, ref, d)) in enumerate(specs.items()):
        make_ensemble(runs, m, 700.0, d, n_seeds=10, rng_seed=100 + i)
        make_ensemble(runs, m, 900.0, 2 * d, n_seeds=10, rng_seed=200 + i)
        (pots / m).mkdir(parents=True)
        (pots / m / "card.yaml").write_text(f"architecture: {arch}\nreference: {ref}\n")
    runner = CliRunner()
    r = runner.invoke(main, ["compare", "--runs", str(runs), "--potentials", str(pots),
                                             "--T", "700", "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    out = json.loads((runs / "compare_T700K.json").read_text())
    assert set(out["delta_xc"]) == {"deepmd", "mace"} and set(out["delta_nn"]) == {"PBE", "HSE"}
    xc = out["delta_xc"]["deepmd"]
    assert abs(xc["value"] - 0.03 / 0.07) < 4 * xc["err_mc"]
    report = tmp_path / "report.md"
    r = runner.invoke(main, ["report", "--runs", str(runs), "--potentials", str(pots),
                                            "--out", str(report), "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    text = report.read_text()
    assert "| dp-pbe | 700 |" in text and "## Arrhenius fits" in text
    assert "Delta_XC deepmd" in text and "report_figures/arrhenius.png" in text
    assert (tmp_path / "report_figures" / "arrhenius.png").is_file()
    r = runner.invoke(main, ["compare", "--runs", str(runs), "--potentials",
                                             str(tmp_path / "none"), "--T", "700"])
    assert r.exit_code == 1 and "card.yaml" in r.output


def test_commands_exported() -> None:
    assert {"analyze", "arrhenius", "compare", "report"} <= set(main.list_commands(None))
