"""Importing reference data (ABACUS, extxyz, DeePMD npy) and the seeded train/test split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones
from ase.io import read, write
from click.testing import CliRunner

from lpsc_lmp.cli import main
from lpsc_lmp.errors import DatasetError
from lpsc_lmp.training.dataset import import_dataset, split_dataset, split_indices

FIX = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "abacus"
SCF, MD = FIX / "abacus.scf", FIX / "abacus.md"
needs_fixtures = pytest.mark.skipif(not FIX.is_dir(), reason="ABACUS fixtures not present")

# dpdata's own reference energies for these runs (dpdata tests/test_abacus_pw_scf.py and
# tests/test_abacus_md.py); coordinates, forces and virials come from the fixture files.
CH4_ENERGY = -219.64991404
WATER_ENERGIES = [-466.69285117, -466.69929051, -466.69829826, -466.70364664, -466.6976083]


def quiet(*_a, **_k):
    pass


def ref(path: Path, shape=(-1, 3)) -> np.ndarray:
    return np.loadtxt(path).reshape(shape)


def virial_of(at: Atoms) -> np.ndarray:
    """Virial (eV) back from the stored ASE stress (stress = -virial / V)."""
    return -at.get_stress(voigt=False) * at.get_volume()


def lj_frames(n: int, seed: int = 0) -> list[Atoms]:
    """Small labelled Li-P-S-Cl frames (Lennard-Jones labels) for format round trips."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        at = Atoms("Li2PSCl", positions=rng.uniform(0, 6, (5, 3)), cell=np.diag([6.0, 6.5, 7.0]),
                   pbc=True)
        at.positions = [[0.5, 0.5, 0.5], [3.0, 0.6, 0.4], [0.4, 3.2, 0.5], [0.6, 0.4, 3.5],
                        [3.1, 3.3, 3.4]] + rng.normal(0, 0.1, (5, 3))
        at.calc = LennardJones(sigma=2.0, epsilon=0.01, rc=3.0)
        at.get_potential_energy()
        at.get_forces()
        at.get_stress()
        out.append(at)
    return out


# --------------------------------------------------------------------------- ABACUS
@needs_fixtures
def test_abacus_scf_matches_dpdata_reference(tmp_path):
    rec = import_dataset([SCF / "INPUT.ok"], "ch4", type_map=["C", "H"], root=tmp_path,
                         echo=quiet)
    assert rec["frames"] == 1 and rec["skipped"] == {"unconverged": 0, "no_forces": 0,
                                                     "no_energy": 0}
    (at,) = read(tmp_path / "ch4" / "frames.extxyz", index=":")
    assert at.get_chemical_symbols() == ["C", "H", "H", "H", "H"]
    assert at.get_potential_energy() == pytest.approx(CH4_ENERGY, abs=1e-6)
    np.testing.assert_allclose(at.get_positions(), ref(SCF / "ch4_coord"), atol=1e-5)
    np.testing.assert_allclose(at.get_forces(), ref(SCF / "ch4_force"), atol=1e-6)
    np.testing.assert_allclose(virial_of(at), ref(SCF / "ch4_virial"), atol=1e-4)


@needs_fixtures
def test_abacus_scf_skips_unconverged_and_forceless(tmp_path):
    srcs = [SCF / "INPUT.ok", SCF / "INPUT.fail", SCF / "INPUT.ch4-noforcestress"]
    rec = import_dataset(srcs, "ch4", type_map=["C", "H"], root=tmp_path, echo=quiet)
    assert rec["frames"] == 1 and rec["frames_read"] == 3
    assert rec["skipped"] == {"unconverged": 1, "no_forces": 1, "no_energy": 0}
    per = {Path(s["source"]).name: s["skipped"] for s in rec["sources"]}
    assert per["INPUT.fail"]["unconverged"] == 1
    assert per["INPUT.ch4-noforcestress"]["no_forces"] == 1
    on_disk = json.loads((tmp_path / "ch4" / "import.json").read_text())
    assert on_disk["skipped"] == rec["skipped"]
    assert len(read(tmp_path / "ch4" / "frames.extxyz", index=":")) == 1


