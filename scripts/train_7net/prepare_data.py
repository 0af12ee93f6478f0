"""Copy data/lpsc-7net/{train,test}.extxyz with the label keys MACE expects (REF_energy,
REF_forces, REF_stress); NequIP reads the original files. Usage: prepare_data.py OUTDIR"""

import sys
from pathlib import Path

from ase.io import read, write

root = Path(__file__).resolve().parents[2] / "data" / "lpsc-7net"
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for split in ("train", "test"):
    frames = []
    for at in read(root / f"{split}.extxyz", index=":"):
        e, f, s = at.get_potential_energy(), at.get_forces(), at.get_stress(voigt=False)
        at.calc = None
        at.info = {"REF_energy": e}
        at.arrays = {k: v for k, v in at.arrays.items() if k in ("numbers", "positions")}
        at.arrays["REF_forces"] = f
        at.info["REF_stress"] = s.reshape(-1)
        frames.append(at)
    write(out / f"{split}.extxyz", frames, format="extxyz")
    print(split, len(frames))
