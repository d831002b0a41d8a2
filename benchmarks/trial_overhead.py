"""Ray Tune's per-trial overhead for short ``CNNTrainable`` trials, with and without actor reuse.

A BOHB sweep runs many short trials (the first rung trains one budget unit), so what Tune spends
around each trial (starting an actor process, importing torch, shipping the dataset, ``setup()``,
scheduling, logging, tearing down) matters as much as the training itself. This benchmark runs
the same sweep twice through ``tune.Tuner`` on ``CNNTrainable``:

* ``--trials`` trials (default 16) of a tiny CNN on tiny data (``--per-class`` random 28x28
  images per class, 4 classes), one training step each (``stop={"training_iteration": 1}``),
  ``cpus_per_trial=1`` on a local Ray with ``num_cpus=2`` (``--cpus``; ``parallelism`` = 2), Tune's
  default loggers, a temporary ``storage_path``; with ``--gpus-per-trial F`` each trial also
  holds ``F`` of the machine's GPUs and trains there (parallelism = what both resources allow);
* once with ``reuse_actors=True`` (an actor is kept and ``reset_config()`` rebuilds the model
  for the next trial; the dataset stays loaded), once with ``reuse_actors=False`` (one actor
  process per trial).

Both measured sweeps run after an untimed 2-trial warm-up sweep on the same Ray instance, so
neither pays Ray's own start-up (without it the first sweep is several seconds slower, whichever
it is).

Definition: **overhead per trial = (wall - sum(time_total_s) / parallelism) / trials**, where
``wall`` is the wall-clock time of ``Tuner.fit()`` and ``time_total_s`` is each trial's own
training time as Tune reports it (the time spent inside ``Trainable.train()``). In words: the
wall time that is not explained by the trials' own training, spread evenly over the trials. It
includes the one-off cost of ``fit()`` itself (controller start, final experiment snapshot),
amortised over the trials.

The last line is ``ratio: X`` = overhead without reuse / overhead with reuse (goal: >= 2, i.e.
reusing actors at least halves the per-trial overhead)::

    python benchmarks/trial_overhead.py [--trials 16] [--per-class 30] [--order reuse-first] [--no-warmup]
                                        [--cpus 2] [--gpus-per-trial 0.25]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

# Quiet, deterministic Tune output; keep Tune's default logger callbacks (a real sweep has them).
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

CPUS_PER_TRIAL = 1
TINY = {"conv1_channels": 4, "conv1_kernel_size": 3, "batch_size": 32}


def tiny_dataset(per_class: int, num_classes: int = 4, seed: int = 0):
    from automl_chars.data import from_arrays

    rng = np.random.default_rng(seed)
    n, n_test = per_class * num_classes, 10 * num_classes
    x = rng.integers(0, 256, size=(n + n_test, 28, 28), dtype=np.uint8)
    y = np.arange(n + n_test) % num_classes
    return from_arrays("tiny", x[:n], y[:n], x[n:], y[n:], seed=seed)


def parallelism(num_cpus: int, num_gpus: int, gpus_per_trial: float) -> int:
    """How many trials Ray runs at once: what the CPUs and, for GPU trials, the GPUs allow."""
    by_cpu = num_cpus // CPUS_PER_TRIAL
    return by_cpu if gpus_per_trial <= 0 else min(by_cpu, int(num_gpus / gpus_per_trial + 1e-9))


def run_sweep(dataset, trials: int, reuse: bool, storage: str, slots: int,
              gpus_per_trial: float = 0.0, name: str | None = None) -> dict:
    """One ``Tuner.fit()``; returns wall time, the trials' own time and the overhead per trial."""
    from ray import tune

    from automl_chars.trainables.cnn import CNNTrainable
    from automl_chars.training.fidelity import Fidelity

    trainable = tune.with_resources(
        tune.with_parameters(CNNTrainable, dataset=dataset, fidelity=Fidelity("epochs", 1), seed=0),
        {"cpu": CPUS_PER_TRIAL, "gpu": gpus_per_trial},
    )
    # A different learning rate per trial, so every trial really is a new configuration.
    space = {**TINY, "learning_rate": tune.grid_search(list(np.geomspace(1e-3, 1e-1, trials)))}
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(num_samples=1, reuse_actors=reuse, metric="val_acc",
                                    mode="max"),
        run_config=tune.RunConfig(
            name=name or f"overhead-{'reuse' if reuse else 'noreuse'}", storage_path=storage,
            stop={"training_iteration": 1}, verbose=0,
        ),
    )
    start = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - start
    errors = [r.error for r in grid if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed, first: {errors[0]}")
    own = sum(r.metrics["time_total_s"] for r in grid)
    devices = {r.metrics["device"] for r in grid}
    return {"wall": wall, "own": own, "trials": len(grid), "devices": devices,
            "overhead": (wall - own / slots) / len(grid)}


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=16, help="trials per sweep (default 16)")
    p.add_argument("--per-class", type=int, default=30,
                   help="training images per class, 4 classes (default 30)")
    p.add_argument("--order", choices=("reuse-first", "noreuse-first"), default="reuse-first",
                   help="which measured sweep runs first")
    p.add_argument("--no-warmup", action="store_true",
                   help="skip the untimed 2-trial warm-up sweep (then the first measured sweep "
                        "also pays Ray's start-up: worker processes, first imports)")
    p.add_argument("--cpus", type=int, default=2, help="CPUs given to Ray (default 2)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPU share per trial, e.g. 0.25 (default 0: CPU trials)")
    args = p.parse_args(argv)

    import ray
    import torch

    num_gpus = torch.cuda.device_count() if args.gpus_per_trial > 0 else 0
    if args.gpus_per_trial > 0 and num_gpus == 0:
        p.error("--gpus-per-trial needs a CUDA GPU; torch sees none")
    slots = parallelism(args.cpus, num_gpus, args.gpus_per_trial)
    ray.init(num_cpus=args.cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    dataset = tiny_dataset(args.per_class)
    order = [True, False] if args.order == "reuse-first" else [False, True]
    results = {}
    with tempfile.TemporaryDirectory(prefix="automl_chars_overhead_") as storage:
        if not args.no_warmup:
            run_sweep(dataset, 2, True, storage, slots, args.gpus_per_trial, name="warmup")
        for reuse in order:
            results[reuse] = run_sweep(dataset, args.trials, reuse, storage, slots,
                                       args.gpus_per_trial)
    ray.shutdown()

    devices = ",".join(sorted(set().union(*(r["devices"] for r in results.values()))))
    print(f"{args.trials} trials x 1 step, {len(dataset.y_train)} images, cpus_per_trial="
          f"{CPUS_PER_TRIAL}, gpus_per_trial={args.gpus_per_trial}, parallelism {slots}, "
          f"trained on {devices}")
    print(f"{'reuse_actors':<13} {'wall s':>8} {'sum time_total_s':>17} {'wall/trial s':>13} "
          f"{'overhead/trial s':>17}")
    for reuse in (True, False):
        r = results[reuse]
        print(f"{str(reuse):<13} {r['wall']:>8.2f} {r['own']:>17.2f} "
              f"{r['wall'] / r['trials']:>13.3f} {r['overhead']:>17.3f}")
    ratio = results[False]["overhead"] / results[True]["overhead"]
    print(f"ratio: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
