"""The seed-001 CNN: a :class:`CNNSpec` (layers as plain values) turned into a ``torch.nn.Module``.

This module knows nothing of the CNN search space: :class:`~automl_chars.trainables.CNNTrainable`
turns a configuration into a :class:`CNNSpec`, and checkpoints store the spec as a dict
(:meth:`CNNSpec.to_dict`), so a saved model is rebuilt without the space.

Shape-safe rules keep every sampled configuration buildable: a convolution whose kernel is larger
than its (padded) input gets the smallest padding that keeps a 1x1 output, and a max-pool is
capped at the size of its input (skipped on a 1x1 map). Each adjustment is recorded in
``model.adjustments`` and reported by trials, so results stay explainable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn

from automl_chars.errors import InvalidConfigError

_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
#: Activation names the CNN and the MLP take.
ACTIVATION_NAMES = tuple(_ACTIVATIONS)


@dataclass(frozen=True)
class ConvLayerSpec:
    channels: int
    kernel_size: int
    padding: int
    stride: int
    batchnorm: bool
    dropout: float  # 0.0 = no dropout
    pool_size: int  # 0 = no max-pool

    def __post_init__(self) -> None:
        _check(self.channels >= 1 and self.kernel_size >= 1 and self.stride >= 1
               and self.padding >= 0 and self.pool_size >= 0 and 0.0 <= self.dropout < 1.0,
               f"invalid convolution layer {self}: need channels, kernel_size, stride >= 1, "
               f"padding, pool_size >= 0 and 0 <= dropout < 1")


@dataclass(frozen=True)
class FCLayerSpec:
    units: int
    batchnorm: bool
    dropout: float

    def __post_init__(self) -> None:
        _check(self.units >= 1 and 0.0 <= self.dropout < 1.0,
               f"invalid fully connected layer {self}: need units >= 1 and 0 <= dropout < 1")


@dataclass(frozen=True)
class CNNSpec:
    """The CNN's architecture: convolution blocks, fully connected blocks, activation."""

    conv: tuple[ConvLayerSpec, ...]
    fc: tuple[FCLayerSpec, ...] = ()
    activation: str = "relu"

    def __post_init__(self) -> None:
        _check(len(self.conv) >= 1, "a CNN needs at least one convolution layer")
        _check(self.activation in _ACTIVATIONS,
               f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")

    def to_dict(self) -> dict:
        """Plain values (what checkpoints store); :meth:`from_dict` reads them back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> CNNSpec:
        if not {"conv", "fc", "activation"} <= set(data):
            raise InvalidConfigError(
                "build_cnn takes a CNNSpec or its to_dict() form, not a search-space "
                "configuration; for a CNN-space configuration use "
                "automl_chars.trainables.cnn_settings(config).arch."
            )
        return cls(conv=tuple(ConvLayerSpec(**c) for c in data["conv"]),
                   fc=tuple(FCLayerSpec(**f) for f in data["fc"]), activation=data["activation"])


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidConfigError(message)


def _conv_out(size: int, kernel: int, padding: int, stride: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class CNN(nn.Module):
    """``conv`` (conv blocks) -> flatten -> ``fc`` (hidden FC blocks) -> ``head`` (output layer).

    ``features(x)`` is everything before ``head`` (see :mod:`automl_chars.models`).
    """

    def __init__(self, conv: nn.Sequential, fc: nn.Sequential, head: nn.Linear,
                 adjustments: list[str]):
        super().__init__()
        self.conv = conv
        self.fc = fc
        self.head = head
        self.adjustments = adjustments

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.conv(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_cnn(
    spec: CNNSpec | Mapping, num_classes: int, input_shape: tuple[int, int, int] = (1, 28, 28)
) -> CNN:
    """Builds the CNN of ``spec`` (or of its :meth:`CNNSpec.to_dict` form)."""
    spec = spec if isinstance(spec, CNNSpec) else CNNSpec.from_dict(spec)
    act = _ACTIVATIONS[spec.activation]
    channels, h, w = input_shape
    adjustments: list[str] = []
    blocks: list[nn.Module] = []
    for i, layer in enumerate(spec.conv, start=1):
        pad = layer.padding
        need = max(0, -(-(layer.kernel_size - min(h, w)) // 2))  # ceil((k - size) / 2)
        if need > pad:
            adjustments.append(f"conv{i}: padding {pad} -> {need} to keep a 1x1 output")
            pad = need
        blocks.append(nn.Conv2d(channels, layer.channels, layer.kernel_size, layer.stride, pad,
                                bias=not layer.batchnorm))
        h, w = _conv_out(h, layer.kernel_size, pad, layer.stride), _conv_out(w, layer.kernel_size, pad, layer.stride)
        channels = layer.channels
        if layer.batchnorm:
            blocks.append(nn.BatchNorm2d(channels))
        blocks.append(act())
        if layer.dropout:
            blocks.append(nn.Dropout2d(layer.dropout))
        if layer.pool_size:
            pool = min(layer.pool_size, h, w)
            if pool < layer.pool_size:
                adjustments.append(f"conv{i}: max-pool {layer.pool_size} -> {pool if pool > 1 else 'skipped'} on a {h}x{w} map")
            if pool > 1:
                blocks.append(nn.MaxPool2d(pool))
                h, w = h // pool, w // pool
    fc, width = fc_blocks(channels * h * w, spec.fc, spec.activation)
    return CNN(nn.Sequential(*blocks), fc, nn.Linear(width, num_classes), adjustments)


def fc_blocks(width: int, layers: tuple[FCLayerSpec, ...],
              activation: str) -> tuple[nn.Sequential, int]:
    """``[Linear -> BatchNorm? -> activation -> Dropout?]`` per layer on ``width`` inputs, and the
    width it ends with (the CNN's hidden layers and the MLP's)."""
    act = _ACTIVATIONS[activation]
    fc: list[nn.Module] = []
    for layer in layers:
        fc.append(nn.Linear(width, layer.units, bias=not layer.batchnorm))
        if layer.batchnorm:
            fc.append(nn.BatchNorm1d(layer.units))
        fc.append(act())
        if layer.dropout:
            fc.append(nn.Dropout(layer.dropout))
        width = layer.units
    return nn.Sequential(*fc), width


def num_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
