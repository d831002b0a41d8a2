"""How hard is a ``glyphs-*`` domain? Trains three plain models and prints their test accuracy.

The built-in glyph datasets should separate tuned from untuned models: a linear model on pixels
and an untuned tiny CNN should stay clearly below a small, sensibly trained CNN, which in turn
should land well above chance without saturating. Runs on CPU in about a minute::

    python benchmarks/glyphs_difficulty.py [--domain glyphs-latin-upper] [--samples 200]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from automl_chars.data import load


def tiny_cnn(num_classes: int) -> nn.Module:
    """One 5x5 convolution, global average pooling, a linear head: an untuned baseline."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, num_classes),
    )


def small_cnn(num_classes: int) -> nn.Module:
    """Two conv-BN-ReLU-pool blocks and an MLP head: a sensible, untuned-but-decent model."""

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(1, 32), *block(32, 64), nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, num_classes),
    )


def logistic(num_classes: int) -> nn.Module:
    """Multinomial logistic regression on raw pixels."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, num_classes))


def train_and_test(model: nn.Module, opt: torch.optim.Optimizer, data, epochs: int,
                   batch_size: int = 64, seed: int = 0) -> float:
    """Trains ``model`` for ``epochs`` and returns its test accuracy."""
    x, y = data.split("train")
    x = x.float() / 255.0
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    xt, yt = data.split("test")
    with torch.no_grad():
        pred = model(xt.float() / 255.0).argmax(1)
    return float((pred == yt).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domain", default="glyphs-latin-upper")
    ap.add_argument("--samples", type=int, default=200, help="training images per class")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default=None, help="data root (default: AUTOML_CHARS_DATA)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    data = load(args.domain, root=args.root, samples_per_class=args.samples, seed=args.seed)
    print(f"{data!r} loaded in {time.perf_counter() - t0:.1f}s; chance = {1 / data.num_classes:.3f}")

    c = data.num_classes
    runs = {
        "(a) tiny CNN, SGD lr 1e-3, 2 epochs": (tiny_cnn, torch.optim.SGD, 2),
        "(b) 2-conv BN CNN, Adam lr 1e-3, 5 epochs": (small_cnn, torch.optim.Adam, 5),
        "(c) logistic regression, Adam lr 1e-3, 10 epochs": (logistic, torch.optim.Adam, 10),
    }
    for label, (build, optim, epochs) in runs.items():
        torch.manual_seed(args.seed)  # same initialisation on every run of the script
        model = build(c)
        t = time.perf_counter()
        acc = train_and_test(model, optim(model.parameters(), lr=1e-3), data, epochs, seed=args.seed)
        print(f"{label:<50} test acc {acc:.3f}  ({time.perf_counter() - t:.1f}s)")


if __name__ == "__main__":
    main()
