"""What a model costs to run: parameters, FLOPs and measured inference latency (hardware-aware
search, seed 004: MnasNet, FBNet, Once-for-All).

Pure functions of a built ``nn.Module``, measured once per trial (``SupervisedTrainable``) and
per subnet (supernets):

- parameters: every parameter of the model (frozen ones too: they are deployed);
- FLOPs: PyTorch's own count (``torch.utils.flop_counter.FlopCounterMode``) of one image's
  forward pass in evaluation mode. It counts matrix multiplications and convolutions, two per
  multiply-add (a ``Linear(i, o)`` costs ``2 i o``); element-wise layers (batch norm,
  activations, pooling, bias) are not counted, as in the MnasNet and FBNet papers' MACs;
- latency: the median wall time of a forward pass on the model's device, in milliseconds, for
  one image (``latency_ms``) and for a throughput batch (reported as ``throughput``, images per
  second), after a few warm-up passes (cuDNN's algorithm choice, allocator, caches). A model
  whose passes are slow gets fewer of them (:attr:`LatencySettings.budget_ms`), never fewer
  than one warm-up and three timed passes, so a ResNet on a CPU costs seconds, not minutes.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from automl_chars.errors import InvalidConfigError


@dataclass(frozen=True)
class LatencySettings:
    """How latency is measured: ``warmup`` untimed passes, then the median of ``repeats`` timed
    ones, at batch 1 and at ``batch_size`` (the throughput batch). Warm-up stops early once it
    has taken ``budget_ms / 2``, and so do the timed passes (after at least three of them): the
    budget of one batch size, in milliseconds.

    The defaults keep a CNN of the CNN space at about ten milliseconds on an idle CPU core, a few
    percent of one epoch (``benchmarks/cost_overhead.py``).
    """

    warmup: int = 2
    repeats: int = 5
    batch_size: int = 32
    budget_ms: float = 20.0

    def __post_init__(self) -> None:
        for name, low in (("warmup", 0), ("repeats", 1), ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidConfigError(f"LatencySettings.{name} must be a whole number >= "
                                         f"{low}, got {value!r}.")
        if isinstance(self.budget_ms, bool) or not self.budget_ms > 0:
            raise InvalidConfigError(f"LatencySettings.budget_ms must be > 0 (math.inf: no "
                                     f"limit), got {self.budget_ms!r}.")


@dataclass(frozen=True)
class ModelCosts:
    """One model's costs (see the module docstring).

    Attributes:
        params: parameters (all of them).
        flops: FLOPs of one image's forward pass.
        latency_ms: median milliseconds of a forward pass of one image.
        throughput: images per second at the throughput batch (its median pass).
        device: where latency was measured (``cpu`` or ``cuda``).
    """

    params: int
    flops: int
    latency_ms: float
    throughput: float
    device: str = "cpu"

    def metrics(self) -> dict[str, float]:
        """The costs as result keys (:data:`~automl_chars.training.objective.COST_METRICS`)."""
        return {k: v for k, v in asdict(self).items() if k != "device"}


def count_params(model: nn.Module) -> int:
    """Every parameter of ``model`` (trainable or frozen), shared ones counted once."""
    return sum(p.numel() for p in model.parameters())


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without any)."""
    return next(model.parameters(), torch.empty(0)).device


class _EvalMode:
    """``model`` in evaluation mode for the block, its mode restored afterwards."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self) -> nn.Module:
        return self.model.eval()

    def __exit__(self, *exc) -> None:
        self.model.train(self.was_training)


def blank_images(input_shape: tuple[int, int, int], batch: int,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """``batch`` zero images of ``input_shape`` (channels, height, width) on ``device``."""
    if len(tuple(input_shape)) != 3:
        raise InvalidConfigError(f"input_shape must be (channels, height, width), got "
                                 f"{input_shape!r}.")
    return torch.zeros(batch, *input_shape, device=device)


def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """FLOPs of one image's forward pass through ``model`` in evaluation mode, as PyTorch's
    ``FlopCounterMode`` counts them (two per multiply-add of matmuls and convolutions)."""
    x = blank_images(input_shape, 1, model_device(model))
    counter = FlopCounterMode(display=False)
    with _EvalMode(model), torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: Timed passes :func:`time_passes` makes at least (when asked for that many).
MIN_REPEATS = 3


def time_passes(run: Callable[[], object], device: torch.device, warmup: int, repeats: int,
                budget_ms: float = math.inf) -> list[float]:
    """Milliseconds of each timed call of ``run``: ``repeats`` of them after ``warmup`` untimed
    ones (the device synchronised around each, so a GPU's queued work is timed, not its
    launch). Warm-up stops once it took ``budget_ms / 2``, the timed calls once they took as
    long and :data:`MIN_REPEATS` were made."""

    def timed() -> float:
        start = time.perf_counter()
        run()
        _synchronize(device)
        return 1000.0 * (time.perf_counter() - start)

    _synchronize(device)
    spent = 0.0
    for _ in range(warmup):
        spent += timed()
        if spent >= budget_ms / 2:
            break
    times: list[float] = []
    while len(times) < repeats:
        times.append(timed())
        if sum(times) >= budget_ms / 2 and len(times) >= min(MIN_REPEATS, repeats):
            break
    return times


def measure_latency(model: nn.Module, input_shape: tuple[int, int, int], batch: int = 1,
                    latency: LatencySettings = LatencySettings()) -> float:
    """Median milliseconds of a forward pass of ``batch`` images through ``model`` on its own
    device, in evaluation mode without gradients, after warm-up passes (see
    :class:`LatencySettings`; its ``batch_size`` is not used here)."""
    LatencySettings(latency.warmup, latency.repeats, batch, latency.budget_ms)  # checks batch
    device = model_device(model)
    x = blank_images(input_shape, batch, device)
    with _EvalMode(model), torch.inference_mode():
        times = time_passes(lambda: model(x), device, latency.warmup, latency.repeats,
                            latency.budget_ms)
    return statistics.median(times)


def measure_costs(model: nn.Module, input_shape: tuple[int, int, int],
                  latency: LatencySettings = LatencySettings()) -> ModelCosts:
    """Parameters, FLOPs, batch-1 latency and batch throughput of ``model`` on its device."""
    batch_ms = measure_latency(model, input_shape, latency.batch_size, latency)
    return ModelCosts(
        params=count_params(model), flops=count_flops(model, input_shape),
        latency_ms=measure_latency(model, input_shape, 1, latency),
        throughput=1000.0 * latency.batch_size / batch_ms if batch_ms > 0 else float("inf"),
        device=model_device(model).type,
    )


__all__ = ["MIN_REPEATS", "LatencySettings", "ModelCosts",
           "blank_images", "count_flops", "count_params", "measure_costs", "measure_latency",
           "model_device", "time_passes"]
