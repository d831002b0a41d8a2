"""DARTS over a supernet space (Liu et al., 2019, first order), plain PyTorch.

The supernet's weights stay those of :class:`~automl_chars.supernet.model.Supernet` (so a DARTS
checkpoint is a supernet checkpoint, and :meth:`Supernet.extract` gives any subnet); DARTS adds
**architecture parameters** (:class:`ArchParameters`): per NAS block, logits over its depths,
and per sub-block position, logits over the operations. :func:`mixed_forward` runs every
sub-block as a **mixed operation** (the softmax-weighted sum of its operations) and every block
as a **mixed depth** (the softmax-weighted sum of its outputs after each allowed depth).

One round of :func:`darts_epoch` is DARTS's first-order bilevel step: the architecture
parameters take an Adam step on the loss of a **validation** batch (gradients reach them only,
never the weights), then the weights take the trial's optimizer step on a **training** batch
(the architecture weights detached, so no training batch reaches them). The discrete
architecture is the argmax per choice (:meth:`ArchParameters.derive`: each block's depth, then
each of its sub-blocks' operation).

:class:`ArchWeights` is the saved form of a search's logits (``arch_weights.json``), which a
warm-started DARTS on another dataset starts from.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from automl_chars.errors import (
    AutomlCharsError,
    DamagedFileError,
    DamagedFileWarning,
    InvalidConfigError,
)
from automl_chars.layout import read_json, write_json
from automl_chars.supernet.model import Supernet
from automl_chars.supernet.space import Arch, SupernetSpace
from automl_chars.supernet.training import round_epoch
from automl_chars.training import AugmentSettings, DeviceData, EpochStats
from automl_chars.training.bsguard import Penalty

#: The file a DARTS search's architecture weights are saved in (see :class:`ArchWeights`).
ARCH_WEIGHTS_FILE = "arch_weights.json"
#: Version of :data:`ARCH_WEIGHTS_FILE`'s layout; reading another version is refused.
ARCH_WEIGHTS_FORMAT = 1
ARCH_WEIGHTS_REMEDY = ("Run the DARTS search again (automl-chars supernet --sampler darts with "
                       "the same --name and --resume rewrites it from its finished trial).")


@dataclass(frozen=True)
class DartsSettings:
    """The architecture parameters' optimiser: Adam with DARTS's betas (0.5, 0.999).

    Attributes:
        arch_learning_rate: Adam's learning rate (DARTS: 3e-4 for 50 epochs; larger for
            the few epochs of a small search).
        arch_weight_decay: L2 on the logits (DARTS: 1e-3), pulling them towards uniform.
    """

    arch_learning_rate: float = 3e-3
    arch_weight_decay: float = 1e-3

    def __post_init__(self) -> None:
        if not (self.arch_learning_rate > 0 and math.isfinite(self.arch_learning_rate)) or \
                not self.arch_weight_decay >= 0:
            raise InvalidConfigError(
                f"arch_learning_rate must be > 0 (got {self.arch_learning_rate!r}) and "
                f"arch_weight_decay >= 0 (got {self.arch_weight_decay!r}).")

    def make_optimizer(self, arch: ArchParameters) -> torch.optim.Adam:
        return torch.optim.Adam(arch.parameters(), lr=self.arch_learning_rate, betas=(0.5, 0.999),
                                weight_decay=self.arch_weight_decay)


class ArchParameters(nn.Module):
    """DARTS's architecture logits over ``space``: ``depth[b]`` over block ``b``'s depths
    (``space.depths``), ``op(b, i)`` over the operations of sub-block ``i`` of block ``b``
    (``space.ops``). All zeros (uniform) unless ``init`` (an :class:`ArchWeights` over the same
    choices) gives their starting values: a warm start."""

    def __init__(self, space: SupernetSpace, init: ArchWeights | None = None):
        super().__init__()
        self.space = space
        self.depth = nn.ParameterList(nn.Parameter(torch.zeros(len(space.depths)))
                                      for _ in space.channels)
        self.ops = nn.ParameterList(nn.Parameter(torch.zeros(len(space.ops)))
                                    for _ in range(space.num_blocks * space.max_depth))
        if init is not None:
            self.load_logits(init)

    def op(self, block: int, position: int) -> nn.Parameter:
        return self.ops[block * self.space.max_depth + position]

    def probabilities(self, detach: bool = False) -> tuple[list[torch.Tensor],
                                                           list[list[torch.Tensor]]]:
        """Softmax of every choice: per block its depths', per block and position its ops'."""
        def soft(p: torch.Tensor) -> torch.Tensor:
            return F.softmax(p.detach() if detach else p, dim=0)

        s = self.space
        return ([soft(p) for p in self.depth],
                [[soft(self.op(b, i)) for i in range(s.max_depth)] for b in range(s.num_blocks)])

    def derive(self) -> Arch:
        """The discrete architecture: per block the most weighted depth, then per sub-block it
        runs the most weighted operation (the first among equals)."""
        s = self.space
        out = []
        for b in range(s.num_blocks):
            d = s.depths[int(torch.argmax(self.depth[b].detach()))]
            out.append(tuple(s.ops[int(torch.argmax(self.op(b, i).detach()))] for i in range(d)))
        return tuple(out)

    @torch.no_grad()
    def log_probs(self) -> torch.Tensor:
        """Each subnet's log-probability under the softmaxes (a block's depth, then its
        sub-blocks' operations; blocks independent), in ``space.archs`` order: a full ranking
        of the space."""
        s = self.space
        depth, ops = self.probabilities(detach=True)
        per_block = []
        for b in range(s.num_blocks):
            logs = [math.log(float(depth[b][s.depths.index(len(c))]))
                    + sum(math.log(float(ops[b][i][s.ops.index(op)])) for i, op in enumerate(c))
                    for c in s.block_choices()]
            per_block.append(torch.tensor(logs, dtype=torch.float64))
        total = per_block[0]
        for logs in per_block[1:]:  # itertools.product order: the last block varies fastest
            total = (total[:, None] + logs[None, :]).reshape(-1)
        return total

    def load_logits(self, weights: ArchWeights) -> None:
        """Sets the logits to ``weights``' (same blocks, depths and operations)."""
        weights.check_fits(self.space)
        with torch.no_grad():
            for p, values in zip(self.depth, weights.depth):
                p.copy_(torch.tensor(values, dtype=p.dtype))
            for b, block in enumerate(weights.ops):
                for i, values in enumerate(block):
                    self.op(b, i).copy_(torch.tensor(values, dtype=torch.float32))

    def logits(self) -> tuple[list[list[float]], list[list[list[float]]]]:
        """The logits as plain lists: ``(depth[b], ops[b][i])``."""
        s = self.space
        return ([p.detach().cpu().tolist() for p in self.depth],
                [[self.op(b, i).detach().cpu().tolist() for i in range(s.max_depth)]
                 for b in range(s.num_blocks)])


