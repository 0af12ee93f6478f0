"""The report of a study: the paper's tables and figures for these models, the uncertainty
budget, the cells, the teacher checks and the barriers, in ``<report>/report.md`` with its
figures beside it (``lpsc-lmp study``; ``make study``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis import plots
from ..analysis.arrhenius import fit_arrhenius
from ..analysis.compare import committee_spread, delta_nn, delta_xc, load_cards
from ..analysis.convergence import convergence_analysis
from ..analysis.ensemble_data import EnsembleData, read_ensemble
from ..analysis.estimators import DESCRIPTION, Estimate, estimate
from ..analysis.report import fmt
from ..files import write_text_atomic
from ..paths import potentials_dir, relative_to_project
from ..runs.ensemble import ensemble_dir
from ..runs.settings import EnsembleSettings
from .budget import budget, verdict
from .spec import StudySpec


@dataclass
class Row:
    """One ensemble of the study and its D."""

    s: EnsembleSettings
    data: EnsembleData
    est: Estimate
    card: dict[str, str]

    @property
    def D(self) -> float:
        return self.est.result.D_cm2s

    @property
    def se(self) -> float:
        return self.est.result.stderr_cm2s


def collect(spec: StudySpec, settings: list[EnsembleSettings]) -> list[Row]:
    """Every finished ensemble of the study, read and fitted with the study's estimator."""
    cards = load_cards(potentials_dir(), sorted({s.model for s in settings}))
    rows = []
    for s in settings:
        data = read_ensemble(ensemble_dir(s), load_positions=True)
        est = estimate(data, spec.estimator, paper_window=tuple(data.meta["fit_window_ps"]))
        rows.append(Row(s, data, est, cards[s.model]))
    return rows


def _main(rows: list[Row], spec: StudySpec, T: float | None = None) -> list[Row]:
    return [r for r in rows if r.s.cell == spec.cell and r.s.model not in spec.committee
            and (T is None or r.s.temperature_K == T)]


def _cell_text(r: Row) -> str:
    a = r.data.meta.get("lattice_A")
    npt = (r.data.meta.get("cell") or {}).get("npt")
    if npt:
        return f"model, a = {a:.3f} +- {npt['a_stderr_A']:.3f} A"
    return f"{r.s.cell}, a = {a:.3f} A" if a else r.s.cell


