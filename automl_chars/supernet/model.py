"""The supernet (every subnet of a :class:`SupernetSpace` in one module, weights shared) and the
standalone subnet that :meth:`Supernet.extract` returns.

Batch norm: every sub-block has one ``BatchNorm2d`` shared by all subnets that use it, so its
running statistics after supernet training mix the activations of different subnets and are wrong
for any one of them. Before a subnet is evaluated its statistics are **recalibrated**
(:func:`recalibrate_bn`: reset, then a pass over training images in training mode), as
single-path one-shot NAS and Once-for-All do. Per-subnet statistics would cost memory in
proportion to the number of subnets (thousands) and still be stale for subnets sampled long ago;
recalibration costs one forward pass over a few hundred images per evaluated subnet and is exact
for the weights evaluated. During training, batch norm uses batch statistics, so training is
unaffected.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.models import MODELS
from automl_chars.supernet.space import OPS, Arch, SupernetSpace, arch_to_list, conv_bn_relu

#: Spatial size of the blank input each operation is checked on.
_CHECK_SIDE = 8


def check_op(op: str, channels: int, module: nn.Module) -> None:
    """Raises :class:`InvalidConfigError` unless ``module`` keeps ``(channels, h, w)``."""
    shape = (2, channels, _CHECK_SIDE, _CHECK_SIDE)
    was_training = module.training
    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros(shape))
    except RuntimeError as err:
        raise InvalidConfigError(f"Sub-block operation {op!r} cannot run on {shape[1:]} "
                                 f"inputs: {err}") from None
    finally:
        module.train(was_training)
    if tuple(out.shape) != shape:
        raise InvalidConfigError(
            f"Sub-block operation {op!r} changes the shape of its input {shape[1:]} to "
            f"{tuple(out.shape[1:])}; a NAS sub-block must keep height, width and channels "
            f"(stride 1, padding kernel // 2, as many output as input channels)."
        )


def _make_op(op: str, channels: int) -> nn.Module:
    module = OPS.get(op)(channels)
    check_op(op, channels, module)
    return module


class _Body(nn.Module):
    """The layers every subnet shares: stem, reductions between blocks, pooling, head."""

    def _init_shared(self, space: SupernetSpace, num_classes: int,
                     input_shape: tuple[int, int, int]) -> None:
        self.space = space
        c = space.channels
        self.stem = conv_bn_relu(input_shape[0], c[0], 3, stride=space.stem_stride)
        self.reductions = nn.ModuleList(conv_bn_relu(c[i], c[i + 1], 3, stride=2)
                                        for i in range(len(c) - 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c[-1], num_classes)

    def _run(self, x: torch.Tensor, blocks: Sequence[Sequence[nn.Module]]) -> torch.Tensor:
        x = self.stem(x)
        for b, block in enumerate(blocks):
            for module in block:
                x = module(x)
            if b < len(self.reductions):
                x = self.reductions[b](x)
        return torch.flatten(self.pool(x), 1)


class Supernet(_Body):
    """Every subnet of ``space``: ``forward(x, arch)`` runs one of them.

    Sub-block ``i`` of block ``b`` with operation ``op`` is ``blocks[b][i][op]``, the same
    module in every subnet that uses it (weight sharing). ``features(x, arch)`` and ``head``
    follow the model contract of :mod:`automl_chars.models`; without ``arch`` the largest subnet
    runs.
    """

    def __init__(self, space: SupernetSpace, num_classes: int,
                 input_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self._init_shared(space, num_classes, input_shape)
        self.blocks = nn.ModuleList(
            nn.ModuleList(nn.ModuleDict({op: _make_op(op, c) for op in space.ops})
                          for _ in range(space.max_depth))
            for c in space.channels
        )
        self.num_classes, self.input_shape = num_classes, tuple(input_shape)
        self._checked: dict[Any, Arch] = {}

    def resolve(self, arch: Arch | str | Sequence | None) -> Arch:
        """``arch`` checked against the space (cached: forward runs once per batch)."""
        if arch is None:
            return self.space.largest
        key = arch if isinstance(arch, (str, tuple)) else None
        if key is not None and key in self._checked:
            return self._checked[key]
        resolved = self.space.check(arch)
        if key is not None:
            self._checked[key] = resolved
        return resolved

    def modules_of(self, arch: Arch | str | Sequence | None) -> list[nn.Module]:
        """The NAS sub-block modules ``arch`` runs, block by block."""
        arch = self.resolve(arch)
        return [self.blocks[b][i][op] for b, ops in enumerate(arch) for i, op in enumerate(ops)]

    def features(self, x: torch.Tensor, arch: Arch | str | Sequence | None = None) -> torch.Tensor:
        arch = self.resolve(arch)
        return self._run(x, [[self.blocks[b][i][op] for i, op in enumerate(ops)]
                             for b, ops in enumerate(arch)])

    def forward(self, x: torch.Tensor, arch: Arch | str | Sequence | None = None) -> torch.Tensor:
        return self.head(self.features(x, arch))

    def extract(self, arch: Arch | str | Sequence) -> Subnet:
        """A standalone :class:`Subnet` of ``arch`` holding copies of the supernet's weights and
        batch-norm statistics: same outputs as ``forward(x, arch)``, on the same device."""
        arch = self.resolve(arch)
        sub = Subnet(SubnetSpec(self.space, arch), self.num_classes, self.input_shape)
        sub.stem = copy.deepcopy(self.stem)
        sub.reductions = copy.deepcopy(self.reductions)
        sub.head = copy.deepcopy(self.head)
        sub.stages = nn.ModuleList(
            nn.Sequential(*(copy.deepcopy(self.blocks[b][i][op]) for i, op in enumerate(ops)))
            for b, ops in enumerate(arch)
        )
        return sub.to(next(self.parameters()).device).train(self.training)


@dataclass(frozen=True)
class SubnetSpec:
    """One subnet as a model architecture: its space and its choice (``MODELS["subnet"]``)."""

    space: SupernetSpace
    arch: Arch

    def __post_init__(self) -> None:
        object.__setattr__(self, "space", SupernetSpace.from_dict(self.space))
        object.__setattr__(self, "arch", self.space.check(self.arch))

    @property
    def name(self) -> str:
        return self.space.name(self.arch)

    def to_dict(self) -> dict:
        return {"space": self.space.to_dict(), "arch": arch_to_list(self.arch)}

    @classmethod
    def from_dict(cls, data: SubnetSpec | Mapping) -> SubnetSpec:
        if isinstance(data, SubnetSpec):
            return data
        if not isinstance(data, Mapping) or set(data) != {"space", "arch"}:
            raise InvalidConfigError(
                f"A subnet architecture is {{'space': <supernet space>, 'arch': <subnet>}} "
                f"(SubnetSpec.to_dict()), got {data!r}."
            )
        return cls(SupernetSpace.from_dict(data["space"]), data["arch"])


class Subnet(_Body):
    """One subnet on its own: stem, ``stages[b]`` (block ``b``'s sub-blocks), reductions, head."""

    def __init__(self, spec: SubnetSpec, num_classes: int,
                 input_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self._init_shared(spec.space, num_classes, input_shape)
        self.spec = spec
        self.stages = nn.ModuleList(
            nn.Sequential(*(_make_op(op, c) for op in ops))
            for c, ops in zip(spec.space.channels, spec.arch)
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, self.stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_supernet(space: SupernetSpace | Mapping | None, num_classes: int,
                   input_shape: tuple[int, int, int] = (1, 28, 28)) -> Supernet:
    """``MODELS["supernet"]``: the supernet of ``space`` (or of its ``to_dict()`` form)."""
    return Supernet(SupernetSpace.from_dict(space), num_classes, input_shape)


def build_subnet(spec: SubnetSpec | Mapping, num_classes: int,
                 input_shape: tuple[int, int, int] = (1, 28, 28)) -> Subnet:
    """``MODELS["subnet"]``: a freshly initialised standalone subnet."""
    return Subnet(SubnetSpec.from_dict(spec), num_classes, input_shape)


for _name, _builder in (("supernet", build_supernet), ("subnet", build_subnet)):
    if _name not in MODELS:  # the module may be imported again under another name (runpy)
        MODELS.add(_name, _builder)


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer of ``model``."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Resets ``model``'s batch-norm statistics and recomputes them as exact averages over
    ``images`` (normalised floats) in training mode; returns the model in evaluation mode."""
    layers = batchnorms(model)
    momenta = [bn.momentum for bn in layers]
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    try:
        for i in range(0, len(images), batch_size):
            model(images[i : i + batch_size])
    finally:
        for bn, m in zip(layers, momenta):
            bn.momentum = m
    return model.eval()
