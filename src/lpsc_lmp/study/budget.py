"""The uncertainty budget of a study at one temperature: how much each source moves D.

All entries are relative (fractions of D), each with its own 1-sigma error where one exists:

- ``statistical``: the relative standard error of D from the seeds (median over the models);
- ``training seed``: the spread of a committee of models that differ only in their training
  seed, (max - min) / min (:func:`lpsc_lmp.analysis.compare.committee_spread`);
- ``architecture``: Delta_NN per functional, (max - min) / min over the architectures;
- ``functional``: Delta_XC per architecture, |D_low - D_high| / D_high between functionals;
- ``cell``: |D_other cell - D| / D for the models run in both cells.

A source "dominates" when its largest entry exceeds every other source's largest entry by
more than their combined error; otherwise the budget says which ones are comparable.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..analysis.compare import DeltaResult


@dataclass(frozen=True)
class BudgetEntry:
    """One source of variation of D at one temperature (relative values)."""

    source: str
    label: str
    value: float
    err: float

    def to_dict(self) -> dict:
        return asdict(self)


def budget(rel_stderrs: dict[str, float], committees: dict[str, DeltaResult],
           nn: dict[str, DeltaResult], xc: dict[str, DeltaResult],
           cell: dict[str, tuple[float, float]]) -> list[BudgetEntry]:
    """The budget entries at one temperature (see the module docstring)."""
    out = []
    if rel_stderrs:
        vals = sorted(rel_stderrs.values())
        mid = vals[len(vals) // 2] if len(vals) % 2 else 0.5 * (vals[len(vals) // 2 - 1]
                                                                 + vals[len(vals) // 2])
        out.append(BudgetEntry("statistical", f"median over {len(vals)} models", mid,
                               float("nan")))
    out += [BudgetEntry("training seed", f"{k}: {v.label}", v.value, v.err_mc)
            for k, v in committees.items()]
    out += [BudgetEntry("architecture", v.label or k, v.value, v.err_mc) for k, v in nn.items()]
    out += [BudgetEntry("functional", f"{k}: {v.label}", v.value, v.err_mc)
            for k, v in xc.items()]
    out += [BudgetEntry("cell", f"{k}: model's own cell vs the study's", v, e)
            for k, (v, e) in cell.items()]
    return out


def verdict(entries: list[BudgetEntry]) -> str:
    """Which source dominates, in one sentence, and whether architecture effects are as large
    as functional effects (the paper's conclusion)."""
    top: dict[str, BudgetEntry] = {}
    for e in entries:
        if e.source not in top or e.value > top[e.source].value:
            top[e.source] = e
    if not top:
        return "no sources to compare"
    ranked = sorted(top.values(), key=lambda e: e.value, reverse=True)
    first = ranked[0]
    parts = []
    if len(ranked) > 1:
        second = ranked[1]
        err = math.hypot(*(x if math.isfinite(x) else 0.0 for x in (first.err, second.err)))
        if first.value - second.value > err:
            parts.append(f"{first.source} dominates ({100 * first.value:.0f} %, next "
                         f"{second.source} {100 * second.value:.0f} %)")
        else:
            parts.append(f"{first.source} ({100 * first.value:.0f} %) and {second.source} "
                         f"({100 * second.value:.0f} %) are comparable")
    else:
        parts.append(f"only {first.source} measured ({100 * first.value:.0f} %)")
    if "architecture" in top and "functional" in top:
        a, f = top["architecture"], top["functional"]
        err = math.hypot(*(x if math.isfinite(x) else 0.0 for x in (a.err, f.err)))
        if a.value - f.value > err:
            parts.append("architecture effects exceed functional effects (the paper found "
                         "them as large)")
        elif f.value - a.value > err:
            parts.append("functional effects exceed architecture effects (unlike the paper)")
        else:
            parts.append("architecture and functional effects are equal within their errors "
                         "(consistent with the paper, which found them as large)")
    return "; ".join(parts)
