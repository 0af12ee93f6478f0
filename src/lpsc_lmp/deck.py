"""LAMMPS input decks rendered from Jinja templates in ``templates/``.

Templates are read at every render, so an edited template takes effect on the next run.
Undefined variables are errors (StrictUndefined). ``--templates DIR`` (or LPSC_LMP_TEMPLATES)
points at a copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from .paths import templates_dir

DEFAULT_TEMPLATE = "nvt.lmp.j2"


class DeckError(ValueError):
    """A template that cannot be rendered; the message names the fix."""


@dataclass(frozen=True)
class Deck:
    """A rendered deck and what produced it."""

    text: str
    template: str
    template_dir: Path
    template_sha256: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def _raise(msg: str) -> None:
    raise DeckError(msg)


def render_deck(context: dict[str, Any], template: str = DEFAULT_TEMPLATE,
                directory: Path | None = None) -> Deck:
    """Render ``template`` from ``directory`` with ``context``; one-line DeckError on failure."""
    tdir = Path(directory) if directory else templates_dir()
    if not (tdir / template).is_file():
        raise DeckError(f"template {tdir / template} not found; pass --templates DIR holding "
                        f"{template} (copy {templates_dir()} to start)")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tdir)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["raise"] = _raise
    try:
        text = env.get_template(template).render(**context)
    except jinja2.UndefinedError as exc:
        raise DeckError(f"template {template}: {exc.message}; define it or remove it from the "
                        "template") from None
    except jinja2.TemplateSyntaxError as exc:
        raise DeckError(f"template {exc.filename or template} line {exc.lineno}: {exc.message}; "
                        "fix the Jinja syntax") from None
    except jinja2.TemplateNotFound as exc:
        raise DeckError(f"template {exc.name} not found in {tdir}; add it or fix the include") \
            from None
    src = (tdir / template).read_bytes()
    return Deck(text=text, template=template, template_dir=tdir.resolve(),
                template_sha256=hashlib.sha256(src).hexdigest())


def split_production_run(text: str) -> tuple[str, int]:
    """Split a deck into its set-up commands and the step count of its final ``run`` command."""
    lines = text.rstrip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
        lines.pop()
    last = lines[-1].split() if lines else []
    if len(last) != 2 or last[0] != "run" or not last[1].isdigit():
        raise DeckError("the deck must end with the production command `run N`; restore it as "
                        "the template's last line")
    return "\n".join(lines[:-1]) + "\n", int(last[1])
