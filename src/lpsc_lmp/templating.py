"""Jinja templates from ``templates/``: LAMMPS decks and training inputs.

Templates are read at every render, so an edited template takes effect on the next run.
Undefined variables are errors (StrictUndefined). ``--templates DIR`` (or LPSC_LMP_TEMPLATES)
points at a copy. Every render records each template file it read (the top template and every
``{% include %}``, e.g. ``pair/deepmd.j2``) with its sha256, so that what produced a deck can be
checked later, whichever file was edited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .errors import TemplateError
from .files import sha256_text
from .paths import templates_dir

#: The deck of one seed of an ensemble.
DEFAULT_TEMPLATE = "nvt.lmp.j2"


@dataclass(frozen=True)
class Rendered:
    """A rendered template and what produced it.

    ``sources`` maps every template file read during the render (names relative to
    ``template_dir``, the top template first) to the sha256 of its text.
    """

    text: str
    template: str
    template_dir: Path
    template_sha256: str
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return sha256_text(self.text)


class _RecordingLoader(jinja2.FileSystemLoader):
    """A file loader that remembers the sha256 of every template it reads."""

    def __init__(self, directory: Path):
        super().__init__(str(directory))
        self.read: dict[str, str] = {}

    def get_source(self, environment: jinja2.Environment, template: str):
        source, filename, uptodate = super().get_source(environment, template)
        self.read.setdefault(template, sha256_text(source))
        return source, filename, uptodate


def _raise(msg: str) -> None:
    raise TemplateError(msg)


def render_template(context: dict[str, Any], template: str = DEFAULT_TEMPLATE,
                    directory: Path | None = None) -> Rendered:
    """Render ``template`` from ``directory`` (default ``templates/``) with ``context``;
    one-line :class:`~lpsc_lmp.errors.TemplateError` on failure."""
    tdir = Path(directory) if directory else templates_dir()
    if not (tdir / template).is_file():
        raise TemplateError(f"template {tdir / template} not found; pass --templates DIR "
                            f"holding {template} (copy {templates_dir()} to start)")
    loader = _RecordingLoader(tdir)
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.globals["raise"] = _raise
    try:
        text = env.get_template(template).render(**context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {template}: {exc.message}; define it or remove it from "
                            "the template") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {exc.filename or template} line {exc.lineno}: "
                            f"{exc.message}; fix the Jinja syntax") from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {exc.name} not found in {tdir}; add it or fix the "
                            "include") from None
    return Rendered(text=text, template=template, template_dir=tdir.resolve(),
                    template_sha256=loader.read[template], sources=dict(loader.read))
