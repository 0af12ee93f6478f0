"""Functional and architecture effects on D (the paper's Eqs. 3 and 4), with uncertainties.

Normalisation used (the paper's exact one was lost from its text):

* ``Delta_XC(arch) = |D_low - D_high| / D_high`` between two functionals of one architecture,
  relative to the one higher on Jacob's ladder (:data:`RUNG`: the paper's PBE vs HSE06, or PBE
  vs r2SCAN for the bundled SevenNet-MF-0 models), one value per architecture and pair of
  functionals at each temperature; the functionals are named in ``DeltaResult.label``.
* ``Delta_NN(func) = (max_arch D - min_arch D) / min_arch D``, one value per functional at each
  temperature, over the architectures available for that functional.

Uncertainties: Monte-Carlo propagation. Each D is drawn as a normal variate with its one-sigma
error (``n_mc`` draws, fixed seed), Delta is recomputed for every draw, and the standard
deviation and the 2.5/97.5 percentiles of the draws are reported. For Delta_XC the first-order
(delta-method) error ``sqrt((s_P/D_H)^2 + (D_P s_H / D_H^2)^2)`` is reported as well; for
Delta_NN (a max/min, not smooth) only the Monte-Carlo error is meaningful. Draws with D <= 0 are
discarded (only possible with errors comparable to D).

Model metadata: ``cards`` maps a model name to a mapping with ``architecture`` (e.g. "deepmd",
"nequip", "mace") and ``functional`` (else ``reference``: e.g. "PBE", "HSE06", "r2SCAN");
functionals are normalised by prefix (case-insensitive, :func:`normalise_functional`), and a
functional of unknown rung (e.g. "7net", a universal potential's labels) takes part in Delta_NN
but in no Delta_XC. Models of a committee (``committee`` on their cards: the same
architecture and data, other training seeds) enter the Deltas through their first member; the
spread of the committee is :func:`committee_spread`. :func:`load_cards` reads the cards from
``potentials/<model>/card.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AnalysisError

__all__ = [
    "DeltaResult",
    "delta_nn",
    "committee_spread",
    "delta_xc",
    "load_cards",
    "normalise_functional",
]


#: Rung on Jacob's ladder of the functionals lpsc-lmp knows by name (higher: the reference).
RUNG = {"LDA": 1, "PBE": 2, "PBESOL": 2, "SCAN": 3, "r2SCAN": 3, "HSE": 4, "PBE0": 4}


def normalise_functional(name: str) -> str:
    """``"hse06"`` -> ``"HSE"``, ``"PBE"`` -> ``"PBE"``, ``"R2SCAN"`` -> ``"r2SCAN"``; others
    upper-cased unchanged."""
    up = str(name).strip().upper()
    if up.startswith("R2SCAN"):
        return "r2SCAN"
    if up.startswith("PBESOL"):
        return "PBESOL"
    if up.startswith("PBE0"):
        return "PBE0"
    for key in ("PBE", "HSE"):
        if up.startswith(key):
            return key
    return up


@dataclass(frozen=True)
class DeltaResult:
    """One relative difference (dimensionless) with its uncertainty.

    ``value``: Delta from the central D values. ``err_mc``: std of Monte-Carlo draws.
    ``ci95``: 2.5/97.5 percentiles of the draws. ``err_linear``: first-order error (nan if not
    applicable). ``models``: the models entering it; ``D``: their central D values.
    """

    value: float
    err_mc: float
    ci95: tuple[float, float]
    err_linear: float
    models: tuple[str, ...]
    D: tuple[float, ...]
    label: str = ""

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "err_mc": self.err_mc,
            "ci95": list(self.ci95),
            "err_linear": self.err_linear,
            "models": list(self.models),
            "D": list(self.D),
            "label": self.label,
        }


def _card_fields(cards: Mapping[str, Mapping[str, str]], model: str) -> tuple[str, str]:
    try:
        card = cards[model]
        func = card.get("functional") or card["reference"]
        return str(card["architecture"]).strip().lower(), normalise_functional(func)
    except KeyError as exc:
        raise AnalysisError(
            f"model {model!r} has no architecture/reference; add them to "
            f"potentials/{model}/card.yaml"
        ) from exc


def _draws(values: Mapping[str, tuple[float, float]], models: list[str], n_mc: int, rng_seed: int):
    rng = np.random.default_rng(rng_seed)
    d = np.array([values[m][0] for m in models], dtype=np.float64)
    s = np.array([values[m][1] for m in models], dtype=np.float64)
    s = np.where(np.isfinite(s) & (s > 0), s, 0.0)
    x = d[None, :] + s[None, :] * rng.standard_normal((n_mc, len(models)))
    return d, s, x[np.all(x > 0, axis=1)]


def _summ(value: float, draws: np.ndarray, err_lin: float, models, d, label: str = ""
          ) -> DeltaResult:
    if draws.size >= 2:
        err = float(np.std(draws, ddof=1))
        lo, hi = (float(v) for v in np.percentile(draws, [2.5, 97.5]))
    else:
        err, lo, hi = float("nan"), float("nan"), float("nan")
    return DeltaResult(float(value), err, (lo, hi), float(err_lin), tuple(models),
                       tuple(float(v) for v in d), label)


def _leaders(values: Mapping[str, tuple[float, float]], cards: Mapping[str, Mapping[str, str]]
             ) -> list[str]:
    """The models that stand for themselves or lead their committee (its first member)."""
    out = []
    for m in values:
        lead = (cards.get(m) or {}).get("committee") or m
        if lead == m or lead not in values:
            out.append(m)
    return out


def delta_xc(
    values: Mapping[str, tuple[float, float]],
    cards: Mapping[str, Mapping[str, str]],
    n_mc: int = 10000,
    rng_seed: int = 0,
) -> dict[str, DeltaResult]:
    """``Delta_XC`` per architecture and pair of functionals of different rungs, relative to the
    higher one. Keyed by the architecture (``deepmd``) when it has one such pair, else by
    ``deepmd:PBE-r2SCAN``; ``label`` names the functionals and the reference.

    Args:
        values: model -> ``(D, sigma_D)`` at one temperature (any common unit).
        cards: model -> ``{"architecture": ..., "functional" or "reference": ...}``.

    Raises:
        ValueError: an architecture has two models for the same functional (not of one
            committee), or a model lacks card fields.
    """
    by_arch: dict[str, dict[str, str]] = {}
    for model in _leaders(values, cards):
        arch, func = _card_fields(cards, model)
        slot = by_arch.setdefault(arch, {})
        if func in slot:
            raise AnalysisError(
                f"architecture {arch!r} has two {func} models ({slot[func]}, {model}); "
                "compare one at a time"
            )
        slot[func] = model
    out: dict[str, DeltaResult] = {}
    for arch, slot in sorted(by_arch.items()):
        ranked = sorted((RUNG[f], f) for f in slot if f in RUNG)
        pairs = [(lo, hi) for i, (rl, lo) in enumerate(ranked)
                 for rh, hi in ranked[i + 1:] if rh > rl]
        for low, high in pairs:
            models = [slot[low], slot[high]]
            d, s, x = _draws(values, models, n_mc, rng_seed)
            value = abs(d[0] - d[1]) / d[1]
            draws = np.abs(x[:, 0] - x[:, 1]) / x[:, 1]
            err_lin = float(np.hypot(s[0] / d[1], d[0] * s[1] / d[1] ** 2))
            key = arch if len(pairs) == 1 else f"{arch}:{low}-{high}"
            out[key] = _summ(value, draws, err_lin, models, d,
                             f"{low} vs {high} (reference {high})")
    return out


def spread(values: Mapping[str, tuple[float, float]], models: list[str], label: str,
           n_mc: int = 10000, rng_seed: int = 0) -> DeltaResult:
    """``(max - min) / min`` of the D of ``models``, with its Monte-Carlo error (a max/min has
    no useful first-order one)."""
    d, _, x = _draws(values, models, n_mc, rng_seed)
    value = (d.max() - d.min()) / d.min()
    draws = (x.max(axis=1) - x.min(axis=1)) / x.min(axis=1)
    return _summ(value, draws, float("nan"), models, d, label)


def delta_nn(
    values: Mapping[str, tuple[float, float]],
    cards: Mapping[str, Mapping[str, str]],
    n_mc: int = 10000,
    rng_seed: int = 0,
) -> dict[str, DeltaResult]:
    """``Delta_NN`` per functional over its architectures (needs >= 2 of them).

    Args: as :func:`delta_xc`.
    """
    by_func: dict[str, list[str]] = {}
    for model in _leaders(values, cards):
        _, func = _card_fields(cards, model)
        by_func.setdefault(func, []).append(model)
    out: dict[str, DeltaResult] = {}
    for func, models in sorted(by_func.items()):
        if len(models) < 2:
            continue
        archs = sorted({_card_fields(cards, m)[0] for m in models})
        out[func] = spread(values, sorted(models), f"{func}: {', '.join(archs)}", n_mc,
                           rng_seed)
    return out


def committee_spread(
    values: Mapping[str, tuple[float, float]],
    cards: Mapping[str, Mapping[str, str]],
    n_mc: int = 10000,
    rng_seed: int = 0,
) -> dict[str, DeltaResult]:
    """Per committee with >= 2 members present: ``(max - min) / min`` of their D (as
    Delta_NN), the spread that training seeds alone give."""
    groups: dict[str, list[str]] = {}
    for m in values:
        lead = (cards.get(m) or {}).get("committee")
        if lead:
            groups.setdefault(lead, []).append(m)
    out: dict[str, DeltaResult] = {}
    for lead, models in sorted(groups.items()):
        if len(models) < 2:
            continue
        d = np.array([values[m][0] for m in models])
        cv = float(np.std(d, ddof=1) / np.mean(d))
        out[lead] = spread(values, sorted(models), f"{len(models)} training seeds, CV {cv:.1%}",
                           n_mc, rng_seed)
    return out


def load_cards(potentials_dir: str | Path, models: list[str]) -> dict[str, dict[str, str]]:
    """Read ``architecture``, ``reference`` and, where the card has them, ``functional`` and
    the committee's name from ``potentials/<model>/card.yaml``.

    Raises:
        ValueError: a card is missing or lacks a key (message names the file to fix).
    """
    import yaml

    out: dict[str, dict[str, str]] = {}
    for model in models:
        p = Path(potentials_dir) / model / "card.yaml"
        if not p.is_file():
            raise AnalysisError(f"{p} not found; add a card with architecture and reference")
        card = yaml.safe_load(p.read_text()) or {}
        if "architecture" not in card or "reference" not in card:
            raise AnalysisError(f"{p} lacks 'architecture' or 'reference'; add both keys")
        out[model] = {"architecture": str(card["architecture"]),
                      "reference": str(card["reference"])}
        if card.get("functional"):
            out[model]["functional"] = str(card["functional"])
        if isinstance(card.get("committee"), dict):
            out[model]["committee"] = str(card["committee"]["name"])
    return out
