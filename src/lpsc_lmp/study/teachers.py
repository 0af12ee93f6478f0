"""Which universal potential taught a model: its teacher, from the labels it was trained on.

The bundled datasets are labelled by universal potentials that ship in their wheels
(:mod:`lpsc_lmp.training.label`), each registered as a teacher model (``teacher: true`` on its
card, architecture ``sevenn`` or ``chgnet``, environment ``.venv/label``):

- ``7net-0``: the labels of ``data/lpsc-7net`` (the ``*-7net`` models);
- ``7net-mf-0-pbe``, ``7net-mf-0-r2scan``: SevenNet-MF-0's PBE and R2SCAN outputs, the labels of
  ``data/lpsc-mf-pbe`` and ``data/lpsc-mf-r2scan`` (the ``*-pbe-mf`` / ``*-r2scan-mf`` models).
"""

from __future__ import annotations

from ..errors import InputError
from ..models.registry import ModelCard

#: (labeller, modality) -> the teacher's registered name
TEACHER_OF_LABELS = {("7net-0", None): "7net-0", ("7net-mf-0", "PBE"): "7net-mf-0-pbe",
                     ("7net-mf-0", "R2SCAN"): "7net-mf-0-r2scan"}


def teacher_of(card: ModelCard) -> str:
    """The registered teacher of a model trained on a bundled, universal-potential dataset."""
    lab = (card.raw.get("training") or {}).get("labelling") or {}
    if "labeller" in lab:
        key = (lab["labeller"], lab.get("modal"))
        if key in TEACHER_OF_LABELS:
            return TEACHER_OF_LABELS[key]
    if card.reference == "7net":  # the *-7net models (their cards predate `data label`)
        return "7net-0"
    raise InputError(f"model '{card.name}' was not trained on labels of a registered teacher; "
                     "pass --teacher NAME (e.g. 7net-mf-0-pbe)")