def d_table(rows: list[Row]) -> list[str]:
    out = ["| model | architecture | functional | T (K) | cell | seeds | D (cm^2/s) | s.e. | "
           "95 % CI | P (GPa) | warnings |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r.s.model, r.s.temperature_K, r.s.cell)):
        res, p = r.est.result, r.data.pressure_GPa()
        out.append(f"| {r.s.model} | {r.card['architecture']} | "
                   f"{r.card.get('functional', r.card['reference'])} | {r.s.temperature_K:g} | "
                   f"{_cell_text(r)} | {res.n_seeds} | {fmt(res.D_cm2s)} | "
                   f"{fmt(res.stderr_cm2s, '.1e')} | [{fmt(res.ci95_cm2s[0], '.2e')}, "
                   f"{fmt(res.ci95_cm2s[1], '.2e')}] | "
                   f"{'-' if p is None else f'{p[0]:+.2f}'} | "
                   f"{'; '.join(res.warnings) or '-'} |")
    return out


def write_study_report(spec: StudySpec, settings: list[EnsembleSettings],
                       results: dict[str, Any], echo=print) -> Path:
    """Write ``<spec.report>/report.md`` and its figures; return the path."""
    out_dir = Path(spec.report)
    fig = out_dir / "figures"
    rows = collect(spec, settings)
    temps = sorted(spec.temperatures)
    low = temps[0]
    lines = [f"# Study `{spec.name}`", "",
             f"Study file: `{relative_to_project(spec.source)}`; made by `lpsc-lmp study` "
             "(`make study`). Every number below comes from the run directories under "
             f"`{relative_to_project(Path(spec.runs or 'runs'))}` (not committed); rerunning "
             "the command resumes them and rewrites this page.", "",
             f"Protocol: {spec.seeds} seeds x {spec.time_ps:g} ps per model and temperature, "
             f"NVT, cell: {spec.cell}. D by the {spec.estimator} estimator "
             f"({DESCRIPTION[spec.estimator]}). The models are trained on labels of universal "
             "potentials (SevenNet-MF-0 PBE and R2SCAN: r2SCAN stands in for the paper's "
             "HSE06), not on DFT.", "", "## Diffusion coefficients", "", *d_table(rows), ""]
    # Arrhenius
    fits = {}
    for m in spec.models:
        mr = sorted((r for r in _main(rows, spec) if r.s.model == m),
                    key=lambda r: r.s.temperature_K)
        if len(mr) >= 2 and all(r.D > 0 and math.isfinite(r.se) for r in mr):
            fits[m] = fit_arrhenius([r.s.temperature_K for r in mr], [r.D for r in mr],
                                    [r.se for r in mr])
    lines += ["## Arrhenius fits", ""]
    if fits:
        plots.plot_arrhenius(fits, fig / "arrhenius", "Arrhenius")
        lines += ["| model | Ea (eV) | chi2_red |", "|---|---|---|"]
        lines += [f"| {m} | {f.Ea_eV:.3f} +- {fmt(f.Ea_err_eV, '.3f')} | "
                  f"{fmt(f.chi2_red, '.2f')} |" for m, f in fits.items()]
        lines += ["", "![Arrhenius](figures/arrhenius.png)", ""]
    else:
        lines += ["Fewer than two temperatures with errors: no fit.", ""]
    # MSD fans and convergence at the lowest temperature (the paper's Fig. 3)
    lines += [f"## MSD and convergence at {low:g} K", ""]
    for r in _main(rows, spec, low):
        stem = f"{r.s.model}_T{low:g}K"
        plots.plot_msd_fan(r.est.t_ps, r.est.msd, r.est.result, fig / f"msd_{stem}",
                           f"{r.s.model} {low:g} K ({spec.estimator})")
        conv = convergence_analysis(r.est.result.per_seed_D_cm2s, n_boot=200)
        plots.plot_convergence(conv, fig / f"convergence_{stem}", f"{r.s.model} {low:g} K")
        lines.append(f"![MSD {stem}](figures/msd_{stem}.png) "
                     f"![delta_N {stem}](figures/convergence_{stem}.png)")
    lines.append("")
    # bars, deltas and budget at each temperature
    lines += ["## Functional and architecture effects, and the uncertainty budget", "",
              "Delta_XC = |D_low - D_high| / D_high between the functionals of one "
              "architecture (high: the higher rung, r2SCAN here, HSE in the paper); Delta_NN = "
              "(max - min) / min over architectures per functional; committee = (max - min) / "
              "min over models that differ only in their training seed; cell = the change of D "
              "at the model's own cell. Errors: Monte-Carlo propagation of the D errors.", ""]
    all_budget = {}
    for T in temps:
        main = _main(rows, spec, T)
        values = {r.s.model: (r.D, r.se) for r in main}
        cards = {r.s.model: r.card for r in main}
        comm_rows = [r for r in rows if r.s.temperature_K == T and r.s.cell == spec.cell
                     and (r.s.model in spec.committee or r.s.model in values)]
        cvals = {r.s.model: (r.D, r.se) for r in comm_rows}
        ccards = {r.s.model: r.card for r in comm_rows}
        xc, nn = delta_xc(values, cards), delta_nn(values, cards)
        comm = committee_spread(cvals, ccards)
        cell = {}
        for r in rows:
            if r.s.temperature_K == T and r.s.cell != spec.cell and r.s.model in values:
                d0, s0 = values[r.s.model]
                rel = abs(r.D - d0) / d0
                cell[r.s.model] = (rel, math.hypot(r.se, s0) / d0)
        entries = budget({r.s.model: r.se / r.D for r in main if r.D > 0}, comm, nn, xc, cell)
        all_budget[T] = entries
        plots.plot_bars([(r.s.model, r.D, r.se, r.card.get("functional", r.card["reference"]))
                         for r in sorted(main, key=lambda r: r.s.model)],
                        fig / f"bars_T{T:g}K", f"D at {T:g} K")
        plots.plot_bars([(f"{e.source}: {e.label}"[:40], 100 * e.value,
                          100 * e.err if math.isfinite(e.err) else 0.0, e.source)
                         for e in entries], fig / f"budget_T{T:g}K",
                        f"uncertainty budget at {T:g} K", ylabel="relative change of D (%)")
        lines += [f"### {T:g} K", "", "| source | what | value (%) | error (%) |",
                  "|---|---|---|---|"]
        lines += [f"| {e.source} | {e.label} | {100 * e.value:.1f} | "
                  f"{fmt(100 * e.err, '.1f') if math.isfinite(e.err) else '-'} |" for e in entries]
        lines += ["", f"Budget: {verdict(entries)}.", "",
                  f"![D at {T:g} K](figures/bars_T{T:g}K.png) "
                  f"![budget at {T:g} K](figures/budget_T{T:g}K.png)", ""]
    lines += validation_section(results.get("validate") or {})
    bars = results.get("barriers") or {}
    lines += barriers_section(bars, [m for m in spec.barriers if m not in bars])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "report.md", "\n".join(lines) + "\n")
    summary = {"budget": {f"{T:g}": [e.to_dict() for e in es] for T, es in all_budget.items()},
               "D": [{"model": r.s.model, "T_K": r.s.temperature_K, "cell": r.s.cell,
                      "D_cm2s": r.D, "stderr_cm2s": r.se,
                      "pressure_GPa": (r.data.pressure_GPa() or (None,))[0]} for r in rows],
               "arrhenius": {m: f.to_dict() for m, f in fits.items()}, **results}
    write_text_atomic(out_dir / "study.json", json.dumps(summary, indent=1, default=float))
    echo(f"wrote {out_dir / 'report.md'} and {fig}/")
    return out_dir / "report.md"


