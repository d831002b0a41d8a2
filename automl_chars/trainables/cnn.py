"""``CNNTrainable``: one trial of the CNN space as a Ray Tune class Trainable.

A ``step()`` trains one budget unit (see :mod:`automl_chars.training.fidelity`) and evaluates on
the validation split. Checkpoints hold the model, optimizer, every RNG state and the budget
counters, so HyperBandForBOHB can pause a trial and resume it where it stopped.
"""

from __future__ import annotations

import json
import os
import zlib

import ray
import torch
from ray import tune

from automl_chars.data.dataset import Dataset
from automl_chars.errors import InvalidConfigError
from automl_chars.models import build_model, num_parameters
from automl_chars.spaces.cnn import resolve
from automl_chars.training import (
    AugmentSettings,
    DeviceData,
    OptimizerSettings,
    evaluate,
    rng_state,
    set_rng_state,
    train_epoch,
)
from automl_chars.training.fidelity import Fidelity

CHECKPOINT_FILE = "trial_state.pt"


def trial_device() -> torch.device:
    """The GPU Ray assigned to this actor, or the CPU when it assigned none."""
    if torch.cuda.is_available() and ray.is_initialized() and ray.get_gpu_ids():
        return torch.device("cuda")
    return torch.device("cpu")


def config_seed(config: dict, seed: int) -> int:
    """A reproducible per-configuration seed (Ray's trial ids are random)."""
    return (zlib.crc32(json.dumps(config, sort_keys=True, default=str).encode()) + seed) % 2**31


class CNNTrainable(tune.Trainable):
    """Trains ``build_model(model, config)`` on a :class:`Dataset` held in device memory.

    Pass the data and settings with ``tune.with_parameters(CNNTrainable, dataset=...,
    fidelity=Fidelity(...), seed=...)``. Reported metrics: ``val_acc``, ``val_loss``,
    ``train_acc``, ``train_loss``, ``epoch_s``, ``num_params``, ``budget``, ``data_fraction``,
    ``samples_seen``, ``shape_adjustments``.
    """

    def setup(self, config: dict, dataset: Dataset | None = None, fidelity: Fidelity = Fidelity(),
              seed: int = 0, model: str = "cnn") -> None:
        if dataset is None:
            raise InvalidConfigError(
                "CNNTrainable needs a dataset: tune.with_parameters(CNNTrainable, dataset=...)."
            )
        self.dataset, self.fidelity, self.seed, self.model_name = dataset, fidelity, seed, model
        self.device = trial_device()
        self.train_data = DeviceData.create(dataset.x_train, dataset.y_train, self.device)
        self.val_data = DeviceData.create(dataset.x_val, dataset.y_val, self.device,
                                          self.train_data.mean, self.train_data.std)
        self.order = fidelity.order(dataset.y_train.numpy())
        self._build(config)

    def _build(self, config: dict) -> None:
        self.full_config = resolve(config)
        trial_seed = config_seed(self.full_config, self.seed)
        torch.manual_seed(trial_seed)
        # On the trial's device, so shuffling and augmentation draw without host-device copies.
        self.generator = torch.Generator(device=self.device).manual_seed(trial_seed)
        self.model = build_model(self.model_name, self.full_config, self.dataset.num_classes,
                                 self.dataset.image_shape).to(self.device)
        self.opt_settings = OptimizerSettings.from_config(self.full_config)
        self.augment = AugmentSettings.from_config(self.full_config)
        self.optimizer = self.opt_settings.make(self.model)
        self.units_done = 0
        self.samples_seen = 0

    def step(self) -> dict:
        unit = self.units_done + 1
        idx = self.fidelity.indices(unit, self.order)
        data = self.train_data if idx is None else self.train_data.subset(torch.from_numpy(idx))
        stats = train_epoch(self.model, self.optimizer, data, self.opt_settings.batch_size,
                            self.generator, self.augment)
        val_loss, val_acc = evaluate(self.model, self.val_data)
        self.units_done = unit
        self.samples_seen += stats.samples
        return {
            "val_acc": val_acc,
            "val_loss": val_loss,
            "train_acc": stats.accuracy,
            "train_loss": stats.loss,
            "epoch_s": stats.seconds,
            "num_params": num_parameters(self.model),
            "budget": unit,
            "data_fraction": self.fidelity.fraction(unit),
            "samples_seen": self.samples_seen,
            "shape_adjustments": len(getattr(self.model, "adjustments", [])),
            "device": self.device.type,
        }

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": rng_state(self.generator, self.device),
                "units_done": self.units_done,
                "samples_seen": self.samples_seen,
                "config": self.full_config,
            },
            os.path.join(checkpoint_dir, CHECKPOINT_FILE),
        )

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        # CPU first: RNG states must stay CPU tensors; load_state_dict copies to the model's device.
        state = torch.load(os.path.join(checkpoint_dir, CHECKPOINT_FILE), map_location="cpu",
                           weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(self.generator, state["rng"], self.device)
        self.units_done = state["units_done"]
        self.samples_seen = state["samples_seen"]

    def reset_config(self, new_config: dict) -> bool:
        # The dataset stays on the device; only the model and optimizer are rebuilt.
        self._build(new_config)
        return True


def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, dataset: Dataset, split: str = "test",
                        model: str = "cnn") -> float:
    """Accuracy on ``split`` of the model saved in a :class:`CNNTrainable` checkpoint."""
    state = torch.load(os.path.join(checkpoint_dir, CHECKPOINT_FILE), map_location="cpu",
                       weights_only=False)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net = build_model(model, state["config"], dataset.num_classes, dataset.image_shape)
    net.load_state_dict(state["model"])
    train = DeviceData.create(dataset.x_train, dataset.y_train, torch.device("cpu"))
    x, y = dataset.split(split)
    data = DeviceData.create(x, y, device, train.mean, train.std)
    return evaluate(net.to(device), data)[1]
