"""Seed 002: a weight-sharing supernet on MNIST with uniform and epsilon-greedy sampling against
every subnet trained standalone (the table, Kendall's tau and Spearman's rho, top-k fine-tuning,
plots).

    python experiments/supernet_mnist.py --download --gpus-per-trial 0.25   # MNIST, 9 subnets
    python experiments/supernet_mnist.py --sampler fair --epochs 5          # another sampler
    python experiments/supernet_mnist.py --smoke                            # tiny, built-in data

``--smoke`` writes to a fresh temporary folder unless ``--storage`` is given, so it never meets
an ``automl-chars supernet`` run of the same default name.
"""

import argparse
import sys

from automl_chars.cli.main import run_command
from automl_chars.cli.options import SMOKE_HELP, smoke_storage
from automl_chars.cli.supernet import add_supernet_arguments, run_samplers

DATASET = "mnist"
#: --smoke: a glyph domain, 4 subnets of a tiny supernet, one epoch, no fine-tuning (the CLI
#: test covers it).
SMOKE = {"channels": (4, 8), "depths": (1, 2), "epochs": 1, "top_k": 0, "samples_per_class": 8,
         "batch_size": 16}
SMOKE_DATASET = "glyphs-digits"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="supernet_mnist", description=__doc__.splitlines()[0])
    add_supernet_arguments(parser, samplers=("uniform", "epsilon_greedy"))
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    return run_command(_run, args)


def _run(args: argparse.Namespace) -> int:
    if args.smoke:
        smoke_storage(args, "supernet_mnist")
    run_samplers(SMOKE_DATASET if args.smoke else DATASET, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