@needs_fixtures
def test_abacus_md_matches_dpdata_reference(tmp_path):
    rec = import_dataset([MD], "water", type_map=["H", "O"], root=tmp_path, echo=quiet)
    assert rec["sources"][0]["format"] == "abacus/md"  # detected from INPUT `calculation md`
    assert rec["frames"] == 5 and sum(rec["skipped"].values()) == 0
    frames = read(tmp_path / "water" / "frames.extxyz", index=":")
    np.testing.assert_allclose([f.get_potential_energy() for f in frames], WATER_ENERGIES,
                               atol=1e-6)
    np.testing.assert_allclose(np.array([f.get_positions() for f in frames]).reshape(-1, 3),
                               ref(MD / "water_coord"), atol=1e-5)
    np.testing.assert_allclose(np.array([f.get_forces() for f in frames]).reshape(-1, 3),
                               ref(MD / "water_force"), atol=1e-6)
    np.testing.assert_allclose(np.array([virial_of(f) for f in frames]).reshape(-1, 3),
                               ref(MD / "water_virial"), atol=1e-5)


@needs_fixtures
@pytest.mark.filterwarnings("ignore:Structure .* unconverged")
def test_abacus_md_counts_unconverged_steps(tmp_path):
    md = tmp_path / "md"
    shutil.copytree(MD, md)
    log = md / "OUT.abacus" / "running_md.log"
    log.chmod(0o644)
    text = log.read_text()
    first = text.index("final etot is")  # step 0 (dumped): make its SCF unconverged
    end = text.index("\n", first)
    log.write_text(text[:first] + "!! convergence has not been achieved" + text[end:])
    rec = import_dataset([md], "water", type_map=["H", "O"], root=tmp_path, echo=quiet)
    assert rec["frames_read"] == 5 and rec["frames"] == 4
    assert rec["skipped"]["unconverged"] == 1
    frames = read(tmp_path / "water" / "frames.extxyz", index=":")
    np.testing.assert_allclose([f.get_potential_energy() for f in frames], WATER_ENERGIES[1:],
                               atol=1e-6)


@needs_fixtures
def test_type_map_refusal_names_the_fix(tmp_path):
    r = CliRunner().invoke(main, ["data", "import", str(MD), "--name", "w",
                                  "--data-root", str(tmp_path)])
    assert r.exit_code == 2
    msg = r.output.strip().splitlines()[-1]
    assert "['H', 'O']" in msg and "--type-map Li,P,S,Cl,H,O" in msg
    assert not (tmp_path / "w").exists()


@needs_fixtures
def test_existing_dataset_needs_append_or_force(tmp_path):
    args = ["--type-map", "H,O", "--data-root", str(tmp_path), "--name", "w"]
    run = CliRunner().invoke
    assert run(main, ["data", "import", str(MD), *args]).exit_code == 0
    r = run(main, ["data", "import", str(MD), *args])
    assert r.exit_code == 2 and "--append" in r.output and "--force" in r.output
    assert run(main, ["data", "import", str(MD), *args, "--append"]).exit_code == 0
    assert len(read(tmp_path / "w" / "frames.extxyz", index=":")) == 10
    rec = json.loads((tmp_path / "w" / "import.json").read_text())
    assert rec["frames"] == 10 and len(rec["sources"]) == 2
    assert run(main, ["data", "import", str(MD), *args, "--force"]).exit_code == 0
    assert len(read(tmp_path / "w" / "frames.extxyz", index=":")) == 5
    assert not list((tmp_path / "w").glob("*.tmp"))


# --------------------------------------------------------------------------- ABACUS relax
RELAX = Path(__file__).resolve().parent / "fixtures" / "abacus-relax"
# dpdata's reference energies of the normal log (tests/test_abacus_relax.py)
RELAX_ENERGIES = [-465.77753104, -464.35757552, -465.79307346, -465.80056811, -465.81235433]


