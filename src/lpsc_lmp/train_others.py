"""``lpsc-lmp train --arch mace|nequip|allegro``: dataset -> trained model -> registered model.

The training input is rendered from a Jinja template in ``templates/train/`` (``--templates DIR``
replaces the folder):

- mace: ``mace.args.j2``, the arguments of ``mace_run_train`` (one per line); the dataset is
  copied with its labels under the keys MACE reads (``REF_energy``, ``REF_forces``,
  ``REF_stress``). The trained ``.model`` goes through the MACE export of ``models add``
  (float64).
- nequip, allegro: ``nequip.yaml.j2`` / ``allegro.yaml.j2`` (which extends the first and replaces
  the model block), run by ``nequip-train``. The checkpoint (``best.ckpt``, else ``last.ckpt``)
  is repaired if nequip 0.19.1 saved it with the EMA weights swapped in (see
  :func:`fix_ema_checkpoint`), packaged with ``nequip-package`` (``<name>.nequip.zip``, kept in
  the model folder) and compiled by the NequIP export of ``models add`` (``model.nequip.pt2``).

The trainer runs in the architecture's environment (``models_add.ENV``), its output streamed
line by line (and kept as ``train.log`` in the model folder). The card is the one ``models add``
writes plus ``reference_method``, ``dataset``, ``training`` and ``errors`` (energy RMSE per atom
and force RMSE over all components on train/test, from the model's own ASE calculator through
``python -m lpsc_lmp.route_checks predict``, as ``lpsc-lmp evaluate`` computes them). The model
folder is assembled in a hidden staging folder and renamed into place at the end, so a failed or
interrupted training leaves no half-written model.

In-environment helper: ``python -m lpsc_lmp.train_others fix-ema IN.ckpt OUT.ckpt`` (prints JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

ARCHS = ("mace", "nequip", "allegro")
#: template of each architecture under templates/
TEMPLATE = {"mace": "train/mace.args.j2", "nequip": "train/nequip.yaml.j2",
            "allegro": "train/allegro.yaml.j2"}
R_MAX_A = 5.0
#: what an architecture does with neither --epochs nor --max-minutes (the bundled models)
DEFAULT_EPOCHS = {"mace": 20, "nequip": 60, "allegro": 60}
DEFAULT_MINUTES = {"mace": None, "nequip": 18.0, "allegro": 18.0}
#: mace with --max-minutes and no --epochs: train until the time limit
MACE_UNLIMITED_EPOCHS = 100000
MODEL_TEXT = {
    "mace": "MACE, 16 channels, max_L 0, correlation 2, 2 interactions, r_max {r} A, "
            "8 Bessel functions, E0s average, float64",
    "nequip": "NequIP, 2 layers, l_max 1, 16 features, r_max {r} A, ZBL prior, float32",
    "allegro": "Allegro, 2 layers, l_max 1, 32 scalar / 8 tensor features, r_max {r} A, ZBL "
               "prior, float32",
}


# ------------------------------------------------------------------ in the nequip environment
def fix_ema_checkpoint(src: Path, dst: Path) -> dict[str, Any]:
    """Repair a nequip 0.19.1 EMA checkpoint saved by lightning 2.6 while the EMA weights were
    swapped into the model (ModelCheckpoint runs before the module's on_validation_end, and
    nequip-package then refuses it: "EMA module loaded in a state where it does not contain EMA
    weights"). The model then holds the EMA weights (those validated): copy them into the EMA
    slots and mark the EMA module as holding them. Also says which architecture it is."""
    import torch

    ck = torch.load(str(src), map_location="cpu", weights_only=False)
    hp = ck.get("hyper_parameters", {}) if isinstance(ck, dict) else {}
    target = json.dumps((hp.get("model") or {}).get("_target_", ""), default=str).lower()
    arch = "allegro" if "allegro" in target else "nequip" if "nequip" in target else None
    sd = ck["state_dict"]
    extra = sd.get("ema._extra_state")
    fixed = 0
    if extra is not None and not extra["is_holding_ema_weights"]:
        ema_keys = sorted((k for k in sd if k.startswith("ema.ema_weight_")),
                          key=lambda k: int(k.rsplit("_", 1)[1]))
        cands = [k for k in sd if k.startswith("model.") and torch.is_tensor(sd[k])
                 and sd[k].is_floating_point()
                 and not k.endswith(("output_mask", "_rmax_recip"))]
        i = 0
        for ek in ema_keys:
            while i < len(cands) and sd[cands[i]].shape != sd[ek].shape:
                i += 1
            if i == len(cands):
                raise ValueError(f"no model parameter of shape {tuple(sd[ek].shape)} for {ek}")
            sd[ek] = sd[cands[i]].clone()
            i += 1
            fixed += 1
        extra["is_holding_ema_weights"] = True
    torch.save(ck, str(dst))
    return {"arch": arch, "ema_tensors_copied": fixed}


def _main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "fix-ema":
        print(json.dumps(fix_ema_checkpoint(Path(argv[1]), Path(argv[2]))))
        return 0
    print("usage: python -m lpsc_lmp.train_others fix-ema IN.ckpt OUT.ckpt", file=sys.stderr)
    return 2


# ------------------------------------------------------------------ helpers (core environment)
def _env(exe: Path) -> dict[str, str]:
    from .paths import thread_env
    from .routes import env_for_subprocess

    threads = int(os.environ.get("OMP_NUM_THREADS") or 1)
    env = dict(env_for_subprocess(exe), **thread_env(threads))
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _stream(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, echo,
            limit_s: float | None = None) -> bool:
    """Run ``cmd``, echo its output line by line (and append it to ``log``); ClickException
    with the last lines if it fails. With ``limit_s`` the process is terminated (SIGTERM) after
    that many seconds; returns True if that happened (not an error), else False."""
    import threading

    import click

    tail: deque[str] = deque(maxlen=15)
    stopped = threading.Event()
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)

        def stop() -> None:
            if proc.poll() is None:
                stopped.set()
                proc.terminate()

        timer = threading.Timer(limit_s, stop) if limit_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                tail.append(line.rstrip())
                echo(line.rstrip())
            rc = proc.wait()
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            if timer:
                timer.cancel()
        if stopped.is_set():
            fh.write(f"[lpsc-lmp] stopped after the time limit of {limit_s:.0f} s\n")
            return True
    if rc:
        raise click.ClickException(f"{Path(cmd[0]).name} failed (exit {rc}); last lines:\n"
                                   + "\n".join(tail))
    return False


def mace_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """MACE checkpoints (``<tag>_epoch-<N>.pt``) in ``folder``, newest epoch first."""
    import re

    found = []
    for f in folder.glob("*_epoch-*.pt"):
        m = re.search(r"_epoch-(\d+)\.pt$", f.name)
        if m:
            found.append((int(m.group(1)), f))
    return sorted(found, reverse=True)


def _loads(exe: Path, env: dict[str, str], ckpt: Path) -> bool:
    """Whether ``ckpt`` loads with torch in the model's environment (a checkpoint being written
    when the time limit struck is truncated)."""
    code = ("import sys, torch; torch.load(sys.argv[1], map_location='cpu', "
            "weights_only=False)")
    return subprocess.run([str(exe), "-c", code, str(ckpt)], env=env,
                          capture_output=True).returncode == 0


def mace_finish_from_checkpoint(args: list[str], bindir: Path, exe: Path, work: Path,
                                env: dict[str, str], log: Path, echo) -> int:
    """After ``mace_run_train`` was stopped by the time limit: write the model from the newest
    loadable checkpoint with MACE's own code (``--restart_latest`` with ``--max_num_epochs`` set
    to the checkpoint's epoch, so no epoch is trained; MACE then evaluates and saves
    ``<name>.model`` as at the end of a normal run). Returns that epoch."""
    import click

    epoch = None
    for n, ckpt in mace_checkpoints(work / "checkpoints"):
        if _loads(exe, env, ckpt):
            epoch = n
            break
        echo(f"{ckpt.name} is incomplete (written when the time limit struck); removed")
        ckpt.unlink()
    if epoch is None:
        raise click.ClickException("mace_run_train saved no checkpoint before the time limit "
                                   "(it saves one when the validation error improves, every "
                                   "eval_interval epochs); raise --max-minutes or use --epochs")
    echo(f"time limit reached: writing the model from the checkpoint of epoch {epoch} ...")
    _stream([str(bindir / "mace_run_train"), *args, "--restart_latest",
             f"--max_num_epochs={epoch}"], work, env, log, echo)
    return epoch


def _run_json(cmd: list[str], env: dict[str, str], what: str) -> dict[str, Any]:
    import click

    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in r.stdout.strip().splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        last = (r.stderr.strip().splitlines() or ["no output"])[-3:]
        raise click.ClickException(f"{what} failed: " + " | ".join(last)[-400:])
    return json.loads(lines[-1])


def max_time(minutes: float) -> str:
    """Lightning's ``max_time`` ("DD:HH:MM:SS") for ``minutes``."""
    s = max(int(round(minutes * 60)), 1)
    return f"{s // 86400:02d}:{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def mace_data(ds_dir: Path, out: Path) -> None:
    """{train,test}.extxyz with the labels under REF_energy / REF_forces / REF_stress."""
    from ase.io import read, write

    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        frames = []
        for at in read(ds_dir / f"{split}.extxyz", index=":"):
            e, f = at.get_potential_energy(), at.get_forces()
            try:
                s = at.get_stress(voigt=False).reshape(-1)
            except Exception:  # noqa: BLE001 (no stress labels: MACE trains without them)
                s = None
            at.calc = None
            at.info = {"REF_energy": e, **({"REF_stress": s} if s is not None else {})}
            at.arrays = {k: v for k, v in at.arrays.items() if k in ("numbers", "positions")}
            at.arrays["REF_forces"] = f
            frames.append(at)
        write(out / f"{split}.extxyz", frames, format="extxyz")


