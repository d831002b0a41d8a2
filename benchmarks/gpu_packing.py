"""Do fractional GPUs pay off? Trials per hour with 1, 0.5 and 0.25 GPU per trial on one GPU.

A BOHB sweep's first rungs are short trials of small CNNs, which use little of a large GPU (they
are bound by kernel launches and by the per-trial work around them, see ``trial_overhead.py``).
``gpus_per_trial=0.25`` runs four such trials on one GPU at once; this benchmark measures what
that buys:

* the same sweep of ``--trials`` trials (default 16) runs once per GPU share in
  ``--fractions`` (default 1, 0.5, 0.25), one after the other on the same local Ray instance
  with ``num_gpus=1`` (one GPU, whatever the machine has) and ``num_cpus=--cpus`` (default: all
  cores), each trial holding ``{"cpu": --cpus-per-trial (1), "gpu": F}``: parallelism
  ``min(1 / F, cpus / cpus_per_trial)``;
* every trial is the CNN space's default configuration (seed 001's untuned baseline: one 8-channel
  5x5 convolution, SGD, batch 128) with its own learning rate (a grid from 1e-3 to 1e-1, so no two
  trials are the same configuration), trained for ``--epochs`` epochs
  (``Fidelity("epochs", epochs)``, stopped at ``training_iteration = epochs``) on KMNIST-sized
  random data: ``--n`` (default 60,000) 28x28 ``uint8`` images of 10 classes built with
  ``automl_chars.data.from_arrays`` (10 % held out for validation), plus 10,000 test images;
  ``--configs sampled`` uses fixed configurations sampled from ``cnn_space(seed=1)`` instead
  (the same ones for every share);
* Tune is configured the way ``run_bohb`` configures it: ``tune.with_resources(
  tune.with_parameters(CNNTrainable, dataset=..., fidelity=..., seed=0), {"cpu": 1, "gpu": F})``,
  ``reuse_actors=True``, a checkpoint every iteration (``num_to_keep=2``), the TBX logger besides
  Tune's CSV/JSON loggers, short trial folder names, and one pending trial at a time
  (``TUNE_MAX_PENDING_TRIALS_PG=1``: what Tune's "auto" gives run_bohb's BOHB searcher;
  ``--max-pending`` changes it).

An untimed 1-trial warm-up sweep runs first (Ray's own start-up, the first CUDA context). For each
share the wall time of ``Tuner.fit()`` is measured; **trials per hour = trials / wall x 3600**.
The table also gives the steady-state rate (from the trials' end times, leaving out the first
``parallelism``, i.e. without the actors' start-up) and the trials' own training time. The last
line is ``ratio: X`` = trials per hour at 0.25 GPU / trials per hour at 1 GPU (goal: >= 3 on an
H100; with other ``--fractions``, the smallest share against the largest).

Without a CUDA GPU it prints ``no GPU: gpu_packing needs a CUDA GPU; skipped`` and exits 0. With
``--smoke`` it instead runs a tiny version of the same code path on the CPU (2 trials of 2,000
images, ``gpus_per_trial=0``, packing by CPUs: 2 CPUs per trial against 1 CPU per trial on 2
CPUs), so that the test suite exercises it; on a GPU ``--smoke`` is 4 trials of 5,000 images at 1
and 0.25 GPU::

    python benchmarks/gpu_packing.py [--trials 16] [--epochs 1] [--n 60000]
        [--fractions 1,0.5,0.25] [--cpus N] [--cpus-per-trial 1] [--max-pending 1]
        [--keep-starting] [--configs default|sampled] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

NO_GPU = "no GPU: gpu_packing needs a CUDA GPU; skipped"
NUM_CLASSES = 10
N_TEST = 10_000


def kmnist_sized(n: int, seed: int = 0, n_test: int = N_TEST):
    """``n`` random 28x28 training images of 10 classes (KMNIST's shape and size) as a Dataset."""
    from automl_chars.data import from_arrays

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n + n_test, 28, 28), dtype=np.uint8)
    y = np.arange(n + n_test) % NUM_CLASSES
    return from_arrays("kmnist-sized", x[:n], y[:n], x[n:], y[n:], seed=seed)