def relax_run(tmp_path: Path, log: str) -> Path:
    """The relax fixture with ``running_cell-relax.log`` unpacked from ``log`` (normal or
    abnormal), in a fresh folder."""
    import gzip

    d = tmp_path / f"relax-{log}"
    shutil.copytree(RELAX, d, ignore=shutil.ignore_patterns("*.gz", "*.ref", "README.md"))
    gz = RELAX / "OUT.abacus" / f"running_cell-relax.log.{log}.gz"
    (d / "OUT.abacus" / "running_cell-relax.log").write_bytes(gzip.decompress(gz.read_bytes()))
    return d


def test_abacus_relax_matches_dpdata_reference(tmp_path):
    rec = import_dataset([relax_run(tmp_path, "normal")], "r", type_map=["H", "O"],
                         root=tmp_path, echo=quiet)
    assert rec["sources"][0]["format"] == "abacus/relax"
    assert rec["frames"] == 5 and rec["skipped"]["unconverged"] == 0
    frames = read(tmp_path / "r" / "frames.extxyz", index=":")
    np.testing.assert_allclose([f.get_potential_energy() for f in frames], RELAX_ENERGIES,
                               atol=1e-7)
    np.testing.assert_allclose([f.get_positions() for f in frames],
                               ref(RELAX / "coord.ref").reshape(5, 3, 3), atol=1e-5)
    np.testing.assert_allclose([f.get_forces() for f in frames],
                               ref(RELAX / "force.ref").reshape(5, 3, 3), atol=1e-5)
    np.testing.assert_allclose([virial_of(f) for f in frames],
                               ref(RELAX / "virial.ref").reshape(5, 3, 3), atol=1e-5)


def test_abacus_relax_counts_unconverged_steps(tmp_path):
    rec = import_dataset([relax_run(tmp_path, "abnormal")], "r", type_map=["H", "O"],
                         root=tmp_path, echo=quiet)
    assert rec["frames"] == 4 and rec["frames_read"] == 5
    assert rec["skipped"]["unconverged"] == 1
    energies = [f.get_potential_energy() for f in read(tmp_path / "r" / "frames.extxyz",
                                                       index=":")]
    assert energies[-1] == pytest.approx(RELAX_ENERGIES[-1], abs=1e-7)


# --------------------------------------------------------------------------- VASP
VASP = Path(__file__).resolve().parent / "fixtures" / "vasp"


def vasp_file(tmp_path: Path, name: str) -> Path:
    """Unpack a gzipped VASP fixture (real VASP output from dpdata's test suite, see
    tests/fixtures/vasp/README.md) under its own name, which format detection reads."""
    import gzip

    out = tmp_path / "vasp" / name
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(gzip.decompress((VASP / f"{name}.gz").read_bytes()))
    return out


def rotation(cell_from: np.ndarray, cell_to: np.ndarray) -> np.ndarray:
    """R with cell_to = cell_from @ R (dpdata turns cells lower-triangular); checked proper."""
    r = np.linalg.solve(cell_from, cell_to)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-8)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-8)
    return r


@pytest.mark.parametrize(("name", "ase_format"), [("OUTCAR.h2o.md", "vasp-out"),
                                                  ("vasprun.h2o.md.xml", "vasp-xml")])
def test_vasp_import_matches_ase_reader(tmp_path, name, ase_format):
    """dpdata (our reader) against ASE's independent VASP parser: TOTEN / e_fr_energy, forces,
    positions and stress frame by frame, after undoing dpdata's rotation of the cell."""
    src = vasp_file(tmp_path, name)
    rec = import_dataset([src], "w", type_map=["O", "H"], root=tmp_path, echo=quiet)
    fmt = "vasp/outcar" if name.startswith("OUTCAR") else "vasp/xml"
    assert rec["sources"][0]["format"] == fmt
    assert rec["frames"] == 3 and rec["skipped"]["unconverged"] == 0
    ours = read(tmp_path / "w" / "frames.extxyz", index=":")
    theirs = read(src, index=":", format=ase_format)
    assert len(theirs) == 3
    for a, b in zip(theirs, ours, strict=True):
        assert b.get_chemical_symbols() == a.get_chemical_symbols()
        r = rotation(a.cell.array, b.cell.array)
        assert b.get_potential_energy() == pytest.approx(
            a.get_potential_energy(force_consistent=True), abs=1e-6)
        np.testing.assert_allclose(b.get_positions(), a.get_positions() @ r, atol=1e-5)
        np.testing.assert_allclose(b.get_forces(), a.get_forces() @ r, atol=1e-5)
        np.testing.assert_allclose(b.get_stress(voigt=False),
                                   r.T @ a.get_stress(voigt=False) @ r, atol=1e-6)


