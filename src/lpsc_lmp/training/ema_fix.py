"""Repair of NequIP-framework EMA checkpoints, in the NequIP environment.

``python -m lpsc_lmp.training.ema_fix IN.ckpt OUT.ckpt`` prints ``{"arch": "nequip"|"allegro"|
null, "ema_tensors_copied": N}`` (JSON).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..environments import json_main


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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m lpsc_lmp.training.ema_fix IN.ckpt OUT.ckpt", file=sys.stderr)
        return 2
    return json_main(lambda: fix_ema_checkpoint(Path(args[0]), Path(args[1])))


if __name__ == "__main__":
    sys.exit(main())