def configurations(kind: str, trials: int) -> list[dict]:
    """The trials' configurations, each with every hyperparameter of the CNN space (inactive ones
    at their defaults): the default one with a learning-rate grid, or sampled ones."""
    from automl_chars.spaces import cnn_space, default_config, plain_config, resolve

    if kind == "sampled":
        sampled = cnn_space(seed=1).sample_configuration(max(2, trials))[:trials]
        return [resolve(plain_config(c)) for c in sampled]
    base = resolve(default_config())
    return [{**base, "learning_rate": float(lr)} for lr in np.geomspace(1e-3, 1e-1, trials)]


def run_sweep(dataset, configs: list[dict], epochs: int, resources: dict, storage: str,
              max_pending: int, name: str) -> dict:
    """One ``Tuner.fit()`` of ``configs``; wall time, trial end times and the trials' own time."""
    from ray import tune
    from ray.tune.callback import Callback
    from ray.tune.search import BasicVariantGenerator

    from automl_chars.runner import core
    from automl_chars.trainables.cnn import CNNTrainable
    from automl_chars.training.fidelity import Fidelity

    class Ends(Callback):
        def __init__(self):
            self.times, self.pids = [], set()

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.times.append(time.perf_counter())
            self.pids.add((trial.last_result or {}).get("pid"))

    ends = Ends()
    trainable = tune.with_resources(
        tune.with_parameters(CNNTrainable, dataset=dataset, fidelity=Fidelity("epochs", epochs),
                             seed=0),
        resources,
    )
    tuner = tune.Tuner(
        trainable,
        # Exactly these configurations, in this order (Tune wants each key in the param space).
        param_space=dict(configs[0]),
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(points_to_evaluate=[dict(c) for c in configs]),
            num_samples=len(configs), reuse_actors=True, trial_dirname_creator=core.trial_dirname),
        # run_bohb's run configuration (the same function), without its progress lines.
        run_config=core.run_config(
            Path(storage) / name, len(configs),
            tune.FailureConfig(max_failures=2, fail_fast=False), verbose=0, callbacks=[],
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2),
            first=[ends], stop={"training_iteration": epochs}),
    )
    env = {**core._tune_environment(1), "TUNE_MAX_PENDING_TRIALS_PG": str(max_pending)}
    env = {k: v for k, v in env.items() if k not in os.environ}  # the user's own values win
    # (Tune warns that each point's learning rate differs from the param space's: it should.)
    quiet = logging.getLogger("ray.tune.search.variant_generator")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with core.environment(env), contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        grid = tuner.fit()
        wall = time.perf_counter() - start
    quiet.setLevel(level)
    errors = [r.error for r in grid if r.error]
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed, first: {errors[0]}")
    return {"wall": wall, "ends": sorted(t - start for t in ends.times), "actors": len(ends.pids),
            "own": [r.metrics["time_total_s"] for r in grid],
            "epoch_s": [r.metrics.get("epoch_s", float("nan")) for r in grid],
            "devices": {r.metrics.get("device") for r in grid},
            "failed": sum(1 for r in grid if r.metrics.get("failure"))}


def steady_rate(ends: list[float], skip: int) -> float | None:
    """Seconds per trial once all actors run: slope of the end times, the first ``skip`` left out."""
    ends = ends[skip:]
    if len(ends) < 3:
        return None
    return float(np.polyfit(np.arange(len(ends)), np.array(ends), 1)[0])