@pytest.mark.parametrize(("name", "kept", "unconverged"),
                         [("OUTCAR.ch4.unconverged", 1, 2), ("vasprun.h2o.md.conv.xml", 2, 1)])
def test_vasp_unconverged_steps_skipped_and_counted(tmp_path, name, kept, unconverged):
    """Ionic steps whose SCF ran into NELM are dropped and counted; the kept ones are the
    converged steps of ASE's reading of the same file."""
    src = vasp_file(tmp_path, name)
    tm = ["C", "H"] if "ch4" in name else ["O", "H"]
    rec = import_dataset([src], "v", type_map=tm, root=tmp_path, echo=quiet)
    assert rec["frames"] == kept and rec["frames_read"] == kept + unconverged
    assert rec["skipped"]["unconverged"] == unconverged
    fmt = "vasp-out" if name.startswith("OUTCAR") else "vasp-xml"
    all_e = [at.get_potential_energy(force_consistent=True)
             for at in read(src, index=":", format=fmt)]
    for at in read(tmp_path / "v" / "frames.extxyz", index=":"):
        assert min(abs(at.get_potential_energy() - e) for e in all_e) < 1e-6


def test_vasp_outside_type_map_refused(tmp_path):
    src = vasp_file(tmp_path, "OUTCAR.h2o.md")
    r = CliRunner().invoke(main, ["data", "import", str(src), "--name", "w",
                                  "--data-root", str(tmp_path)])
    assert r.exit_code == 2 and "--type-map Li,P,S,Cl,H,O" in r.output.strip().splitlines()[-1]
    assert not (tmp_path / "w").exists()


# --------------------------------------------------------------------------- extxyz, npy
def test_extxyz_round_trip(tmp_path):
    frames = lj_frames(4)
    src = tmp_path / "in.extxyz"
    write(src, frames, format="extxyz")
    rec = import_dataset([src], "lj", root=tmp_path, echo=quiet)
    assert rec["frames"] == 4 and rec["sources"][0]["format"] == "extxyz"
    back = read(tmp_path / "lj" / "frames.extxyz", index=":")
    for a, b in zip(frames, back, strict=True):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        np.testing.assert_allclose(b.get_positions(), a.get_positions(), atol=1e-8)
        np.testing.assert_allclose(b.cell.array, a.cell.array, atol=1e-8)
        assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(b.get_forces(), a.get_forces(), atol=1e-8)
        np.testing.assert_allclose(b.get_stress(), a.get_stress(), atol=1e-10)


def test_extxyz_frames_without_forces_are_skipped(tmp_path):
    frames = lj_frames(3)
    bare = frames[1].copy()  # no calculator: no energy, no forces
    src = tmp_path / "in.extxyz"
    write(src, [frames[0], bare, frames[2]], format="extxyz")
    rec = import_dataset([src], "lj", root=tmp_path, echo=quiet)
    assert rec["frames"] == 2 and rec["skipped"]["no_forces"] == 1


def test_deepmd_npy_import(tmp_path):
    import dpdata

    frames = lj_frames(3)
    src = tmp_path / "in.extxyz"
    write(src, frames, format="extxyz")
    ms = dpdata.MultiSystems(type_map=["Li", "P", "S", "Cl"])
    for at in read(src, index=":"):
        ms.append(dpdata.LabeledSystem(at, fmt="ase/structure", type_map=["Li", "P", "S", "Cl"]))
    ms.to("deepmd/npy", str(tmp_path / "src"))
    rec = import_dataset([tmp_path / "src"], "npy", root=tmp_path, echo=quiet)
    assert rec["sources"][0]["format"] == "deepmd/npy" and rec["frames"] == 3
    back = read(tmp_path / "npy" / "frames.extxyz", index=":")
    for a, b in zip(frames, back, strict=True):
        assert sorted(a.get_chemical_symbols()) == sorted(b.get_chemical_symbols())
        assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-6)
        # dpdata sorts atoms by type: compare forces atom by atom through the positions
        order = [int(np.argmin(np.linalg.norm(a.positions - p, axis=1))) for p in b.positions]
        np.testing.assert_allclose(b.get_forces(), a.get_forces()[order], atol=1e-6)
        np.testing.assert_allclose(b.get_stress(), a.get_stress(), atol=1e-8)


