"""The one training loop: epochs over in-memory tensors, evaluation, and its checkpoint state.

Every Trainable reuses these functions; they know nothing of Ray. Images stay ``uint8`` on the
device (4x less memory than float) and each batch is converted and normalised when sliced.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from automl_chars.errors import NonFiniteLossError
from automl_chars.training.augment import random_affine
from automl_chars.training.bsguard import BatchGuard, Penalty, guarded_step
from automl_chars.training.settings import AugmentSettings

EVAL_BATCH_SIZE = 2048


@dataclass(frozen=True)
class DeviceData:
    """One split on a device: ``uint8`` images, ``int64`` labels, normalisation constants."""

    x: torch.Tensor
    y: torch.Tensor
    mean: float
    std: float

    @classmethod
    def create(cls, x: torch.Tensor, y: torch.Tensor, device: torch.device,
               mean: float | None = None, std: float | None = None) -> DeviceData:
        """Moves ``x``/``y`` to ``device``; mean/std default to those of ``x`` itself."""
        if mean is None or std is None:
            mean, std = pixel_mean_std(x)
        return cls(x.to(device), y.to(device), mean, std)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: torch.Tensor) -> DeviceData:
        idx = idx.to(self.x.device)
        return DeviceData(self.x[idx], self.y[idx], self.mean, self.std)

    def batch(self, idx: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Float, normalised images and labels at ``idx`` (indices, or a slice: no gather)."""
        # (x / 255 - mean) / std in two kernels: uint8 * float promotes to float32 as it scales.
        # Small models on a GPU are bound by kernel launches, so each one per batch counts.
        x = torch.mul(self.x[idx], 1.0 / (255.0 * self.std)).add_(-self.mean / self.std)
        return x, self.y[idx]


def pixel_mean_std(x: torch.Tensor, chunk: int = 8192) -> tuple[float, float]:
    """Mean and standard deviation of ``uint8`` images scaled to [0, 1], computed in chunks so
    that a large dataset (K49: 232k images) is never copied to float all at once."""
    total = total_sq = 0.0
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk].to(torch.float64).div_(255.0)
        total += float(part.sum())
        total_sq += float(part.square().sum())
    n = max(1, x.numel())
    mean = total / n
    return mean, max(1e-3, (max(0.0, total_sq / n - mean * mean)) ** 0.5)


@dataclass(frozen=True)
class EpochStats:
    loss: float
    accuracy: float
    samples: int
    seconds: float


def epoch_batches(data: DeviceData, batch_size: int, generator: torch.Generator,
                  augment: AugmentSettings = AugmentSettings(),
                  ) -> tuple[torch.Tensor, Iterator[tuple[int, torch.Tensor, torch.Tensor]]]:
    """An epoch's random order (drawn from ``generator``) and its augmented batches in that
    order, as ``(offset, x, y)``; a last batch of a single sample is skipped (BatchNorm cannot
    train on one). Shared by every training loop, so they see data alike."""
    n, device = len(data), data.x.device
    order = torch.randperm(n, generator=generator, device=generator.device).to(device)

    def batches() -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            if len(idx) < 2:
                continue
            x, y = data.batch(idx)
            yield i, random_affine(x, augment, generator), y

    return order, batches()


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: DeviceData,
    batch_size: int,
    generator: torch.Generator,
    augment: AugmentSettings = AugmentSettings(),
    guard: BatchGuard | None = None,
    penalty: Penalty | None = None,
) -> EpochStats:
    """One pass over ``data`` in a random order drawn from ``generator``.

    ``guard``: BSGuard (:mod:`~automl_chars.training.bsguard`): a step that runs out of memory
    is redone in smaller micro-batches instead of failing. ``penalty(model)`` is added to each
    step's loss (e.g. :class:`~automl_chars.training.regularizers.DistanceRegularizer`); the
    reported loss is the cross-entropy alone.

    Loss and accuracy are running means over the epoch's batches (in training mode), the
    "train accuracy" of the result tables; no extra pass over the data is made. Both stay on the
    device (one kernel per batch each) and are read once, at the end. A last batch of a single
    sample is skipped (BatchNorm cannot train on one) and left out of the statistics and of
    ``samples``. A NaN or infinite epoch loss raises :class:`NonFiniteLossError` (checked once,
    at that read, so it costs no synchronisation per batch).
    """
    start = time.perf_counter()
    model.train()
    n = len(data)
    device = data.x.device
    order, batches = epoch_batches(data, batch_size, generator, augment)
    loss_sum = torch.zeros((), device=device)
    predicted = torch.full((n,), -1, dtype=torch.int64, device=device)  # -1: batch skipped
    trained = 0
    for i, x, y in batches:
        loss, out = guarded_step(model, optimizer, x, y, guard, penalty)
        loss_sum.add_(loss, alpha=len(y))
        torch.argmax(out, 1, out=predicted[i : i + len(y)])
        trained += len(y)
    if trained == 0:
        return EpochStats(float("nan"), float("nan"), 0, time.perf_counter() - start)
    correct = (predicted == data.y[order]).sum()
    loss_mean, accuracy = float(loss_sum) / trained, float(correct) / trained  # waits for the GPU
    if not math.isfinite(loss_mean):
        raise NonFiniteLossError(f"the training loss is {loss_mean} (diverged)")
    return EpochStats(loss_mean, accuracy, trained, time.perf_counter() - start)


@torch.no_grad()
def evaluate(model: nn.Module, data: DeviceData, batch_size: int = EVAL_BATCH_SIZE) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``data`` (evaluation mode)."""
    model.eval()
    n = len(data)
    if n == 0:
        return float("nan"), float("nan")
    loss_sum = torch.zeros((), device=data.x.device)
    correct = torch.zeros((), device=data.x.device, dtype=torch.int64)
    for i in range(0, n, batch_size):
        x, y = data.batch(slice(i, i + batch_size))
        out = model(x)
        loss_sum += F.cross_entropy(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    return float(loss_sum) / n, float(correct) / n


def rng_state(generator: torch.Generator, device: torch.device) -> dict:
    """Every random state training on ``device`` depends on: the shuffling/augmentation generator,
    torch's CPU RNG and, on a GPU, that GPU's RNG (dropout). All are CPU byte tensors."""
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":  # only the trial's own GPU: touching others would create contexts
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(generator: torch.Generator, state: dict, device: torch.device) -> None:
    """Restores :func:`rng_state`; pass tensors loaded with ``map_location="cpu"``.

    A state saved on another kind of device (a GPU trial resumed on a CPU, or back) cannot be
    loaded: CPU and CUDA generators keep incompatible states. The generator is then seeded from
    the saved state, so the trial continues reproducibly, though not as it would have there.
    """
    saved = state["generator"]
    if saved.numel() == generator.get_state().numel():  # CPU: 5056 bytes, CUDA: 16
        generator.set_state(saved)
    else:
        generator.manual_seed(zlib.crc32(saved.numpy().tobytes()))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
