"""Models: the registry under ``potentials/``, the routes by which LAMMPS evaluates them, their
ASE calculators, derived files, registration of users' models, and batched evaluation.

Data flow: card (:mod:`.registry`) -> route (:mod:`.routes`) -> files (:mod:`.derive`,
:mod:`.add`, :mod:`.export`) -> evaluation (:mod:`.calculators`, :mod:`.batch_eval`,
:mod:`.neighbours`).
"""