def test_unknown_source_asks_for_format(tmp_path):
    p = tmp_path / "mystery.dat"
    p.write_text("1 2 3\n")
    with pytest.raises(DatasetError, match="--format"):
        import_dataset([p], "x", root=tmp_path, echo=quiet)


# --------------------------------------------------------------------------- split
def test_split_indices_reproducible_disjoint_complete():
    a, b = split_indices(100, 17, 0), split_indices(100, 17, 0)
    assert a == b and len(a) == 17
    assert split_indices(100, 17, 1) != a
    assert len(set(a)) == 17 and all(0 <= i < 100 for i in a)


def _dataset(tmp_path, n=20) -> Path:
    write(tmp_path / "in.extxyz", lj_frames(n), format="extxyz")
    import_dataset([tmp_path / "in.extxyz"], "lj", root=tmp_path, echo=quiet)
    return tmp_path / "lj"


def _energies(p: Path) -> list[float]:
    return [round(f.get_potential_energy(), 10) for f in read(p, index=":")]


def test_split_files_partition_frames(tmp_path):
    d = _dataset(tmp_path)
    rec = split_dataset("lj", 0.25, seed=3, root=tmp_path, echo=quiet)
    assert rec["n_test"] == 5 and rec["n_train"] == 15
    all_e = _energies(d / "frames.extxyz")
    tr, te = _energies(d / "train.extxyz"), _energies(d / "test.extxyz")
    assert te == [all_e[i] for i in rec["test_indices"]]
    assert sorted(tr + te) == sorted(all_e) and not set(tr) & set(te)
    assert rec["test_indices"] == split_indices(20, 5, 3)


def test_split_rerun_is_noop_and_different_args_refused(tmp_path):
    d = _dataset(tmp_path)
    run = CliRunner().invoke
    args = ["data", "split", "lj", "--data-root", str(tmp_path)]
    assert run(main, [*args, "--test", "6", "--seed", "0"]).exit_code == 0
    before = {f: (d / f).stat().st_mtime_ns for f in ("split.json", "train.extxyz")}
    r = run(main, [*args, "--test", "6", "--seed", "0"])
    assert r.exit_code == 0 and "nothing to do" in r.output
    assert before == {f: (d / f).stat().st_mtime_ns for f in ("split.json", "train.extxyz")}
    r = run(main, [*args, "--test", "6", "--seed", "1"])
    assert r.exit_code == 2 and "--force" in r.output
    r = run(main, [*args, "--test", "0.5", "--seed", "0"])
    assert r.exit_code == 2
    assert json.loads((d / "split.json").read_text())["seed"] == 0
    r = run(main, [*args, "--test", "6", "--seed", "1", "--force"])
    assert r.exit_code == 0
    assert json.loads((d / "split.json").read_text())["seed"] == 1


def test_split_refuses_after_append(tmp_path):
    d = _dataset(tmp_path)
    split_dataset("lj", 4, seed=0, root=tmp_path, echo=quiet)
    import_dataset([tmp_path / "in.extxyz"], "lj", root=tmp_path, append=True, echo=quiet)
    with pytest.raises(DatasetError, match="frames.extxyz changed"):
        split_dataset("lj", 4, seed=0, root=tmp_path, echo=quiet)
    assert json.loads((d / "split.json").read_text())["n_frames"] == 20


def test_split_bad_sizes(tmp_path):
    _dataset(tmp_path, n=5)
    for bad in (0, 5, 2.5, 1.0 - 1e-9 + 1):
        with pytest.raises(DatasetError):
            split_dataset("lj", bad, root=tmp_path, echo=quiet)
