"""``lpsc-lmp sweep``: every (model, temperature) ensemble from one shared queue of seeds."""

from __future__ import annotations

import sys

import click

from ..errors import EnsembleError
from .options import physics_options, run_options, settings_from


@click.command("sweep")
@click.option("--models", required=True, help="Models, comma or space separated.")
@click.option("--temps", required=True, help="Temperatures (K), comma or space separated.")
@physics_options
@run_options
@click.option("--workers", type=int, default=None,
              help="Parallel worker processes [default: GPUs x workers-per-gpu, or 1 on CPU].")
@click.option("--engine", type=click.Choice(["local", "dispatcher"]), default="local",
              show_default=True, help="local processes, or batch jobs through dpdispatcher.")
@click.option("--machine", "machine_file", type=click.Path(), default=None,
              help="dpdispatcher machine/resources file (JSON/YAML) for --engine dispatcher.")
@click.option("--seeds-per-job", type=int, default=10, show_default=True,
              help="Seeds run one after another by each batch job (dispatcher).")
def sweep(models: str, temps: str, engine: str, machine_file: str | None,
          seeds_per_job: int, **kw) -> None:
    """Run every (model, temperature) ensemble from one shared queue of seeds.

    All ensembles are checked before anything is written; finished seeds are kept, so the
    same command resumes.

    Example: lpsc-lmp sweep --models dp-7net,mace-7net --temps 900,1000 --seeds 16 --time 20
    """
    from ..devices import resolve_gpus
    from ..runs.local import plan_slots
    from ..runs.status import format_table, status_rows
    from ..runs.sweep import parse_list, run_sweep

    model_list = parse_list(models)
    try:
        temp_list = parse_list(temps, float)
    except ValueError:
        raise EnsembleError(f"--temps '{temps}' is not a list of numbers like 700,800") from None
    if not kw["workers"]:
        kw["workers"] = len(plan_slots(None, resolve_gpus(kw["gpus"]), kw["workers_per_gpu"])[0])
    settings = [settings_from(m, t, kw) for m in model_list for t in temp_list]
    try:
        edirs = run_sweep(settings, echo=click.echo, engine=engine, machine_file=machine_file,
                          seeds_per_job=seeds_per_job)
    except KeyboardInterrupt:
        sys.exit(130)
    rows = [r for d in edirs for r in status_rows(d)]
    click.echo(format_table(rows))
    click.echo("analysis of everything finished: lpsc-lmp report (or make report)")
