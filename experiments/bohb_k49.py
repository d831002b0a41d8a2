"""Seed 001: BOHB over the conditional CNN space on Kuzushiji-49, one sweep per preset of its table.

    python experiments/bohb_k49.py --download --gpus-per-trial 0.5        # both presets
    python experiments/bohb_k49.py --preset 3_1_9_10 --fidelity subset    # data-subset budgets
    python experiments/bohb_k49.py --smoke                                # tiny, built-in data
"""

import sys

from automl_chars.cli.experiment import ExperimentSpec, run_experiment

SPEC = ExperimentSpec(
    name="bohb_k49",
    dataset="k49",
    presets=("3_1_9_10", "2_1_10_10"),
    description=__doc__.splitlines()[0],
    smoke_dataset="glyphs-cyrillic",
)

if __name__ == "__main__":
    sys.exit(run_experiment(SPEC))
