"""``lpsc-lmp train`` and ``lpsc-lmp evaluate``: dataset -> registered model -> Table 1."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import TrainingError
from ..models.architectures import ARCHITECTURES

data_root_option = click.option(
    "--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of datasets (default: data/ or $LPSC_LMP_DATA).")


@click.command("train")
@click.option("--arch", type=click.Choice(ARCHITECTURES), required=True,
              help="Model architecture.")
@click.option("--dataset", required=True, help="Dataset name under --data-root (split first).")
@click.option("--name", required=True, help="Model name: potentials/<name>/.")
@click.option("--reference", required=True,
              help="Reference method of the labels (PBE, HSE, 7net, ...); goes into the card.")
@click.option("--reference-method", default=None,
              help="Longer description of the reference for the card.")
@click.option("--steps", type=int, default=20000, show_default=True,
              help="Training steps (deepmd).")
@click.option("--epochs", type=int, default=None,
              help="Epochs (mace, nequip, allegro; default as the bundled models: 20 / 60).")
@click.option("--max-minutes", type=float, default=None,
              help="Wall-time limit of the training (mace, nequip, allegro; default 18 for "
                   "nequip/allegro with no --epochs). MACE is stopped and its model written "
                   "from the last checkpoint.")
@click.option("--seed", type=int, default=1, show_default=True, help="Training seed.")
@click.option("--seeds", type=int, default=1, show_default=True,
              help="A committee of this many models that differ only in their training seed "
                   "(NAME with --seed, NAME-seed<k> with the next seeds).")
@click.option("--init-from", default=None, metavar="MODEL",
              help="Start from this registered model of the same architecture (transfer "
                   "learning: DeePMD-kit fine-tuning, MACE --foundation_model, NequIP/Allegro "
                   "ModelFromPackage).")
@click.option("--stage-two", is_flag=True,
              help="MACE: add MACE's second training stage (higher energy weight) and keep it "
                   "where it lowers the test energy error.")
@click.option("--rcut", type=float, default=None,
              help="Cutoff (A; default 6 for deepmd, 5 for the others).")
@click.option("--templates", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with train/<arch template> (deepmd.json.j2, mace.args.j2, "
                   "nequip.yaml.j2, allegro.yaml.j2; default: templates/).")
@data_root_option
@click.option("--force", is_flag=True, help="Replace an existing model of this name.")
def train(arch: str, dataset: str, name: str, reference: str, reference_method: str | None,
          steps: int, epochs: int | None, max_minutes: float | None, seed: int, seeds: int,
          init_from: str | None, stage_two: bool, rcut: float | None, templates: Path | None,
          data_root: Path | None, force: bool) -> None:
    """Train a model on a split dataset and register it in potentials/.

    \b
    Examples:
      lpsc-lmp train --arch deepmd --dataset my-pbe --name dp-pbe --reference PBE --seeds 4
      lpsc-lmp train --arch deepmd --dataset my-hse --name dp-hse --reference HSE06 \
          --init-from dp-pbe --steps 4000
    """
    from ..training.train import train_model

    try:
        train_model(arch, dataset, name, reference, steps, templates, force, data_root, seed,
                    rcut, reference_method, echo=click.echo, epochs=epochs,
                    max_minutes=max_minutes, init_from=init_from, seeds=seeds,
                    stage_two=stage_two)
    except KeyboardInterrupt:
        raise TrainingError("interrupted; no model was registered") from None


@click.command("evaluate")
@click.option("--model", "models", multiple=True, help="Model(s) to evaluate (default: all "
              "registered models whose card names a dataset).")
@click.option("--dataset", default=None, help="Evaluate on this dataset instead of each card's.")
@data_root_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Output folder (default: evaluation/).")
@click.option("--no-plots", is_flag=True, help="Skip the parity plots.")
def evaluate(models: tuple[str, ...], dataset: str | None, data_root: Path | None,
             out_dir: Path | None, no_plots: bool) -> None:
    """Train/test energy and force RMSE of the models (the paper's Table 1) + parity plots.

    Example: lpsc-lmp evaluate --model dp-7net
    """
    from ..training.evaluate import evaluate as run_evaluate

    os.environ.setdefault("MPLBACKEND", "Agg")
    run_evaluate(list(models) or None, dataset, data_root, out_dir, plots=not no_plots,
                 echo=click.echo)
