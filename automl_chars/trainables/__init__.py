"""Ray Tune Trainables; the only modules besides the sweep runner that import Ray."""

from automl_chars.trainables.cnn import CHECKPOINT_FILE, CNNTrainable, trial_device

__all__ = ["CHECKPOINT_FILE", "CNNTrainable", "trial_device"]
