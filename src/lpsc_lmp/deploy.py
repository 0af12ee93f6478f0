"""Derive deployable model files from the committed ones (``make install`` runs this).

A card's ``derive`` section maps a file to the tool that makes it, e.g.
``compressed.pth: {from: frozen.pth, tool: dp-compress}``. Large derived files (a compressed
DeePMD model is ~100x its frozen model) are not committed; they are made here in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .registry import ModelCard, RegistryError


def _dp_compress(src: Path, out: Path) -> None:
    from .train_deepmd import compress

    compress(src, out)


def _nequip_compile(src: Path, out: Path) -> None:
    """AOTInductor-compile a NequIP/Allegro package or checkpoint for the ASE calculator, in
    ``.venv/nequip`` (40-100 s with g++)."""
    import subprocess

    from .paths import env_python, thread_env
    from .routes import env_for_subprocess

    exe = env_python("nequip").parent / "nequip-compile"
    if not exe.exists():
        raise RegistryError(f"{exe} is missing (needed to make {out.name}); run `make install`")
    tmp = out.with_name(".tmp-" + out.name)
    r = subprocess.run([str(exe), str(src), str(tmp), "--mode", "aotinductor", "--device", "cpu",
                        "--target", "ase"], capture_output=True, text=True,
                       env=dict(env_for_subprocess(exe), **thread_env(1)))
    if r.returncode or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise RegistryError(f"nequip-compile of {src.name} failed: {last[:200]}")
    tmp.replace(out)


TOOLS: dict[str, Callable[[Path, Path], None]] = {"dp-compress": _dp_compress,
                                                   "nequip-compile": _nequip_compile}


def derive_missing(card: ModelCard, force: bool = False) -> list[Path]:
    """Make every derived file of ``card`` that is missing; return the files made."""
    made = []
    for target, how in (card.raw.get("derive") or {}).items():
        out = card.directory / target
        if out.is_file() and not force:
            continue
        src = card.directory / how["from"]
        if not src.is_file():
            raise RegistryError(f"{src} (source of {target}) is missing; restore it from git")
        tool = TOOLS.get(how["tool"])
        if tool is None:
            raise RegistryError(f"card of {card.name}: unknown derive tool {how['tool']!r}; "
                                f"use one of {sorted(TOOLS)}")
        tool(src, out)
        made.append(out)
    return made
