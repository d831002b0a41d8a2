"""The seed-001 CNN: a configuration of the CNN space turned into a ``torch.nn.Module``.

Shape-safe rules keep every sampled configuration buildable: a convolution whose kernel is larger
than its (padded) input gets the smallest padding that keeps a 1x1 output, and a max-pool is
capped at the size of its input (skipped on a 1x1 map). Each adjustment is recorded in
``model.adjustments`` and reported by trials, so results stay explainable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from automl_chars.spaces.cnn import MAX_CONV_LAYERS, MAX_FC_LAYERS

_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


@dataclass(frozen=True)
class ConvLayerSpec:
    channels: int
    kernel_size: int
    padding: int
    stride: int
    batchnorm: bool
    dropout: float  # 0.0 = no dropout
    pool_size: int  # 0 = no max-pool


@dataclass(frozen=True)
class FCLayerSpec:
    units: int
    batchnorm: bool
    dropout: float


@dataclass(frozen=True)
class CNNSpec:
    """The architecture part of a CNN-space configuration."""

    conv: tuple[ConvLayerSpec, ...]
    fc: tuple[FCLayerSpec, ...]
    activation: str

    @classmethod
    def from_config(cls, config: Mapping) -> CNNSpec:
        """Reads the architecture from a (resolved) configuration; inactive keys are ignored."""
        from automl_chars.spaces.cnn import resolve

        c = resolve(dict(config))
        n_conv, n_fc = int(c["n_conv_layers"]), int(c["n_fc_layers"])
        if not 1 <= n_conv <= MAX_CONV_LAYERS or not 0 <= n_fc <= MAX_FC_LAYERS:
            raise ValueError(f"n_conv_layers={n_conv} / n_fc_layers={n_fc} out of range")
        conv = tuple(
            ConvLayerSpec(
                channels=int(c[f"conv{i}_channels"]),
                kernel_size=int(c[f"conv{i}_kernel_size"]),
                padding=int(c[f"conv{i}_padding"]),
                stride=int(c[f"conv{i}_stride"]),
                batchnorm=bool(c[f"conv{i}_batchnorm"]),
                dropout=float(c[f"conv{i}_dropout_rate"]) if c[f"conv{i}_dropout"] else 0.0,
                pool_size=int(c[f"conv{i}_pool_size"]) if c[f"conv{i}_maxpool"] else 0,
            )
            for i in range(1, n_conv + 1)
        )
        fc = tuple(
            FCLayerSpec(
                units=int(c[f"fc{j}_units"]),
                batchnorm=bool(c[f"fc{j}_batchnorm"]),
                dropout=float(c[f"fc{j}_dropout_rate"]) if c[f"fc{j}_dropout"] else 0.0,
            )
            for j in range(1, n_fc + 1)
        )
        return cls(conv=conv, fc=fc, activation=str(c["activation"]))


def _conv_out(size: int, kernel: int, padding: int, stride: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class CNN(nn.Module):
    """``features`` (conv blocks) -> flatten -> ``classifier`` (FC blocks and the output layer)."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, adjustments: list[str]):
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.adjustments = adjustments

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def build_cnn(
    config: Mapping | CNNSpec, num_classes: int, input_shape: tuple[int, int, int] = (1, 28, 28)
) -> CNN:
    """Builds the CNN for ``config`` (a CNN-space configuration, or a :class:`CNNSpec`)."""
    spec = config if isinstance(config, CNNSpec) else CNNSpec.from_config(config)
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
    width = channels * h * w
    head: list[nn.Module] = []
    for layer in spec.fc:
        head.append(nn.Linear(width, layer.units, bias=not layer.batchnorm))
        if layer.batchnorm:
            head.append(nn.BatchNorm1d(layer.units))
        head.append(act())
        if layer.dropout:
            head.append(nn.Dropout(layer.dropout))
        width = layer.units
    head.append(nn.Linear(width, num_classes))
    return CNN(nn.Sequential(*blocks), nn.Sequential(*head), adjustments)


def num_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