def main(argv: list[str] | None = None) -> float | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=16, help="trials per sweep (default 16)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per trial (default 1)")
    p.add_argument("--n", type=int, default=60_000, help="training images (default 60,000)")
    p.add_argument("--fractions", default="1,0.5,0.25",
                   help="GPU shares per trial to compare (default 1,0.5,0.25)")
    p.add_argument("--cpus", type=int, default=os.cpu_count(),
                   help=f"CPUs given to Ray (default: all, {os.cpu_count()})")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (default 1)")
    p.add_argument("--max-pending", type=int, default=1,
                   help="TUNE_MAX_PENDING_TRIALS_PG (default 1, what run_bohb's searcher gets; "
                        "more lets several actors start at once)")
    p.add_argument("--keep-starting", action="store_true",
                   help="patch Tune so that a trial keeps its starting actor instead of taking a "
                        "cached one (see trial_overhead.keep_starting_actors); use with "
                        "--max-pending set to the parallelism")
    p.add_argument("--configs", choices=("default", "sampled"), default="default",
                   help="default: the CNN space's default config with a learning-rate grid; "
                        "sampled: configurations sampled from cnn_space(seed=1)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny run for the tests (on a CPU: 2 trials packed by CPUs, gpus 0)")
    args = p.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        print(NO_GPU)
        return None
    if args.smoke:
        args.trials, args.epochs, args.n = (4, 1, 5_000) if cuda else (2, 1, 2_000)
        if cuda:
            args.fractions = "1,0.25"
        else:
            args.cpus = 2
    if cuda:
        fractions = sorted({float(f) for f in args.fractions.split(",") if f.strip()}, reverse=True)
        if any(not 0 < f <= 1 for f in fractions) or len(fractions) < 2:
            p.error("--fractions: at least two GPU shares in (0, 1]")
        # (label, resources, parallelism)
        settings = [(f"gpu {f:g}", {"cpu": args.cpus_per_trial, "gpu": f},
                     int(min(1 / f + 1e-9, args.cpus // args.cpus_per_trial))) for f in fractions]
        num_gpus = 1
    else:
        # The CPU stand-in of the smoke run: a trial on both CPUs against one trial per CPU.
        settings = [("cpu 2 (gpu 0)", {"cpu": 2, "gpu": 0}, 1),
                    ("cpu 1 (gpu 0)", {"cpu": 1, "gpu": 0}, 2)]
        num_gpus = 0

    from automl_chars.runner.cluster import local_ray

    def patches():
        """--keep-starting's patch of Tune (a fresh context manager per sweep), or nothing."""
        if not args.keep_starting:
            return contextlib.nullcontext()
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from trial_overhead import keep_starting_actors

        return keep_starting_actors(True)

    with local_ray(num_cpus=args.cpus, num_gpus=num_gpus):
        dataset = kmnist_sized(args.n)
        configs = configurations(args.configs, args.trials)
        results = {}
        with tempfile.TemporaryDirectory(prefix="automl_chars_gpu_packing_") as storage:
            with patches():
                run_sweep(dataset, configs[:1], args.epochs, settings[-1][1], storage,
                          args.max_pending, "warmup")
            for label, resources, _ in settings:
                with patches():
                    r = run_sweep(dataset, configs, args.epochs, resources, storage,
                                  args.max_pending, f"packing-{label.replace(' ', '-')}")
                results[label] = r
                print(f"  {label}: {r['wall']:.1f} s", file=sys.stderr, flush=True)

    gpu = torch.cuda.get_device_name(0) if cuda else "no GPU (CPU smoke run)"
    devices = ",".join(sorted(set().union(*(r["devices"] for r in results.values()))))
    print(f"{args.trials} trials x {args.epochs} epoch(s), {len(dataset.y_train)} training images, "
          f"{args.configs} configs, {args.cpus} CPUs, max pending {args.max_pending}"
          f"{', keep-starting' if args.keep_starting else ''}; {gpu}; trained on {devices}")
    print(f"{'per trial':<14} {'parallel':>8} {'actors':>6} {'wall s':>8} {'trials/hour':>12} "
          f"{'steady trials/hour':>19} {'mean trial s':>13} {'mean epoch s':>13}")
    tph = {}
    for label, _, slots in settings:
        r = results[label]
        tph[label] = args.trials / r["wall"] * 3600
        steady = steady_rate(r["ends"], slots)
        steady_txt = "" if steady is None or steady <= 0 else f"{3600 / steady:.0f}"
        print(f"{label:<14} {slots:>8} {r['actors']:>6} {r['wall']:>8.1f} {tph[label]:>12.0f} "
              f"{steady_txt:>19} {np.mean(r['own']):>13.2f} {np.nanmean(r['epoch_s']):>13.3f}")
        if r["failed"]:
            print(f"  ({r['failed']} trial(s) of {label} failed)")
    first, last = settings[0][0], settings[-1][0]
    ratio = tph[last] / tph[first]
    print(f"ratio = trials/hour at {last} / trials/hour at {first}")
    print(f"ratio: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
