"""The machine-learned force-field architectures lpsc-lmp knows, and where each one runs.

Model families pin incompatible libraries (MACE pins e3nn 0.4.4, NequIP/Allegro and DeePMD-kit
need newer e3nn), so each architecture runs in a project environment of its own,
``.venv/<ENV_OF[arch]>``.
"""

from __future__ import annotations

from ..errors import InputError

#: Every architecture: registered, trained, evaluated and run in LAMMPS by lpsc-lmp.
ARCHITECTURES = ("deepmd", "nequip", "allegro", "mace")
#: The project environment of each architecture.
ENV_OF = {"deepmd": "dp", "nequip": "nequip", "allegro": "nequip", "mace": "mace"}
#: Architectures of the NequIP framework (one package format, one compiler, one environment).
NEQUIP_FAMILY = ("nequip", "allegro")


def check_architecture(arch: str) -> str:
    """``arch`` if lpsc-lmp knows it, else a one-line InputError listing those it knows."""
    if arch not in ARCHITECTURES:
        raise InputError(f"architecture '{arch}' unknown; use one of {', '.join(ARCHITECTURES)}")
    return arch
