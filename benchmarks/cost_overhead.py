"""What measuring a model's costs adds to a trial: ``measure_costs`` (parameters, FLOPs by
torch's ``FlopCounterMode``, batch-1 latency and batch-32 throughput) against one training epoch
of the same model, over configurations drawn from the CNN space.

Every trial measures its model once, when it is built (``SupervisedTrainable``), and trains at
least one epoch, so ``ratio`` = median measurement / median epoch is the most that measuring
adds to a trial of one epoch (goal: at most 0.05; a trial of ``b`` epochs pays ``ratio / b``).
The epoch is :func:`automl_chars.training.train_epoch` over ``--n`` random 28x28 images with the
configuration's own batch size and optimizer, on the device both are measured on (``cuda`` if
available, else the CPU, on ``--threads`` threads as a trial with one CPU has)::

    python benchmarks/cost_overhead.py [--configs 12] [--n 3000] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", type=int, default=12, help="CNN-space configurations drawn")
    p.add_argument("--n", type=int, default=3000, help="training images per epoch")
    p.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="3 configurations, 500 images")
    args = p.parse_args(argv)
    if args.smoke:
        args.configs, args.n = 3, 500

    from automl_chars.models import build_model
    from automl_chars.models.costs import measure_costs
    from automl_chars.spaces import cnn_space
    from automl_chars.trainables.cnn import cnn_settings
    from automl_chars.training import DeviceData, train_epoch

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randint(0, 256, (args.n, 1, 28, 28), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (args.n,), generator=gen)
    data = DeviceData.create(x, y, device)
    space = cnn_space(args.seed)
    configs = [dict(space.get_default_configuration())] + [
        dict(c) for c in space.sample_configuration(args.configs - 1)] if args.configs > 1 else \
        [dict(space.get_default_configuration())]

    # Warm up torch (the first FlopCounterMode imports torch._dynamo, as a trial's first
    # optimizer step does anyway; cuDNN's first convolutions).
    warm = build_model("cnn", cnn_settings(configs[0]).arch, 10).to(device)
    measure_costs(warm, (1, 28, 28))
    s = cnn_settings(configs[0])
    train_epoch(warm, s.optimizer.make(warm), data, s.optimizer.batch_size,
                torch.Generator(device=device).manual_seed(0))

    measures, epochs = [], []
    print(f"{'params':>9} {'MFLOPs':>8} {'latency_ms':>10} {'measure_ms':>10} {'epoch_s':>8}")
    for config in configs:
        s = cnn_settings(config)
        model = build_model("cnn", s.arch, 10).to(device)
        start = time.perf_counter()
        costs = measure_costs(model, (1, 28, 28))
        measures.append(time.perf_counter() - start)
        start = time.perf_counter()
        train_epoch(model, s.optimizer.make(model), data, s.optimizer.batch_size,
                    torch.Generator(device=device).manual_seed(0))
        if device.type == "cuda":
            torch.cuda.synchronize()
        epochs.append(time.perf_counter() - start)
        print(f"{costs.params:>9} {costs.flops / 1e6:>8.2f} {costs.latency_ms:>10.3f} "
              f"{1000 * measures[-1]:>10.1f} {epochs[-1]:>8.2f}")
    print(f"device: {device.type}, threads: {torch.get_num_threads()}, images per epoch: {args.n}")
    print(f"median_measure_ms: {1000 * statistics.median(measures):.1f}")
    print(f"median_epoch_s: {statistics.median(epochs):.3f}")
    print(f"ratio: {statistics.median(measures) / statistics.median(epochs):.4f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
