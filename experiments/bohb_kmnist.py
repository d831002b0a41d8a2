"""Seed 001: BOHB over the conditional CNN space on KMNIST, one sweep per preset of its table.

    python experiments/bohb_kmnist.py --download --gpus-per-trial 0.25   # all five presets
    python experiments/bohb_kmnist.py --preset 3_1_9_20                   # one of them
    python experiments/bohb_kmnist.py --smoke                             # tiny, built-in data
"""

import sys

from automl_chars.cli.experiment import ExperimentSpec, run_experiment

SPEC = ExperimentSpec(
    name="bohb_kmnist",
    dataset="kmnist",
    presets=("2_1_16_10", "3_1_9_20", "4_1_16_20", "2_1_10_14", "3_2_20_20"),
    description=__doc__.splitlines()[0],
)

if __name__ == "__main__":
    sys.exit(run_experiment(SPEC))
