"""The shared runner behind ``experiments/*.py``: seed 001's sweeps, a table, a plot.

Each script names a dataset and the presets of its seed-001 table; ``--smoke`` swaps in a tiny
budget on built-in data so the tests can run every script (in a fresh temporary folder unless
``--storage`` is given, so that it never meets the user's runs).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from automl_chars.cli.main import add_sweep_arguments, run_command, sweep
from automl_chars.cli.options import SMOKE_HELP, load_dataset, smoke_storage


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment script: its dataset and presets, and the smoke-test substitutes."""

    name: str
    dataset: str
    presets: tuple[str, ...]
    description: str
    smoke_dataset: str = "glyphs-latin-upper"
    smoke_preset: str = "2_1_2_2"
    smoke_samples_per_class: int = 6


def run_experiment(spec: ExperimentSpec, argv: Sequence[str] | None = None) -> int:
    """Runs ``spec``'s sweeps (or the one ``--preset``), prints and saves the combined table."""
    parser = argparse.ArgumentParser(prog=spec.name, description=spec.description)
    add_sweep_arguments(parser)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args(argv)
    return run_command(lambda a: _run(spec, a), args)


def _run(spec: ExperimentSpec, args: argparse.Namespace) -> int:
    from automl_chars.reporting import format_table, plot_learning_curves, results_table

    if args.smoke:
        smoke_storage(args, spec.name)
        dataset_name, presets = spec.smoke_dataset, [spec.smoke_preset]
        if args.samples_per_class is None:
            args.samples_per_class = spec.smoke_samples_per_class
    else:
        dataset_name, presets = spec.dataset, [args.preset] if args.preset else list(spec.presets)
    ds = load_dataset(dataset_name, args)
    results = []
    for preset in presets:
        name = f"{args.name or spec.name}-{preset}"
        result = _sweep_or_reuse(ds, args, preset, name)
        plot = plot_learning_curves(result.path)
        print(f"{preset}: {result.path} ({result.n_model_based} of {len(result.trials)} "
              f"configurations from BOHB's model; learning curves: {plot})")
        results.append(result)
    table = results_table(results)
    out = Path(results[0].path).parent / f"{args.name or spec.name}-table.csv"
    table.to_csv(out, index=False)
    print()
    print(format_table(table))
    print(f"\nTable saved to {out}")
    return 0


def _sweep_or_reuse(ds, args: argparse.Namespace, preset: str, name: str):
    """With ``--resume``, each preset's sweep continues where it is: finished ones are read back,
    interrupted ones resumed, ones never started begin (each checked against its saved settings).
    Without it, any existing sweep raises."""
    from automl_chars.layout import SUMMARY_FILE, experiment_dir
    from automl_chars.runner.core import can_resume

    if not args.resume:
        return sweep(ds, args, preset, name=name)
    exp = experiment_dir(args.storage, name)
    finished = (exp / SUMMARY_FILE).exists()
    if finished:
        print(f"{preset}: finished earlier, reading {exp}")
    return sweep(ds, args, preset, name=name, resume=finished or can_resume(exp))
