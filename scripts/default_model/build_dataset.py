"""Collect the SevenNet-0 labelled frames into the committed dataset (run in the `dp` env).

Reads RAW/*.extxyz from sample.py; writes data/lpsc-7net/train.extxyz and test.extxyz (the
split is by trajectory, fixed by sample.PLAN: names starting with train_ / test_).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ase.io import read, write


def main(raw: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        frames = []
        for f in sorted(raw.glob(f"{split}_*.extxyz")):
            frames += read(f, index=":")
        if not frames:
            sys.exit(f"no {split}_*.extxyz in {raw}; run sample.py first")
        tmp = out / f"{split}.extxyz.tmp"
        write(tmp, frames, format="extxyz")
        tmp.replace(out / f"{split}.extxyz")
        print(f"{split}: {len(frames)} frames")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
