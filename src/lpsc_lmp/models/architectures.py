"""The machine-learned force-field architectures lpsc-lmp knows, and where each one runs.

Model families pin incompatible libraries (MACE pins e3nn 0.4.4, NequIP/Allegro and DeePMD-kit
need newer e3nn), so each architecture runs in a project environment of its own,
``.venv/<ENV_OF[arch]>``.
"""

from __future__ import annotations

from ..errors import InputError

#: Every architecture lpsc-lmp trains, registers, evaluates and runs in LAMMPS.
ARCHITECTURES = ("deepmd", "nequip", "allegro", "mace")
#: Universal potentials whose weights ship in their wheels: the teachers that label the
#: bundled datasets; they run in LAMMPS (python-callback) and ASE, but are not trained here.
TEACHERS = ("sevenn", "chgnet")
#: The project environment of each architecture.
ENV_OF = {"deepmd": "dp", "nequip": "nequip", "allegro": "nequip", "mace": "mace",
          "sevenn": "label", "chgnet": "label"}
#: Architectures of the NequIP framework (one package format, one compiler, one environment).
NEQUIP_FAMILY = ("nequip", "allegro")


def check_architecture(arch: str) -> str:
    """``arch`` if lpsc-lmp knows it, else a one-line InputError listing those it knows."""
    if arch not in ARCHITECTURES:
        raise InputError(f"architecture '{arch}' unknown; use one of {', '.join(ARCHITECTURES)}")
    return arch
