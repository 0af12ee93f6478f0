"""``python -m lpsc_lmp.cli``: the ``lpsc-lmp`` command."""

from .main import main

main()
