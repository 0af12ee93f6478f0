"""lpsc-lmp: ensembles of LAMMPS MD with machine-learned force fields for Li diffusion in LPSC."""

__version__ = "0.1.0"
