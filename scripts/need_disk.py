"""Refuse to build an environment where the disk cannot hold it (``make install``).

Usage: python scripts/need_disk.py GB PATH
Exits 1 with a one-line message when less than GB gigabytes are free on the file system of PATH
(pip would otherwise stop half-way with "No space left on device"). Sizes measured on a clean
install (pip cache off): .venv/dp 6.4 GB (torch 2.11 with its CUDA libraries, which DeePMD-kit
3.2's ops need), .venv/label 1.5 GB, .venv/mace 1.7 GB, .venv/nequip 1.6 GB, plus the wheels
while they are unpacked; scripts/dedupe_envs.py then hard-links the files the envs share (8.4 GB
for all four).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    need_gb, path = float(argv[0]), Path(argv[1])
    probe = path.resolve()
    while not probe.exists():  # (a fresh clone has no .venv yet)
        probe = probe.parent
    free_gb = shutil.disk_usage(probe).free / 1e9
    if free_gb < need_gb:
        print(f"error: building {path} needs about {need_gb:.0f} GB free but "
              f"{free_gb:.1f} GB are free on its disk; free some space (old runs/, "
              f"'pip cache purge', /tmp) and rerun make install", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