def render(arch: str, ctx: dict[str, Any], templates: Path | None) -> str:
    from .deck import render_deck

    return render_deck(ctx, TEMPLATE[arch], templates).text


def _rel(p: Path) -> str:
    from .paths import project_root

    try:
        return str(p.resolve().relative_to(project_root()))
    except ValueError:
        return str(p)


def predict_errors(model_dir: Path, env: str, files: dict[str, Path]) -> dict[str, dict]:
    """RMSEs of the model in ``model_dir`` (its card) on labelled files, from its own ASE
    calculator in its environment (``route_checks predict``)."""
    from .route_checks import run_in_env

    res = run_in_env(env, ["predict", str(model_dir), *map(str, files.values())])
    out = {}
    for key, f in files.items():
        r = res["files"][str(f)]
        out[key] = {"energy_rmse_meV_atom": r["energy_rmse_meV_atom"],
                    "force_rmse_eV_A": r["force_rmse_eV_A"], "frames": r["frames"]}
    return out


# ------------------------------------------------------------------ the command
def train_other(arch: str, dataset: str, name: str, reference: str, epochs: int | None = None,
                max_minutes: float | None = None, templates: Path | None = None,
                force: bool = False, root: Path | None = None, seed: int = 1,
                rcut: float | None = None, reference_method: str | None = None,
                echo=None) -> Path:
    """Train ``arch`` on ``<root>/<dataset>/{train,test}.extxyz``; register ``potentials/<name>``.
    """
    import click
    import yaml
    from ase.data import atomic_numbers
    from ase.io import read

    from .dataset import DatasetError, read_import_record
    from .models_add import ENV, ExportError, make_card, run_export
    from .paths import env_python
    from .registry import publish_model_dir, registered_line
    from .structure import DEFAULT_TYPE_MAP
    from .train_cli import training_target

    echo = echo or click.echo
    if arch not in ARCHS:
        raise click.UsageError(f"--arch {arch}: use one of {', '.join(ARCHS)} here")
    if epochs is not None and epochs < 1:
        raise click.UsageError(f"--epochs {epochs} must be >= 1")
    if max_minutes is not None and max_minutes <= 0:
        raise click.UsageError(f"--max-minutes {max_minutes:g} must be positive")
    if epochs is None and max_minutes is None:
        epochs, max_minutes = DEFAULT_EPOCHS[arch], DEFAULT_MINUTES[arch]
    r_max = float(rcut if rcut is not None else R_MAX_A)
    exe = env_python(ENV[arch])
    if not exe.exists():
        raise click.UsageError(f"--arch {arch}: environment .venv/{ENV[arch]} is missing; run "
                               "`make install`")
    ds_dir, pot, out = training_target(dataset, root, name, force)
    record = read_import_record(dataset, root)
    type_map = list(record["type_map"]) if record else list(DEFAULT_TYPE_MAP)
    frames = {s: read(ds_dir / f"{s}.extxyz", index=":") for s in ("train", "test")}
    extra = sorted({x for fr in frames.values() for at in fr for x in at.get_chemical_symbols()}
                   - set(type_map))
    if extra:
        raise DatasetError(f"{ds_dir} has elements {extra} outside the type map {type_map}; "
                           "re-import it with a --type-map that includes them")

    pot.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".staging", dir=pot))
    try:
        work, model = stage / "work", stage / "model"
        work.mkdir()
        model.mkdir()
        env = _env(exe)
        bindir = exe.parent
        log = model / "train.log"
        limit = (f"{epochs} epochs" if epochs else "no epoch limit") + (
            f", at most {max_minutes:g} min" if max_minutes else "")
        echo(f"training {arch} '{name}' on {ds_dir} ({limit}, type map {type_map}, r_max "
             f"{r_max} A) in .venv/{ENV[arch]}; trainer output follows")
        t0 = time.perf_counter()
        stopped_at = None
        if arch == "mace":
            mace_data(ds_dir, work / "data")
            n_epochs = epochs or MACE_UNLIMITED_EPOCHS
            ctx = {"name": "model", "seed": seed, "r_max": r_max,
                   "train_file": str(work / "data" / "train.extxyz"),
                   "test_file": str(work / "data" / "test.extxyz"),
                   "atomic_numbers": sorted(atomic_numbers[s] for s in type_map),
                   "epochs": n_epochs, "eval_interval": max(1, min(5, n_epochs))}
            text = render(arch, ctx, templates)
            (model / "training_args.txt").write_text(text)
            args = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if max_minutes:  # keep every checkpoint: one may be cut short by the time limit
                args.append("--keep_checkpoints")
            if _stream([str(bindir / "mace_run_train"), *args], work, env, log, echo,
                       limit_s=max_minutes * 60 if max_minutes else None):
                stopped_at = mace_finish_from_checkpoint(args, bindir, exe, work, env, log,
                                                         echo)
            src = work / "model.model"
            if not src.is_file():
                raise click.ClickException(f"mace_run_train wrote no {src.name}; see {log}")
        else:
            ctx = {"data_dir": str(ds_dir), "type_map": type_map, "r_max": r_max,
                   "max_epochs": epochs if epochs else -1,
                   "max_time": max_time(max_minutes) if max_minutes else None,
                   "val_every": max(1, min(2, epochs or 2)), "seed": seed}
            text = render(arch, ctx, templates)
            yaml.safe_load(text)  # the rendered config must be valid YAML
            (work / "config.yaml").write_text(text)
            (model / "training_config.yaml").write_text(text)
            run_dir = work / "run"
            _stream([str(bindir / "nequip-train"), "-cp", str(work), "-cn", "config.yaml",
                     f"hydra.run.dir={run_dir}"], work, env, log, echo)
            ckpt = run_dir / "best.ckpt"
            if not ckpt.is_file():
                ckpt = run_dir / "last.ckpt"
            if not ckpt.is_file():
                raise click.ClickException(f"nequip-train wrote no checkpoint; see {log}")
            for m in sorted(run_dir.rglob("metrics.csv"))[-1:]:  # the CSV logger's record
                shutil.copy(m, model / "metrics.csv")
            fixed = work / "fixed.ckpt"
            info = _run_json([str(exe), "-m", "lpsc_lmp.train_others", "fix-ema", str(ckpt),
                              str(fixed)], env, "checking the EMA weights of " + ckpt.name)
            if info["arch"] != arch:
                raise click.ClickException(f"{ckpt.name} is a {info['arch']} checkpoint, not "
                                           f"{arch}; check {TEMPLATE[arch]}")
            echo(f"{ckpt.name}: EMA weights {'repaired' if info['ema_tensors_copied'] else 'ok'}"
                 f"; packaging (nequip-package) ...")
            src = model / f"{name}.nequip.zip"
            _stream([str(bindir / "nequip-package"), "build", str(fixed), str(src)], work, env,
                    log, lambda s: None)
        seconds = time.perf_counter() - t0
        echo(f"trained in {seconds:.0f} s; exporting (as `lpsc-lmp models add`) ...")
        try:
            res = run_export(arch, src, model)
        except ExportError as exc:
            raise click.ClickException(f"export of the trained model failed: {exc}") from None
        card = make_card(name, arch, reference, src, res)
        card.pop("source", None)
        card = _card(card, arch, reference, reference_method, name, dataset, ds_dir, record,
                     frames, r_max, epochs, max_minutes, seed, seconds, res, src, ckpt_name=(
                         None if arch == "mace" else ckpt.name), stopped_at=stopped_at)
        if out.exists() and reference_method is None:
            from .train_cli import _carry_over

            _carry_over(card, out / "card.yaml", echo)
        (model / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
        echo("computing train/test errors with the model's ASE calculator ...")
        errs = predict_errors(model, ENV[arch], {s: ds_dir / f"{s}.extxyz"
                                                 for s in ("train", "test")})
        card["errors"] = {s: {"energy_rmse_meV_atom": round(errs[s]["energy_rmse_meV_atom"], 3),
                              "force_rmse_eV_A": round(errs[s]["force_rmse_eV_A"], 4)}
                          for s in ("train", "test")}
        card["errors"]["computed_with"] = f"the model's own ASE calculator on {res['deploy']}"
        card["regenerate"] = card.pop("regenerate")
        (model / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
        publish_model_dir(model, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    echo(registered_line(out, card))
    from .deploy import derive_route_file
    from .registry import RegistryError, load_card

    try:  # the export of the route this LAMMPS runs (pair_mace, pair_nequip, ...), if any
        derive_route_file(load_card(name, root=pot), echo=echo)
    except RegistryError as exc:
        echo(f"warning: the export for the native route failed ({exc}); the model runs on "
             "--route python-callback")


def _card(card: dict[str, Any], arch: str, reference: str, reference_method: str | None,
          name: str, dataset: str, ds_dir: Path, record: dict[str, Any] | None,
          frames: dict[str, list], r_max: float, epochs: int | None, max_minutes: float | None,
          seed: int, seconds: float, res: dict[str, Any], src: Path,
          ckpt_name: str | None, stopped_at: int | None = None) -> dict[str, Any]:
    from .models_add import ENV, native_routes
    from .paths import env_python

    exe = env_python(ENV[arch])

    def ver(pkg: str) -> str:
        r = subprocess.run([str(exe), "-c", "import sys; from importlib import metadata; "
                            "print(*[metadata.version(p) for p in sys.argv[1:]])", *pkg.split()],
                           capture_output=True, text=True, env=_env(exe))
        return r.stdout.strip() or "?"

    if arch == "mace":
        v = ver("mace-torch e3nn torch").split()
        program = f"mace-torch {v[0]} (e3nn {v[1]}, torch {v[2]}), CPU"
        how = {"command": "mace_run_train (arguments in training_args.txt)",
               "input": "templates/train/mace.args.j2 (rendered copy in training_args.txt)"}
        files, derive = {"deploy": res["deploy"]}, {}
        if stopped_at is not None:
            how["stopped"] = (f"by --max-minutes {max_minutes:g}; model written by MACE from the "
                              f"checkpoint of epoch {stopped_at} (the last improving validation)")
    else:
        pkgs = "nequip e3nn torch" + (" nequip-allegro" if arch == "allegro" else "")
        v = ver(pkgs).split()
        program = (f"nequip {v[0]}" + (f" + nequip-allegro {v[3]}" if arch == "allegro" else "")
                   + f" (e3nn {v[1]}, torch {v[2]}), CPU")
        how = {"command": "nequip-train (config in training_config.yaml)",
               "input": f"{TEMPLATE[arch].replace('train/', 'templates/train/')} (rendered copy "
                        "in training_config.yaml)",
               "checkpoint": f"{ckpt_name} (EMA weights), packaged with nequip-package"}
        files = {"package": src.name, "deploy": res["deploy"]}
        derive = {res["deploy"]: {"from": src.name, "tool": "nequip-compile"}}
    nat = native_routes(arch, res.get("source"))
    files.update(nat["files"])
    derive.update(nat["derive"])
    if record:
        srcs = sorted({f"{s['format']}: {s['source']}" for s in record.get("sources", [])})
        sampling = (f"imported by `lpsc-lmp data import` from {len(srcs)} source(s): "
                    + "; ".join(srcs))
    else:
        sampling = f"see {_rel(ds_dir)}"
    limit = []
    if epochs:
        limit.append(f"--epochs {epochs}")
    if max_minutes:
        limit.append(f"--max-minutes {max_minutes:g}")
    out = {
        **{k: card[k] for k in ("name", "architecture", "reference")},
        "reference_method": reference_method or f"{reference} labels of {_rel(ds_dir)}",
        **{k: card[k] for k in ("type_map", "cutoff_A")}, "route": nat["route"],
        "env": card["env"],
        "files": files,
        **({"derive": derive} if derive else {}),
        "dataset": dataset,
        "training": {
            "program": program, **how,
            "model": MODEL_TEXT[arch].format(r=r_max),
            "epochs": epochs, "max_minutes": max_minutes, "seed": seed,
            "seconds": round(seconds),
            "threads": int(os.environ.get("OMP_NUM_THREADS") or 1),
            "dataset": f"{_rel(ds_dir)} (train.extxyz, test.extxyz)",
            "dataset_sha256": {s: hashlib.sha256((ds_dir / f"{s}.extxyz").read_bytes())
                               .hexdigest() for s in ("train", "test")},
            "frames": {s: len(fr) for s, fr in frames.items()},
            "validation": "test.extxyz",
            "sampling": sampling,
            "export": res["export"],
        },
        "regenerate": (f"lpsc-lmp train --arch {arch} --dataset {dataset} --name {name} "
                       f"--reference {reference} {' '.join(limit)} --seed {seed} --force"),
    }
    return out


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
