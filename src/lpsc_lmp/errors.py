"""The errors lpsc-lmp raises on purpose, one hierarchy for the whole library.

Every message is one line that names the fix. The library never formats them for a terminal;
the command line (:mod:`lpsc_lmp.cli.main`) turns any :class:`LpscError` into ``Error: <message>``
with the error's :attr:`~LpscError.exit_code` (2: the input was wrong, 1: a step failed).

::

    LpscError
     +-- InputError (also a ValueError)     bad arguments, files or settings; exit code 2
     |    +-- StructureError, TemplateError, RegistryError, RouteError, EnsembleError,
     |    +-- BatchError, LockError, DatasetError
     +-- ExportError                          a model file its tool could not export
     +-- TrainingError                        a trainer or its checks failed
     +-- EnvironmentFailure                   a helper in another project environment failed
     +-- AnalysisError (also a ValueError)    run data that cannot be analysed
     +-- SeedFailed (also a RuntimeError)     the MD of one seed went wrong (recorded, not raised
                                              to the user)
"""

from __future__ import annotations


class LpscError(Exception):
    """Base of every error lpsc-lmp raises on purpose; the message names the fix."""

    exit_code = 1


class InputError(LpscError, ValueError):
    """An argument, file or setting that must not be used as given."""

    exit_code = 2


class StructureError(InputError):
    """A structure that must not be simulated."""


class TemplateError(InputError):
    """A Jinja template (LAMMPS deck, training input) that cannot be rendered."""


class RegistryError(InputError):
    """A model that cannot be used as registered."""


class RouteError(InputError):
    """A route (how LAMMPS evaluates a model) that cannot be used here."""


class EnsembleError(InputError):
    """Ensemble or sweep settings that cannot run."""


class BatchError(InputError):
    """Lock-step batched mode (``--batch K``) cannot be used as asked."""


class LockError(InputError):
    """A run directory is being written by another process."""


class DatasetError(InputError):
    """A dataset operation that must not go ahead."""


class ExportError(LpscError):
    """A file that is not a usable model of the claimed architecture, or whose export failed."""


class TrainingError(LpscError):
    """A training that failed (the trainer's last lines are in the message)."""


class EnvironmentFailure(LpscError):
    """A helper in another project environment failed (its own error or its last lines are
    in the message)."""


class AnalysisError(LpscError, ValueError):
    """Run data that cannot be analysed as asked."""


class SeedFailed(LpscError, RuntimeError):
    """The MD of a seed went wrong (LAMMPS error, NaN energy, runaway temperature)."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, else its class name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