def validation_section(val: dict[str, Any]) -> list[str]:
    if not val:
        return []
    out = ["## Students against their teachers", "",
           "The same seeds (initial velocities) with the model and with the universal potential "
           "that labelled its training data (`lpsc-lmp validate`).", "",
           "| model | teacher | T (K) | seeds x ps | D model | D teacher | ratio | paired ratio "
           "| window |", "|---|---|---|---|---|---|---|---|---|"]
    for m, v in val.items():
        bad = [who for who in ("student", "teacher") if not v[who].get("diffusive", False)]
        window = ("ok" if not bad else f"{' and '.join(bad)} not diffusive in the window "
                  "(alpha " + ", ".join(f"{v[w].get('alpha_window', float('nan')):.2f}"
                                        for w in bad) + "): D unreliable, run longer")
        out.append(f"| {m} | {v['teacher']['name']} | {v['temperature_K']:g} | {len(v['seeds'])} x "
                   f"{v['time_ps']:g} | {fmt(v['student']['D_cm2s'])} +- "
                   f"{fmt(v['student']['stderr_cm2s'], '.1e')} | "
                   f"{fmt(v['teacher']['D_cm2s'])} +- {fmt(v['teacher']['stderr_cm2s'], '.1e')} "
                   f"| {v['ratio']:.2f} +- {v['ratio_err']:.2f} | {v['paired_ratio']:.2f} +- "
                   f"{fmt(v['paired_ratio_err'], '.2f')} | {window} |")
    return [*out, ""]


def barriers_section(bars: dict[str, Any], missing: list[str] | tuple[str, ...] = ()
                     ) -> list[str]:
    """The barrier table of the study's models; ``missing``: those the study lists but whose
    barriers are neither cached nor on their cards (said under the table)."""
    if not bars and not missing:
        return []
    from .barriers import JUMPS, describe_jump

    out = ["## Li jump barriers (NEB, ordered cell at a = 9.859 A)", "",
           "| model | " + " | ".join(f"{j} (eV)" for j in JUMPS) + " |",
           "|---|" + "---|" * len(JUMPS)]
    for m, b in bars.items():
        cells = [describe_jump(b["jumps"].get(j, {})) for j in JUMPS]
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return [*out, "", "Barrier: highest image minus the start (eV); end: the relaxed end state "
            "relative to the start; hop: the jumping Li's distance between the relaxed ends "
            "(the end states are each model's own minima near the target site; off: how far the "
            "relaxed end lies from the nearer 48h site of the target doublet; others: the "
            "largest move of any other atom between the two ends; they are relaxed from each "
            "other, up to three rounds, to differ in little but the jump). A jump whose end "
            "relaxes back to the start is listed as having no metastable end state; a band that "
            "did not reach the force tolerance is marked and its barrier is not a barrier.", "",
            *([f"Not computed yet: {', '.join(missing)} (`lpsc-lmp barriers "
               f"{' '.join(missing)}`, or rerun the study).", ""] if missing else [])]



