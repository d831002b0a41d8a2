"""One epoch of ``CNNTrainable`` against a bare PyTorch loop on the same data, model and optimizer.

What is timed, per repetition (both on the same device, ``cuda`` if available, else ``cpu``):

* **trainable**: ``CNNTrainable.train()`` with the ``epochs`` fidelity, i.e. one ``step()`` (a
  full training epoch through :func:`automl_chars.training.train_epoch`, then the validation pass
  through :func:`automl_chars.training.evaluate`) plus Ray's per-iteration bookkeeping in
  ``Trainable.train()`` (result dict, counters; well under a millisecond). ``train()`` rather than
  ``step()`` because it is exactly what a Tune actor runs for one budget unit; with ``--step`` the
  table also shows ``step()`` alone, timed the same way.
* **bare**: the loop anybody would write by hand over in-memory tensors: the training images
  converted to a normalised ``float32`` tensor on the device once, beforehand; per epoch a
  ``randperm``, then slice -> forward -> cross-entropy -> ``zero_grad`` -> backward -> ``step``;
  then the same validation pass (eval mode, no grad, batches of 2048, loss and accuracy).

The model is ``build_cnn`` of the same configuration with the same initial weights, and the
optimizer has the same settings, so the difference is the library's per-batch work (``uint8`` ->
float conversion and normalisation per batch, the augmentation hook, the on-device running
loss/accuracy, the index bookkeeping).

Runs alternate (bare, trainable[, step]) after warm-up epochs; the medians are compared. The last
line is ``ratio: X`` = median trainable epoch / median bare epoch (goal: at most 1.15)::

    python benchmarks/epoch_speed.py [--n 3000] [--repeats 7] [--config default|medium]
                                     [--data glyphs|random] [--threads N] [--step]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

CONFIGS = {
    # The CNN space's documented default: one 8-channel 5x5 convolution, 2x2 max-pool, SGD, batch 128.
    "default": {},
    # A mid-sized network BOHB typically proposes: two BN conv blocks, a hidden FC layer, Adam.
    "medium": {
        "n_conv_layers": 2,
        "conv1_channels": 32, "conv1_kernel_size": 3, "conv1_padding": 1, "conv1_batchnorm": True,
        "conv2_channels": 64, "conv2_kernel_size": 3, "conv2_padding": 1, "conv2_batchnorm": True,
        "n_fc_layers": 1, "fc1_units": 128,
        "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
    },
}


def make_dataset(kind: str, n: int, seed: int = 0):
    """About ``n`` training images (and a quarter as many validation images), 28x28 ``uint8``."""
    from automl_chars.data import from_arrays, load

    if kind == "glyphs":
        root = os.environ.get("AUTOML_CHARS_DATA") or os.path.join(tempfile.gettempdir(),
                                                                 "automl_chars_bench_data")
        return load("glyphs-latin-upper", root=root, samples_per_class=math.ceil(n / 26))
    rng = np.random.default_rng(seed)
    classes = 26
    n_test = max(classes, n // 4)
    x = rng.integers(0, 256, size=(n + n_test, 28, 28), dtype=np.uint8)
    y = np.arange(n + n_test) % classes
    return from_arrays("random", x[:n], y[:n], x[n:], y[n:], seed=seed)


class BareLoop:
    """The hand-written baseline: precomputed float tensors, randperm, slice, step."""

    def __init__(self, dataset, config: dict, device: torch.device, seed: int = 0):
        from automl_chars.models import build_cnn
        from automl_chars.trainables.cnn import cnn_settings

        settings = cnn_settings(config)
        c = settings.config
        torch.manual_seed(seed)
        self.device = device
        x = dataset.x_train.float() / 255.0
        mean, std = float(x.mean()), float(x.std())
        self.x = ((x - mean) / std).to(device)
        self.y = dataset.y_train.to(device)
        self.xv = ((dataset.x_val.float() / 255.0 - mean) / std).to(device)
        self.yv = dataset.y_val.to(device)
        self.batch_size = int(c["batch_size"])
        self.model = build_cnn(settings.arch, dataset.num_classes, dataset.image_shape).to(device)
        if c["optimizer"] == "sgd":
            self.opt = torch.optim.SGD(self.model.parameters(), lr=c["learning_rate"],
                                       momentum=c["momentum"], weight_decay=c["weight_decay"])
        else:
            self.opt = torch.optim.Adam(self.model.parameters(), lr=c["learning_rate"],
                                        weight_decay=c["weight_decay"])

    def epoch(self) -> tuple[float, float]:
        model, opt, bs = self.model, self.opt, self.batch_size
        model.train()
        n = len(self.y)
        perm = torch.randperm(n, device=self.device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            out = model(self.x[idx])
            loss = F.cross_entropy(out, self.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        with torch.no_grad():
            for i in range(0, len(self.yv), 2048):
                out = model(self.xv[i : i + 2048])
                yb = self.yv[i : i + 2048]
                loss_sum += F.cross_entropy(out, yb, reduction="sum")
                correct += (out.argmax(1) == yb).sum()
        return float(loss_sum) / len(self.yv), float(correct) / len(self.yv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def make_trainable(dataset, config: dict, device: torch.device):
    """``CNNTrainable`` built in this process exactly as Tune builds it, on ``device``."""
    import ray
    from ray import tune

    import automl_chars.trainables.base as trainable_module
    from automl_chars.trainables.cnn import CNNTrainable
    from automl_chars.training.fidelity import Fidelity

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    # In the driver process Ray assigns no GPU, so trial_device() would pick the CPU; a Tune
    # actor with gpus_per_trial > 0 gets "cuda". Pin the device the benchmark compares on.
    original = trainable_module.trial_device
    trainable_module.trial_device = lambda: device
    try:
        cls = tune.with_parameters(CNNTrainable, dataset=dataset,
                                   fidelity=Fidelity("epochs", max_budget=10_000), seed=0)
        trainable = cls(config=dict(config))
    finally:
        trainable_module.trial_device = original
    assert trainable.device.type == device.type, (trainable.device, device)
    return trainable


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000, help="training images (default 3000)")
    p.add_argument("--repeats", type=int, default=7, help="timed epochs per variant (default 7)")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs per variant (default 1)")
    p.add_argument("--config", choices=sorted(CONFIGS), default="default")
    p.add_argument("--data", choices=("glyphs", "random"), default="glyphs",
                   help="glyphs-latin-upper (generated and cached once) or random pixels")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--step", action="store_true",
                   help="also time trainable.step() alone (without Trainable.train()'s bookkeeping)")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny run of the same code (what the tests execute): 200 random images, "
                        "1 repeat")
    args = p.parse_args(argv)
    if args.smoke:
        args.n, args.repeats, args.warmup, args.data = 200, 1, 0, "random"
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.perf_counter()
    dataset = make_dataset(args.data, args.n)
    print(f"data: {args.data} train={len(dataset.y_train)} val={len(dataset.y_val)} "
          f"classes={dataset.num_classes} ({time.perf_counter() - t0:.1f}s)")
    config = CONFIGS[args.config]
    bare = BareLoop(dataset, config, device)
    trainable = make_trainable(dataset, config, device)
    bare.model.load_state_dict(trainable.model.state_dict())  # same initial weights too
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(f"device: {device.type} ({name}); config: {args.config}; "
          f"batch size {bare.batch_size}; params {sum(q.numel() for q in bare.model.parameters())}")

    variants = {"bare": bare.epoch, "trainable.train()": trainable.train}
    if args.step:
        variants["trainable.step()"] = trainable.step
    for _ in range(args.warmup):
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {key: [] for key in variants}
    for _ in range(args.repeats):  # interleaved, so load changes hit every variant alike
        for key, fn in variants.items():
            times[key].append(timed(fn, device))

    base = statistics.median(times["bare"])
    print(f"\n{'variant':<20} {'median s':>9} {'min s':>8} {'max s':>8} {'vs bare':>8}")
    for key, ts in times.items():
        med = statistics.median(ts)
        print(f"{key:<20} {med:>9.4f} {min(ts):>8.4f} {max(ts):>8.4f} {med / base:>8.3f}")
    last = trainable.train()
    print(f"(last trainable result: val_acc={last['val_acc']:.3f}, epoch_s={last['epoch_s']:.4f})")
    ratio = statistics.median(times["trainable.train()"]) / base
    print(f"ratio: {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
