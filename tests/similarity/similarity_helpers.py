"""Helpers of the similarity tests: synthetic domains and tiny CNNs (imported by conftest and
by the tests; a module name of its own so that no other conftest can shadow it)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from support import one_thread  # noqa: F401  (re-exported for this folder's tests)

DOMAINS = ("hbars", "vbars", "boxes")
SAMPLE = 80  # images per source view and per target sample


def draw_domain(domain: str, per_class: int = 30, num_classes: int = 4, seed: int = 0,
                weights: tuple[float, ...] | None = None):
    """A learnable toy domain as a Dataset; ``weights`` makes the class sizes unequal."""
    from automl_chars.data import from_arrays

    rng = np.random.default_rng([seed, DOMAINS.index(domain)])
    counts = [per_class] * num_classes if weights is None else [
        max(2, int(round(per_class * num_classes * w))) for w in weights]

    def images(counts):
        y = np.repeat(np.arange(num_classes), counts)
        x = rng.integers(0, 60, size=(len(y), 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            p = 3 + 6 * int(c) + int(rng.integers(-1, 2))
            lo, hi = 3 + int(rng.integers(0, 3)), 25 - int(rng.integers(0, 3))
            if domain == "hbars":
                x[i, p : p + 3, lo:hi] = 230
            elif domain == "vbars":
                x[i, lo:hi, p : p + 3] = 230
            else:  # a square outline whose size is the class
                s = 8 + 4 * int(c)
                r0 = c0 = 14 - s // 2 + int(rng.integers(-1, 2))
                x[i, r0 : r0 + s, c0 : c0 + 2] = x[i, r0 : r0 + s, c0 + s - 2 : c0 + s] = 230
                x[i, r0 : r0 + 2, c0 : c0 + s] = x[i, r0 + s - 2 : r0 + s, c0 : c0 + s] = 230
        return x, y

    xtr, ytr = images(counts)
    xte, yte = images([5] * num_classes)
    return from_arrays(domain, xtr, ytr, xte, yte, seed=seed)


def _spec():
    from automl_chars.models import CNNSpec, ConvLayerSpec, FCLayerSpec

    return CNNSpec(conv=(ConvLayerSpec(6, 3, 1, 1, True, 0.0, 2),
                         ConvLayerSpec(8, 3, 1, 1, True, 0.0, 2)),
                   fc=(FCLayerSpec(16, False, 0.0),))


#: The tiny CNN's architecture.
SPEC = _spec()


def tiny_cnn(num_classes: int, seed: int = 0):
    from automl_chars.models import build_model

    torch.manual_seed(seed)
    return build_model("cnn", SPEC, num_classes)


def train(dataset, steps: int = 150, seed: int = 0):
    """A tiny CNN trained on ``dataset`` the way the training loop feeds it (normalised)."""
    from automl_chars.training.loop import pixel_mean_std

    model = tiny_cnn(dataset.num_classes, seed)
    mean, std = pixel_mean_std(dataset.x_train)
    x = (dataset.x_train.float() / 255 - mean) / std
    y = dataset.y_train
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (32,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
