"""LAMMPS decks as lpsc-lmp runs them: the production ``run`` and a model's pair lines.

A deck is rendered from ``templates/`` (:func:`lpsc_lmp.templating.render_template`); its last
command must be the production ``run N``, which lpsc-lmp runs in chunks to read unwrapped Li
positions between them. The pair lines of a model come from ``templates/pair/<route>.j2``, the
same file the MD decks include.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import TemplateError
from ..models.registry import ModelCard
from ..templating import render_template


def split_production_run(text: str) -> tuple[str, int]:
    """Split a deck into its set-up commands and the step count of its final ``run`` command."""
    lines = text.rstrip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
        lines.pop()
    last = lines[-1].split() if lines else []
    if len(last) != 2 or last[0] != "run" or not last[1].isdigit():
        raise TemplateError("the deck must end with the production command `run N`; restore it "
                            "as the template's last line")
    return "\n".join(lines[:-1]) + "\n", int(last[1])


def pair_lines(card: ModelCard, templates: Path | None = None) -> str:
    """The LAMMPS commands that make ``card``'s model the interaction on its route."""
    ctx = {"model_file": str(card.require_lammps_file()), "type_map": list(card.type_map),
           "cutoff": card.cutoff_A}
    return render_template(ctx, f"pair/{card.route}.j2", templates).text
