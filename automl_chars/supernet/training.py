"""Supernet training and evaluation over the shared loop's in-memory data (plain PyTorch).

One epoch (:func:`train_supernet_epoch`) is the shared loop's epoch (:mod:`automl_chars.training`:
same shuffling, normalisation, augmentation, NaN check and statistics), except that each batch is
a sampler round: the sampler picks the subnet(s), they train on the batch (gradients summed when
several), and each one's top-1 on the next validation batch is its reward.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from automl_chars.errors import InvalidConfigError, NonFiniteLossError
from automl_chars.supernet.model import Supernet, recalibrate_bn
from automl_chars.supernet.samplers import Sampler
from automl_chars.training import AugmentSettings, DeviceData, EpochStats, evaluate
from automl_chars.training.bsguard import Penalty
from automl_chars.training.loop import epoch_batches


@dataclass(frozen=True)
class SupernetEvalSettings:
    """How rewards and evaluations are measured.

    Attributes:
        reward_batch: validation images a round's reward is measured on (batch statistics, so no
            recalibration is needed per round).
        calib_samples: training images batch norm is recalibrated on before a subnet is
            evaluated (see :mod:`automl_chars.supernet.model`).
        eval_subnets: subnets evaluated on the whole validation split after each epoch; spaces
            larger than this evaluate the sampler's most trained ones plus a uniform draw.
    """

    reward_batch: int = 64
    calib_samples: int = 512
    eval_subnets: int = 64

    def __post_init__(self) -> None:
        if self.reward_batch < 2 or self.calib_samples < 2 or self.eval_subnets < 1:
            raise InvalidConfigError(
                f"reward_batch ({self.reward_batch}) and calib_samples ({self.calib_samples}) "
                f"must be >= 2, eval_subnets ({self.eval_subnets}) >= 1."
            )


#: One round of a supernet epoch: given a training batch, zero the weights' gradients, run the
#: forward and backward passes and return the round's summed loss and correct count (tensors)
#: and what to do once the optimizer stepped (or None).
Round = Callable[[torch.Tensor, torch.Tensor],
                 tuple[torch.Tensor, torch.Tensor, Callable[[], None] | None]]


def round_epoch(supernet: nn.Module, optimizer: torch.optim.Optimizer, data: DeviceData,
                batch_size: int, generator: torch.Generator, augment: AugmentSettings,
                penalty: Penalty | None, train_round: Round, what: str) -> EpochStats:
    """The epoch loop a supernet's trainings share (a sampler's, DARTS's): the shared loop's
    batches (:func:`~automl_chars.training.loop.epoch_batches`), each a ``train_round``, then
    ``penalty`` (added once per round; it reaches every weight) and the optimizer's step.
    Statistics as in :func:`~automl_chars.training.train_epoch`; a non-finite mean loss raises
    :class:`NonFiniteLossError` naming ``what``."""
    start = time.perf_counter()
    supernet.train()
    device = data.x.device
    _, batches = epoch_batches(data, batch_size, generator, augment)
    loss_sum, correct_sum = torch.zeros((), device=device), torch.zeros((), device=device)
    trained = 0
    for _, x, y in batches:
        loss, correct, after_step = train_round(x, y)
        if penalty is not None:
            penalty(supernet).backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        loss_sum.add_(loss)
        correct_sum.add_(correct)
        trained += len(y)
    if trained == 0:
        return EpochStats(float("nan"), float("nan"), 0, time.perf_counter() - start)
    loss_mean, accuracy = float(loss_sum) / trained, float(correct_sum) / trained
    if not math.isfinite(loss_mean):
        raise NonFiniteLossError(f"{what}'s training loss is {loss_mean} (diverged)")
    return EpochStats(loss_mean, accuracy, trained, time.perf_counter() - start)


def train_supernet_epoch(
    supernet: Supernet,
    optimizer: torch.optim.Optimizer,
    sampler: Sampler,
    data: DeviceData,
    val_data: DeviceData,
    batch_size: int,
    generator: torch.Generator,
    augment: AugmentSettings = AugmentSettings(),
    reward_batch: int = 64,
    penalty: Penalty | None = None,
) -> EpochStats:
    """One pass over ``data``; each batch trains the subnets ``sampler`` picks for it.

    Statistics as in :func:`~automl_chars.training.train_epoch` (running loss and accuracy of the
    trained subnets, averaged over the subnets of a round). Unused sub-blocks get no gradient
    (``None``), so optimisers leave their weights alone. ``penalty(supernet)`` (the distance
    regularizer) is added once per round; it reaches every weight, unused sub-blocks too.
    """

    def train_round(x: torch.Tensor, y: torch.Tensor):
        chosen = sampler.sample()
        archs = [sampler.space.archs[c] for c in chosen]
        optimizer.zero_grad(set_to_none=True)
        loss_sum, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
        for arch in archs:
            out = supernet(x, arch)
            loss = F.cross_entropy(out, y)
            (loss / len(archs)).backward()
            loss_sum.add_(loss.detach(), alpha=len(y) / len(archs))
            correct.add_((out.detach().argmax(1) == y).sum(), alpha=1 / len(archs))

        def rewards() -> None:
            for c, arch in zip(chosen, archs):
                sampler.update(c, reward(supernet, arch, val_data, sampler.round, reward_batch))
            sampler.end_round()

        return loss_sum, correct, rewards

    stats = round_epoch(supernet, optimizer, data, batch_size, generator, augment, penalty,
                        train_round, "the supernet")
    sampler.snapshot()  # the dynamics at every epoch's end, however short the epoch
    return stats


@torch.no_grad()
def reward(supernet: Supernet, arch, val_data: DeviceData, round_: int, size: int) -> float:
    """Top-1 of ``arch`` on validation batch number ``round_`` (cycling through the split), with
    batch statistics (training mode), as seed 002's per-round accuracy."""
    n = len(val_data)
    if n == 0:
        return float("nan")
    size = min(size, n)
    start = (round_ * size) % n
    idx = torch.arange(start, start + size, device=val_data.x.device) % n
    x, y = val_data.batch(idx)
    return float((supernet(x, arch).argmax(1) == y).float().mean())


def calibration_images(data: DeviceData, samples: int) -> torch.Tensor:
    """The first ``samples`` training images, normalised (the same for every subnet, so their
    evaluations differ only by their weights)."""
    return data.batch(slice(0, min(samples, len(data))))[0]


def evaluate_subnet(supernet: Supernet, arch, calibration: torch.Tensor,
                    data: DeviceData) -> tuple[float, float]:
    """Loss and top-1 of ``arch`` on ``data``: extracted, batch norm recalibrated on
    ``calibration``, in evaluation mode. The supernet itself is left unchanged."""
    subnet = recalibrate_bn(supernet.extract(arch), calibration)
    return evaluate(subnet, data)


def subnets_to_evaluate(sampler: Sampler, limit: int) -> list[int]:
    """Every active subnet when there are at most ``limit``; otherwise the ``limit // 2`` most
    sampled ones and a uniform draw of the rest (from the sampler's generator)."""
    active = list(sampler.active)
    if len(active) <= limit:
        return active
    top = sorted(active, key=lambda i: (-sampler.counts[i], i))[: limit // 2]
    rest = [i for i in active if i not in set(top)]
    pick = torch.randperm(len(rest), generator=sampler.generator)[: limit - len(top)].tolist()
    return sorted(top + [rest[k] for k in pick])
