"""Studies: many models and temperatures from one file to the paper's tables and figures, with
the checks a careful user makes first (the models against the potentials that labelled them,
the cell) and an uncertainty budget.

Data flow: study file (:mod:`.spec`) -> sweep (:mod:`lpsc_lmp.runs`) -> analysis
(:mod:`lpsc_lmp.analysis`) -> budget (:mod:`.budget`) -> report (:mod:`.report`); teachers
(:mod:`.teachers`, :mod:`.validate`, :mod:`.barriers`).
"""
