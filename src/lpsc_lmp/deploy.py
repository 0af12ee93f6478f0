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


TOOLS: dict[str, Callable[[Path, Path], None]] = {"dp-compress": _dp_compress}


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
