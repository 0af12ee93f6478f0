"""Train/test errors of registered models on their datasets (the layout of the paper's Table 1).

For every model whose card names a dataset (``dataset: <name>``, else the first word of
``training.dataset``, e.g. ``data/lpsc-7net (train.extxyz, test.extxyz)``), the model's own
inference computes energy RMSE per atom (meV/atom) and force RMSE over all Cartesian components
(eV/A) on ``train.extxyz`` and ``test.extxyz``. DeePMD models: ``training.deepmd.evaluate_dp`` on
the card's frozen model (the file the card's ``errors`` were computed with; the compressed
deploy file is used only when no frozen file is listed). MACE, NequIP, Allegro models: their own
ASE calculator on the deploy file, in the model's environment
(``python -m lpsc_lmp.training.predict``). Outputs: a printed table,
``<out>/<name>.csv`` and ``.json``, and parity plots ``<out>/parity/<model>__<dataset>_{energy,
force}.png`` (predicted vs reference, train and test).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase.io import read

from ..errors import DatasetError, EnvironmentFailure
from ..files import write_text_atomic
from ..models.architectures import ARCHITECTURES
from ..models.registry import ModelCard, list_models, load_card
from ..paths import data_root, project_root
from .common import SPLITS
from .label import LABEL_RECORD
from .predict import predict_in_env, rmse_fields

COLUMNS = ("model", "architecture", "reference", "dataset", "E_train_meV_atom",
           "E_test_meV_atom", "F_train_eV_A", "F_test_eV_A")


def card_dataset(card: ModelCard) -> str | None:
    """The dataset a card names: ``dataset`` or the first word of ``training.dataset``."""
    ds = card.raw.get("dataset")
    if not ds:
        tr = card.raw.get("training") or {}
        ds = str(tr.get("dataset", "")).split()[0] if tr.get("dataset") else None
    return str(ds) if ds else None


def resolve_dataset(spec: str, root: Path | None = None) -> Path:
    """A dataset name (``lpsc-7net``) lives under the data root; a path (``data/lpsc-7net``) is
    taken relative to the project root unless absolute."""
    p = Path(spec)
    if p.is_absolute():
        return p
    if len(p.parts) > 1:
        return project_root() / p
    return (root or data_root()) / spec


def _model_file(card: ModelCard) -> Path:
    frozen = card.files.get("frozen")
    if frozen and (card.directory / frozen).is_file():
        return card.directory / frozen
    return card.require_deploy_file()


def predict_deepmd(model: Path, extxyz: Path, type_map: list[str], batch: int = 16
                   ) -> dict[str, np.ndarray]:
    """Per-frame energies per atom (eV/atom) and all force components (eV/A), reference and
    predicted, from ``deepmd.infer.DeepPot`` (as ``evaluate_dp``, in batches of frames)."""
    from deepmd.infer import DeepPot

    dp = DeepPot(str(model))
    frames = read(extxyz, index=":")
    e_ref = np.array([at.get_potential_energy() / len(at) for at in frames])
    f_ref = [at.get_forces().ravel() for at in frames]
    e_pred, f_pred = np.empty(len(frames)), [np.empty(0)] * len(frames)
    groups: dict[tuple[str, ...], list[int]] = {}
    for k, at in enumerate(frames):  # frames of one composition and order go in one call
        groups.setdefault(tuple(at.get_chemical_symbols()), []).append(k)
    for symbols, idx in groups.items():
        types = np.array([type_map.index(s) for s in symbols])
        for lo in range(0, len(idx), batch):
            chunk = idx[lo:lo + batch]
            pos = np.array([frames[k].get_positions() for k in chunk])
            cell = np.array([frames[k].cell.array for k in chunk])
            e, f, _ = dp.eval(pos, cell, types)
            for j, k in enumerate(chunk):
                e_pred[k] = float(np.ravel(e)[j]) / len(symbols)
                f_pred[k] = np.asarray(f)[j].reshape(-1)
    return {"e_ref": e_ref, "e_pred": e_pred, "f_ref": np.concatenate(f_ref),
            "f_pred": np.concatenate(f_pred)}


@dataclass
class EvalRow:
    model: str
    architecture: str
    reference: str
    dataset: str
    E_train_meV_atom: float = float("nan")
    E_test_meV_atom: float = float("nan")
    F_train_eV_A: float = float("nan")
    F_test_eV_A: float = float("nan")
    frames: dict[str, int] = field(default_factory=dict)
    model_file: str = ""
    cross: dict[str, dict[str, Any]] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)


def _parity_plots(model: str, dataset: str, pred: dict[str, dict[str, np.ndarray]],
                  out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, (ref, prd, unit) in {"energy": ("e_ref", "e_pred", "eV/atom"),
                                   "force": ("f_ref", "f_pred", "eV/A")}.items():
        fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=120)
        lo, hi = np.inf, -np.inf
        for split, colour in (("train", "tab:blue"), ("test", "tab:orange")):
            if split not in pred:
                continue
            x, y = pred[split][ref], pred[split][prd]
            rmse = float(np.sqrt(np.mean((y - x) ** 2)))
            scale = 1000.0 if kind == "energy" else 1.0
            label = f"{split} (RMSE {rmse * scale:.3g} {'meV/atom' if kind == 'energy' else unit})"
            ax.scatter(x, y, s=4 if kind == "energy" else 1, alpha=0.6, c=colour, label=label,
                       rasterized=True)
            lo, hi = min(lo, x.min(), y.min()), max(hi, x.max(), y.max())
        pad = 0.05 * (hi - lo if hi > lo else 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel(f"reference {kind} ({unit})")
        ax.set_ylabel(f"{model} {kind} ({unit})")
        ax.set_title(f"{model} on {dataset}", fontsize=9)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        p = out / f"{model}__{Path(dataset).name}_{kind}.png"
        tmp = p.with_name(p.stem + ".tmp.png")
        fig.savefig(tmp)
        plt.close(fig)
        tmp.replace(p)
        paths.append(str(p))
    return paths


def siblings(dataset_dir: Path) -> list[tuple[str, str, Path]]:
    """Datasets with the same frames as ``dataset_dir`` labelled with another functional
    (``lpsc-lmp data label`` of the same source): (name, functional, folder)."""
    rec = dataset_dir / LABEL_RECORD
    if not rec.is_file():
        return []
    mine = json.loads(rec.read_text())
    out = []
    for other in sorted(dataset_dir.parent.glob(f"*/{LABEL_RECORD}")):
        r = json.loads(other.read_text())
        if (other.parent != dataset_dir and r.get("source_dataset") == mine["source_dataset"]
                and r.get("functional") != mine.get("functional")):
            out.append((other.parent.name, str(r.get("functional")), other.parent))
    return out


def cross_errors(pred_test: dict[str, np.ndarray], other_test: Path) -> dict[str, float]:
    """Errors of a model's test-set predictions against another labelling of the same frames:
    force RMSE (eV/A) and energy RMSE per atom after removing the mean offset (meV/atom; the
    functionals' energy references differ by a constant)."""
    frames = read(other_test, index=":")
    e_ref = np.array([at.get_potential_energy() / len(at) for at in frames])
    f_ref = np.concatenate([at.get_forces().ravel() for at in frames])
    if e_ref.size != pred_test["e_pred"].size or f_ref.size != pred_test["f_pred"].size:
        raise DatasetError(f"{other_test} does not hold the frames of the model's test set")
    de = pred_test["e_pred"] - e_ref
    return {"E_offset_removed_meV_atom": float(np.std(de) * 1000.0),
            "energy_offset_eV_atom": float(np.mean(de)),
            "F_eV_A": float(np.sqrt(np.mean((pred_test["f_pred"] - f_ref) ** 2)))}


def evaluate_model(card: ModelCard, dataset: str, root: Path | None = None,
                   plot_dir: Path | None = None) -> EvalRow:
    """Errors of one model on ``<dataset>/{train,test}.extxyz`` (+ parity plots), and on the
    test labels of the same frames by other functionals (:func:`siblings`)."""
    if card.architecture not in ARCHITECTURES:
        raise DatasetError(f"no evaluator for architecture '{card.architecture}' (model "
                           f"'{card.name}'); supported: {', '.join(ARCHITECTURES)}")
    path = resolve_dataset(dataset, root)
    missing = [s for s in SPLITS if not (path / f"{s}.extxyz").is_file()]
    if missing:
        raise DatasetError(f"{path} lacks {', '.join(m + '.extxyz' for m in missing)}; run "
                           f"`lpsc-lmp data split {Path(dataset).name}` first")
    files = [path / f"{s}.extxyz" for s in SPLITS]
    if card.architecture != "deepmd":  # the ASE calculator, in the model's environment
        model_file = card.require_deploy_file()
        try:
            res = predict_in_env(card, files)
        except EnvironmentFailure as exc:
            raise DatasetError(f"{card.name}: prediction in .venv/{card.env} failed: "
                               f"{exc}") from None
        pred = {split: res[str(f)] for split, f in zip(SPLITS, files, strict=True)}
    else:
        model_file = _model_file(card)
        pred = {split: predict_deepmd(model_file, f, list(card.type_map))
                for split, f in zip(SPLITS, files, strict=True)}
    row = EvalRow(card.name, card.architecture, card.functional, dataset,
                  model_file=str(model_file))
    for split in SPLITS:
        err = rmse_fields(*(pred[split][k] for k in ("e_ref", "e_pred", "f_ref", "f_pred")))
        setattr(row, f"E_{split}_meV_atom", err["energy_rmse_meV_atom"])
        setattr(row, f"F_{split}_eV_A", err["force_rmse_eV_A"])
        row.frames[split] = int(pred[split]["e_ref"].size)
    for name, functional, folder in siblings(path):
        row.cross[functional] = {"dataset": name,
                                 **cross_errors(pred["test"], folder / "test.extxyz")}
    if plot_dir is not None:
        row.plots = _parity_plots(card.name, dataset, pred, plot_dir)
    return row


def format_table(rows: list[EvalRow]) -> str:
    """The paper's Table 1 layout, grouped by functional: energy RMSE train/test (meV/atom)
    and force RMSE train/test (eV/A), then each model's test errors against the labels of the
    other functional(s) of the same frames (energy with the constant offset removed)."""
    rows = sorted(rows, key=lambda r: (r.reference, r.architecture, r.model))
    others = sorted({f for r in rows for f in r.cross})
    head = ["model", "architecture", "functional", "E train", "E test", "F train", "F test"]
    units = ["", "", "", "meV/atom", "meV/atom", "eV/A", "eV/A"]
    for f in others:
        head += [f"E test vs {f}", f"F test vs {f}"]
        units += ["meV/atom*", "eV/A"]
    body = []
    for r in rows:
        cells = [r.model, r.architecture, r.reference, f"{r.E_train_meV_atom:.2f}",
                 f"{r.E_test_meV_atom:.2f}", f"{r.F_train_eV_A:.3f}", f"{r.F_test_eV_A:.3f}"]
        for f in others:
            c = r.cross.get(f)
            cells += ([f"{c['E_offset_removed_meV_atom']:.2f}", f"{c['F_eV_A']:.3f}"] if c
                      else ["-", "-"])
        body.append(cells)
    widths = [max(len(x[i]) for x in [head, units, *body]) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    sep = "  ".join("-" * w for w in widths)
    table = [line(head), line(units), sep, *(line(b) for b in body)]
    if others:
        table.append("* energy RMSE per atom after removing the mean offset between the "
                     "functionals (their energy references differ by a constant)")
    return "\n".join(table)


def evaluate(models: list[str] | None = None, dataset: str | None = None,
             root: Path | None = None, out_dir: Path | None = None, name: str | None = None,
             plots: bool = True, echo=print) -> dict[str, Any]:
    """Evaluate ``models`` (default: every registered trained model, teachers left out) on their
    datasets (or on ``dataset`` for all); write ``<out_dir>/<name>.{csv,json}``."""
    names = list(models) if models else list_models()
    if not names:
        raise DatasetError("no models registered; train one with `lpsc-lmp train`")
    out_dir = out_dir or project_root() / "evaluation"
    rows, skipped = [], []
    for n in names:
        card = load_card(n)
        if not models and card.raw.get("teacher"):
            continue  # a universal potential that labelled the data, not a trained model
        ds = dataset or card_dataset(card)
        if not ds:
            msg = f"{n}: its card names no dataset (add `dataset: <name>`); skipped"
            if models:
                raise DatasetError(msg.replace("; skipped", "") + " or pass --dataset")
            skipped.append(msg)
            echo(msg)
            continue
        if card.architecture not in ARCHITECTURES:
            msg = f"{n}: no evaluator for architecture '{card.architecture}'; skipped"
            skipped.append(msg)
            echo(msg)
            continue
        echo(f"evaluating {n} on {ds} ...")
        rows.append(evaluate_model(card, ds, root, out_dir / "parity" if plots else None))
    if not rows:
        raise DatasetError("no model could be evaluated (see above); pass --model and "
                           "--dataset, or add `dataset:` to the cards")
    table = format_table(rows)
    echo(table)
    if name is None:
        name = "errors" if not models else "errors_" + "-".join(names)
        if dataset:
            name += f"_on-{Path(dataset).name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([getattr(r, c) if isinstance(getattr(r, c), str) else f"{getattr(r, c):.6g}"
                    for c in COLUMNS])
    record = {"units": {"E": "meV/atom (RMSE of energy per atom)",
                        "F": "eV/A (RMSE over all force components)"},
              "rows": [asdict(r) for r in rows], "skipped": skipped}
    for suffix, text in ((".csv", buf.getvalue()), (".json", json.dumps(record, indent=2))):
        write_text_atomic(out_dir / f"{name}{suffix}", text)
    echo(f"wrote {out_dir / name}.csv, .json" + (f" and parity plots in {out_dir / 'parity'}"
                                                 if plots else ""))
    return {"rows": rows, "table": table, "csv": out_dir / f"{name}.csv",
            "json": out_dir / f"{name}.json", "skipped": skipped}
