"""Ensembles and sweeps: settings, run directories, the seed queue, the engines that run it,
and the status of what ran.

Data flow: settings (:mod:`.settings`) -> ensemble directory (:mod:`.ensemble`) -> plan and
retry policy (:mod:`.plan`) -> engine (:mod:`.local` or :mod:`.dispatch`) driven by
:mod:`.sweep`; :mod:`.lock`, :mod:`.progress` and :mod:`.status` around them.
"""
