"""Files written whole or not at all, and their sha256.

Every file lpsc-lmp writes for others to read (manifests, results, datasets, cards) is written
to ``<name>.tmp`` beside it and renamed into place, so a reader never sees half a file and an
interrupted write leaves no partial file under the final name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode()).hexdigest()


def tmp_path(path: Path) -> Path:
    """The temporary name a file is written under before it is renamed into place."""
    return path.with_name(path.name + ".tmp")


def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` and rename ``tmp`` to ``path``; on any error the temporary file is
    removed and the error raised. Returns ``path``."""
    p = Path(path)
    tmp = tmp_path(p)
    try:
        write(tmp)
        tmp.replace(p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (sorted keys) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any | None:
    """The JSON content of ``path``, or None if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
