"""Analysis of finished ensembles: MSD -> D with errors -> convergence -> Arrhenius ->
conductivity -> comparison across models, with figures and a report.

The core (:mod:`.msd`, :mod:`.diffusion`, :mod:`.convergence`, :mod:`.arrhenius`,
:mod:`.conductivity`, :mod:`.compare`) is pure numpy on arrays; :mod:`.ensemble_data` reads run
directories; :mod:`.analyze`, :mod:`.collect` and :mod:`.report` combine them and write files;
:mod:`.plots` draws.
"""
