"""BSGuard (seed 000): a training step that survives running out of memory.

When a step runs out of memory (``torch.cuda.OutOfMemoryError``, or the CPU allocator's
failure), :func:`guarded_step` frees what it can, halves the micro-batch and redoes the step from
scratch: the batch is split into micro-batches whose gradients are accumulated, each scaled by its
share of the batch, so the step's gradient (and so the effective batch size and the learning
rate) stay those of the whole batch. Training goes on without a restart; the smaller micro-batch
is kept for the rest of the trial (memory only gets scarcer as the trial's neighbours grow).
Every shrink is recorded; below the floor (``min_micro_batch``) the trial fails with the reason.

Layers that use batch statistics (BatchNorm) see micro-batches, not the batch: their
normalisation, and so the gradient, differ from the whole batch's. For every other layer the
accumulated gradient equals the whole batch's (up to floating-point rounding).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from automl_chars.errors import InvalidConfigError, TrialFailure

#: The message of PyTorch's CPU allocator when an allocation fails (a ``RuntimeError``).
CPU_ALLOCATOR_FAILURE = "DefaultCPUAllocator: can't allocate memory"

#: ``penalty(model) -> scalar tensor`` added to a step's loss (a regularizer on the weights).
Penalty = Callable[[nn.Module], torch.Tensor]


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation failure: CUDA's, the CPU allocator's or Python's."""
    if isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and (CPU_ALLOCATOR_FAILURE in text
                                              or "CUDA out of memory" in text)


def free_memory(device: torch.device) -> None:
    """Releases what a failed step left behind: unreachable tensors, and on a GPU the caching
    allocator's free blocks (so the retry, and the trial's neighbours, can have them)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


@dataclass
class BatchGuard:
    """The state of BSGuard over a trial: the current micro-batch size and every shrink.

    Attributes:
        min_micro_batch: the floor; a step that runs out of memory with micro-batches of this
            size (or that would need smaller ones) fails the trial.
        micro_batch: the current micro-batch size; 0 until the first shrink (whole batches).
        shrinks: one record per shrink: ``step`` (steps done before it), ``batch``, ``from`` and
            ``to`` (micro-batch sizes), ``error`` (the allocator's message, first line).
        steps: training steps completed under this guard.
    """

    min_micro_batch: int = 1
    micro_batch: int = 0
    shrinks: list[dict] = field(default_factory=list)
    steps: int = 0

    def __post_init__(self) -> None:
        floor = self.min_micro_batch
        if isinstance(floor, bool) or not isinstance(floor, int) or floor < 1:
            raise InvalidConfigError(f"min_micro_batch must be a whole number >= 1, got "
                                     f"{self.min_micro_batch!r}.")

    def size_for(self, batch: int) -> int:
        """The micro-batch size a batch of ``batch`` samples is split into."""
        return batch if self.micro_batch == 0 else min(batch, self.micro_batch)

    def shrink(self, batch: int, error: str) -> None:
        """Halves the micro-batch after running out of memory on a batch of ``batch`` samples;
        raises :class:`TrialFailure` when the half is below the floor."""
        size = self.size_for(batch)
        half = size // 2
        if half < self.min_micro_batch:
            raise TrialFailure(
                f"out of memory with micro-batches of {size} (batch {batch}), and BSGuard's "
                f"floor is min_micro_batch={self.min_micro_batch} after {len(self.shrinks)} "
                f"shrink(s): {error}"
            )
        self.shrinks.append({"step": self.steps, "batch": batch, "from": size, "to": half,
                             "error": error})
        self.micro_batch = half

    def describe(self) -> str:
        """The shrinks as one line, e.g. ``"step 12: 128->64; step 40: 64->32"``."""
        return "; ".join(f"step {s['step']}: {s['from']}->{s['to']}" for s in self.shrinks)

    def state_dict(self) -> dict:
        return {"micro_batch": self.micro_batch, "shrinks": [dict(s) for s in self.shrinks],
                "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.micro_batch = int(state["micro_batch"])
        self.shrinks = [dict(s) for s in state["shrinks"]]
        self.steps = int(state["steps"])


def guarded_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                 y: torch.Tensor, guard: BatchGuard | None = None,
                 penalty: Penalty | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the batch ``(x, y)``: cross-entropy (plus ``penalty(model)``),
    backward, step. Returns the batch's mean cross-entropy and its outputs, both detached.

    With a ``guard``, running out of memory halves the micro-batch and redoes the step (see
    the module's docstring); without one, the error propagates.
    """
    while True:
        try:
            done = _step(model, optimizer, x, y, guard.size_for(len(y)) if guard else len(y),
                         penalty)
            if guard is not None:
                guard.steps += 1
            return done
        except (RuntimeError, MemoryError) as err:
            if guard is None or not is_out_of_memory(err):
                raise
            error = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        # Out of the except block: the failed attempt's frames (and their tensors) are gone.
        optimizer.zero_grad(set_to_none=True)
        free_memory(x.device)
        guard.shrink(len(y), error)
        # ...and the step is redone from scratch with smaller micro-batches.


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          micro: int, penalty: Penalty | None) -> tuple[torch.Tensor, torch.Tensor]:
    optimizer.zero_grad(set_to_none=True)
    if micro >= len(y):  # the whole batch at once
        out = model(x)
        loss = F.cross_entropy(out, y)
        (loss if penalty is None else loss + penalty(model)).backward()
        optimizer.step()
        return loss.detach(), out.detach()
    outs, loss_sum = [], torch.zeros((), device=x.device)
    for i in range(0, len(y), micro):
        out = model(x[i : i + micro])
        # Each micro-batch's summed loss over the whole batch's size: the gradients add up to
        # the mean loss's gradient over the batch.
        part = F.cross_entropy(out, y[i : i + micro], reduction="sum") / len(y)
        part.backward()
        loss_sum += part.detach()
        outs.append(out.detach())
        del out, part
    if penalty is not None:
        penalty(model).backward()
    optimizer.step()
    return loss_sum, torch.cat(outs)


__all__ = ["CPU_ALLOCATOR_FAILURE", "BatchGuard", "Penalty", "free_memory", "guarded_step",
           "is_out_of_memory"]
