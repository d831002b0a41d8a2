"""Seed 001's transfer: KMNIST's BOHB incumbent carried to Kuzushiji-49 four ways.

    python experiments/transfer_k49.py --download --gpus-per-trial 0.25   # KMNIST -> K49
    python experiments/transfer_k49.py --smoke                            # two glyph domains

Rows: default configuration, source incumbent as-is, model transfer (fine-tuned), configuration
transfer + BOHB; columns: validation, train and test accuracy, runtime (seed 001's table).
"""

import argparse
import sys

from automl_chars.cli.main import add_sweep_arguments, run_command, sweep
from automl_chars.cli.options import SMOKE_HELP, load_dataset, smoke_storage

SOURCE, TARGET, PRESET = "kmnist", "k49", "3_1_9_20"
SMOKE = {"source": "glyphs-latin-upper", "target": "glyphs-latin-lower", "preset": "2_1_2_1",
         "samples_per_class": 6}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="transfer_k49", description=__doc__.splitlines()[0])
    add_sweep_arguments(parser, preset_default=None)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args(argv)
    return run_command(_run, args)


def _run(args: argparse.Namespace) -> int:
    from automl_chars.layout import SUMMARY_FILE, experiment_dir
    from automl_chars.workflows.transfer_table import transfer_table

    source, target, preset = SOURCE, TARGET, args.preset or PRESET
    if args.smoke:
        smoke_storage(args, "transfer_k49")
        source, target, preset = SMOKE["source"], SMOKE["target"], args.preset or SMOKE["preset"]
        if args.samples_per_class is None:
            args.samples_per_class = SMOKE["samples_per_class"]
    source_ds, target_ds = load_dataset(source, args), load_dataset(target, args)
    name = f"{args.name or 'transfer_k49'}-source-{preset}"
    finished = (experiment_dir(args.storage, name) / SUMMARY_FILE).exists()
    src = sweep(source_ds, args, preset, name=name, resume=args.resume or finished)
    print(f"Source sweep: {src.path} (incumbent test accuracy {src.test_accuracy:.4f})")
    table = transfer_table(src, target_ds, preset=preset, source_dataset=source_ds,
                           storage_path=args.storage, name=f"{args.name or 'transfer_k49'}-table",
                           seed=args.seed, resume=args.resume,
                           gpus_per_trial=args.gpus_per_trial, verbose=args.verbose)
    shown = table.copy()
    for col in ("val_acc", "train_acc", "test_acc"):
        shown[col] = shown[col].map(lambda v: f"{100 * v:.2f}%")
    shown["runtime_s"] = shown["runtime_s"].map(lambda v: f"{v:.1f}s")
    print(f"\n{source_ds.name} -> {target_ds.name}\n{shown.to_string(index=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
