"""Repair a nequip 0.19.1 EMA checkpoint saved by lightning 2.6 while the EMA weights were swapped
into the model (ModelCheckpoint runs before the module's on_validation_end; nequip-package then
refuses it: "EMA module loaded in a state where it does not contain EMA weights").
In such a checkpoint the model holds the EMA weights (those validated): copy them into the EMA
slots and mark the EMA module as holding them, so any loader gets the EMA weights.
Usage: fix_nequip_ema_ckpt.py IN.ckpt OUT.ckpt"""

import sys

import torch

ck = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
sd = ck["state_dict"]
extra = sd["ema._extra_state"]
if extra["is_holding_ema_weights"]:
    print("checkpoint is consistent; copied unchanged")
else:
    ema_keys = sorted((k for k in sd if k.startswith("ema.ema_weight_")),
                      key=lambda k: int(k.rsplit("_", 1)[1]))
    cands = [k for k in sd if k.startswith("model.") and torch.is_tensor(sd[k])
             and sd[k].is_floating_point() and not k.endswith(("output_mask", "_rmax_recip"))]
    pairs, i = [], 0
    for ek in ema_keys:
        while i < len(cands) and sd[cands[i]].shape != sd[ek].shape:
            i += 1
        if i == len(cands):
            sys.exit(f"no model parameter of shape {tuple(sd[ek].shape)} for {ek}")
        pairs.append((ek, cands[i]))
        i += 1
    for ek, mk in pairs:
        print(f"{ek} <- {mk} {tuple(sd[mk].shape)}")
        sd[ek] = sd[mk].clone()
    extra["is_holding_ema_weights"] = True
torch.save(ck, sys.argv[2])