def mixed_forward(supernet: Supernet, arch: ArchParameters, x: torch.Tensor,
                  detach_arch: bool = False) -> torch.Tensor:
    """The logits of the continuous relaxation: every sub-block the softmax-weighted sum of its
    operations, every block the softmax-weighted sum of its outputs at each allowed depth.
    ``detach_arch``: the architecture weights as constants (a weight step)."""
    s = supernet.space
    depth_w, op_w = arch.probabilities(detach=detach_arch)
    x = supernet.stem(x)
    for b in range(s.num_blocks):
        h, out = x, 0
        for i in range(s.max_depth):
            ops = supernet.blocks[b][i]
            h = sum(w * ops[op](h) for w, op in zip(op_w[b][i], s.ops))
            if i + 1 in s.depths:
                out = out + depth_w[b][s.depths.index(i + 1)] * h
        x = out
        if b < len(supernet.reductions):
            x = supernet.reductions[b](x)
    return supernet.head(torch.flatten(supernet.pool(x), 1))


def val_batch(val_data: DeviceData, size: int, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """A random validation batch (``size`` images without replacement, drawn from
    ``generator``): what an architecture step learns from."""
    n = len(val_data)
    idx = torch.randperm(n, generator=generator, device=generator.device)[: min(size, n)]
    return val_data.batch(idx.to(val_data.x.device))


def arch_step(supernet: Supernet, arch: ArchParameters, arch_optimizer: torch.optim.Optimizer,
              x: torch.Tensor, y: torch.Tensor) -> float:
    """One first-order architecture step on a validation batch; only the architecture
    parameters receive gradients (``autograd.grad``: the weights' ``.grad`` are untouched)."""
    loss = F.cross_entropy(mixed_forward(supernet, arch, x), y)
    params = list(arch.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for p, g in zip(params, grads):
        p.grad = torch.zeros_like(p) if g is None else g
    arch_optimizer.step()
    return float(loss.detach())


def darts_epoch(
    supernet: Supernet,
    arch: ArchParameters,
    optimizer: torch.optim.Optimizer,
    arch_optimizer: torch.optim.Optimizer,
    data: DeviceData,
    val_data: DeviceData,
    batch_size: int,
    generator: torch.Generator,
    augment: AugmentSettings = AugmentSettings(),
    penalty: Penalty | None = None,
) -> EpochStats:
    """One pass over ``data``; each batch is a round: an architecture step on a random
    validation batch of the same size, then a weight step on the training batch. Statistics
    (loss, top-1) are the mixed network's on the training batches."""
    arch.train()

    def train_round(x: torch.Tensor, y: torch.Tensor):
        if len(val_data) >= 2:
            arch_step(supernet, arch, arch_optimizer, *val_batch(val_data, batch_size, generator))
        optimizer.zero_grad(set_to_none=True)  # the architecture step's weight gradients too
        out = mixed_forward(supernet, arch, x, detach_arch=True)
        loss = F.cross_entropy(out, y)
        loss.backward()
        return loss.detach() * len(y), (out.detach().argmax(1) == y).sum(), None

    return round_epoch(supernet, optimizer, data, batch_size, generator, augment, penalty,
                       train_round, "the DARTS network")


def _same_choices(a: SupernetSpace, b: SupernetSpace) -> bool:
    return (a.num_blocks, a.depths, a.ops) == (b.num_blocks, b.depths, b.ops)


@dataclass(frozen=True)
class ArchWeights:
    """A DARTS search's architecture logits and where they come from (``arch_weights.json``).

    Attributes:
        space: the supernet space searched.
        depth: per block, the logits over ``space.depths``.
        ops: per block and sub-block position, the logits over ``space.ops``.
        dataset, fingerprint: the dataset searched (name, ``Dataset.fingerprint()``).
        epochs: epochs the search ran.
        history: one row per epoch: ``epoch``, ``derived`` (the argmax architecture then),
            ``val_acc`` (its validation top-1).
        meta: anything else (seed, warm start source, run folder).
        path: the file it was read from (None if not saved).
    """

    space: SupernetSpace
    depth: tuple[tuple[float, ...], ...]
    ops: tuple[tuple[tuple[float, ...], ...], ...]
    dataset: str = ""
    fingerprint: str = ""
    epochs: int = 0
    history: tuple[dict, ...] = ()
    meta: dict = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "space", SupernetSpace.from_dict(self.space))
        depth = tuple(tuple(float(v) for v in row) for row in self.depth)
        ops = tuple(tuple(tuple(float(v) for v in row) for row in block) for block in self.ops)
        s = self.space
        ok = (len(depth) == s.num_blocks and all(len(r) == len(s.depths) for r in depth)
              and len(ops) == s.num_blocks and all(len(blk) == s.max_depth for blk in ops)
              and all(len(r) == len(s.ops) for blk in ops for r in blk))
        if not ok:
            raise InvalidConfigError(
                f"Architecture weights do not fit their space ({s.num_blocks} blocks, depths "
                f"{list(s.depths)}, ops {list(s.ops)}): need depth logits "
                f"[{s.num_blocks} x {len(s.depths)}] and op logits [{s.num_blocks} x "
                f"{s.max_depth} x {len(s.ops)}].")
        if not all(math.isfinite(v) for r in depth for v in r) or \
                not all(math.isfinite(v) for blk in ops for r in blk for v in r):
            raise InvalidConfigError("Architecture weights must be finite numbers.")
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "history", tuple(dict(h) for h in self.history))

    @classmethod
    def of(cls, arch: ArchParameters, **fields: Any) -> ArchWeights:
        """The current logits of ``arch`` (and ``fields``: dataset, epochs, history, meta)."""
        depth, ops = arch.logits()
        return cls(arch.space, depth, ops, **fields)

    @property
    def derived(self) -> Arch:
        """The argmax architecture (see :meth:`ArchParameters.derive`)."""
        return ArchParameters(self.space, self).derive()

    @property
    def derived_name(self) -> str:
        return self.space.name(self.derived)

    def check_fits(self, space: SupernetSpace) -> None:
        """Raises unless ``space`` has the same choices (blocks, depths, operations)."""
        if not _same_choices(self.space, space):
            raise InvalidConfigError(
                f"Architecture weights over {self.space.num_blocks} blocks, depths "
                f"{list(self.space.depths)}, ops {list(self.space.ops)}"
                f"{f' (from {self.path})' if self.path else ''} do not fit a space of "
                f"{space.num_blocks} blocks, depths {list(space.depths)}, ops "
                f"{list(space.ops)}: a warm start needs a search over the same choices.")

    def fits(self, space: SupernetSpace) -> bool:
        return _same_choices(self.space, space)

    def to_dict(self) -> dict:
        return {"format": ARCH_WEIGHTS_FORMAT, "space": self.space.to_dict(),
                "depth": [list(r) for r in self.depth],
                "ops": [[list(r) for r in blk] for blk in self.ops],
                "derived": self.derived_name, "dataset": self.dataset,
                "fingerprint": self.fingerprint, "epochs": self.epochs,
                "history": [dict(h) for h in self.history], "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | None = None) -> ArchWeights:
        if data.get("format") != ARCH_WEIGHTS_FORMAT:
            raise InvalidConfigError(f"Architecture weights of format {data.get('format')!r}; "
                                     f"this version reads format {ARCH_WEIGHTS_FORMAT}.")
        return cls(data["space"], data["depth"], data["ops"], str(data.get("dataset", "")),
                   str(data.get("fingerprint", "")), int(data.get("epochs", 0)),
                   tuple(data.get("history", ())), dict(data.get("meta", {})), path)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes :data:`ARCH_WEIGHTS_FILE` into the folder ``path`` (atomically)."""
        folder = Path(path).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / ARCH_WEIGHTS_FILE, self.to_dict())
        return folder / ARCH_WEIGHTS_FILE

    @classmethod
    def load(cls, path: str | os.PathLike) -> ArchWeights:
        """Reads ``arch_weights.json`` (or the folder holding it); a damaged file raises
        :class:`~automl_chars.errors.DamagedFileError` naming it."""
        path = Path(path).expanduser().resolve()
        if path.is_dir():
            path = path / ARCH_WEIGHTS_FILE
        if not path.exists():
            raise InvalidConfigError(f"No architecture weights at {path}: a DARTS search writes "
                                     f"{ARCH_WEIGHTS_FILE} into its folder.")
        try:
            return cls.from_dict(read_json(path, ARCH_WEIGHTS_REMEDY), path)
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidConfigError(f"{path} holds no valid architecture weights ({err}). "
                                     f"{ARCH_WEIGHTS_REMEDY}") from None


def saved_arch_weights(root: str | os.PathLike) -> list[ArchWeights]:
    """Every DARTS result saved under the results root ``root``: the
    ``<root>/<experiment>/<folder>/arch_weights.json`` files (where
    :func:`~automl_chars.supernet.run_supernet` and ``run_darts`` write them), newest first.
    An unreadable one is skipped with a warning naming it (it cannot warm-start anything)."""
    root = Path(root).expanduser()
    found = []
    for path in root.glob(f"*/*/{ARCH_WEIGHTS_FILE}"):
        try:
            found.append((path.stat().st_mtime, ArchWeights.load(path)))
        except (AutomlCharsError, OSError, ValueError) as err:
            category = DamagedFileWarning if isinstance(err, DamagedFileError) else UserWarning
            warnings.warn(f"Skipping the DARTS result {path}: {err}", category, stacklevel=2)
    return [w for _, w in sorted(found, key=lambda t: (-t[0], str(t[1].path)))]


__all__ = ["ARCH_WEIGHTS_FILE", "ArchParameters", "ArchWeights", "DartsSettings", "arch_step",
           "darts_epoch", "mixed_forward", "saved_arch_weights", "val_batch"]
