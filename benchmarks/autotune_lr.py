"""Does AutotuneLR beat letting BOHB search the learning rate? (issue 17, seed 000's AutotuneLR)

For each seed, the same BOHB sweep of the CNN space twice, with the same preset (so the same
trials and budgets): ``search`` (BOHB searches ``learning_rate`` with the rest) and ``autotune``
(``run_bohb(autotune_lr=...)``: ``learning_rate`` leaves the space and each trial tunes its own
by a refined grid search of short runs at its start, in its own time); then ``search_equal``:
BOHB searching the rate with as much training time as ``autotune`` took (more HyperBand
iterations of the same brackets: the fewest whose budget is at least the base preset's times
``autotune``'s trial seconds over ``search``'s). All cold (no priors: the built-in priors know
the learning rate, which would favour searching it). Printed per seed and variant: the
incumbent's validation and test accuracy, the sweep's wall seconds and its trials' summed
seconds (``trial_s``, AutotuneLR's short runs included), and for ``autotune`` the mean chosen
rate and tuning seconds; then the means over seeds. ``ratio:`` is mean test accuracy with
AutotuneLR / with the rate searched for the same training time (``search_equal``);
``ratio_same_preset`` the same against ``search``.

    python benchmarks/autotune_lr.py                       # glyphs-latin-upper, 3_1_9_3, seeds 0,1,2
    python benchmarks/autotune_lr.py --seeds 0,1 --preset 3_1_9_1 --storage DIR
    python benchmarks/autotune_lr.py --smoke               # the test suite's tiny run

With ``--storage`` the run is resumable: run the same command again and finished sweeps are
read back, an interrupted one goes on from where it was.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

VARIANTS = ("autotune", "search", "search_equal")


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="glyphs-latin-upper")
    ap.add_argument("--preset", default="3_1_9_3")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--samples-per-class", type=int, default=None,
                    help="shrink the dataset (default: its own size)")
    ap.add_argument("--steps", type=int, default=20, help="AutotuneLR: steps of each short run")
    ap.add_argument("--coarse", type=int, default=4, help="AutotuneLR: rates on the coarse grid")
    ap.add_argument("--fine", type=int, default=2,
                    help="AutotuneLR: new rates towards each neighbour of the best coarse rate")
    ap.add_argument("--storage", default=None, help="keep the sweeps here (default: a temp folder)")
    ap.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    args = ap.parse_args(argv)
    if args.smoke:
        args.preset, args.seeds, args.samples_per_class = "2_1_2_1", "0", 8
        args.steps, args.coarse, args.fine = 2, 2, 1
    args.seeds = [int(s) for s in str(args.seeds).split(",")]
    return args


def equal_preset(preset: str, autotune_s: float, search_s: float, cap: int = 20) -> str:
    """``preset`` with the fewest iterations (at least its own, at most ``cap`` times its own)
    whose planned budget is at least its own times ``autotune_s / search_s``: searching the
    rate for AutotuneLR's time."""
    from automl_chars.search.presets import BOHBPreset

    base = BOHBPreset.parse(preset)
    want = base.planned_budget() * autotune_s / max(search_s, 1e-9)
    iterations = base.iterations
    while BOHBPreset(base.eta, base.min_budget, base.max_budget, iterations).planned_budget() \
            < want:
        if iterations >= cap * base.iterations:
            print(f"search_equal: capped at {iterations} iterations, short of "
                  f"{autotune_s / max(search_s, 1e-9):.1f}x the base preset's budget",
                  file=sys.stderr)
            break
        iterations += 1
    return f"{base.eta}_{base.min_budget}_{base.max_budget}_{iterations}"


def run(ds, args, seed: int, variant: str, storage: str, preset: str | None = None) -> dict:
    """One sweep; its figures. With ``--storage`` a finished sweep's figures are read back
    from ``<storage>/<variant>[-<preset>]-s<seed>.json`` (``preset``: search_equal's, named)
    and an interrupted sweep is resumed (its ``seconds`` then cover the resumed part only,
    ``resumed`` says so; ``trial_s`` counts every trial)."""
    from automl_chars import run_bohb
    from automl_chars.runner.core import can_resume
    from automl_chars.training.autotune import AutotuneSettings

    # search_equal's preset follows the other two's seconds: one record (and sweep) per preset
    name = f"{variant}-{preset}-s{seed}" if preset else f"{variant}-s{seed}"
    record = Path(storage) / f"{name}.json"
    if record.exists():
        return json.loads(record.read_text())
    tune = (AutotuneSettings(coarse=args.coarse, fine=args.fine, steps=args.steps)
            if variant == "autotune" else None)
    start = time.time()
    folder = os.path.join(storage, name)
    resume = can_resume(Path(folder) / name)
    preset = preset or args.preset
    result = run_bohb(ds, preset=preset, seed=seed, priors=False, autotune_lr=tune,
                      storage_path=folder, name=name, verbose=0, resume=resume)
    t = result.trials
    row = {"seed": seed, "preset": preset, "val_acc": float(result.table["val_acc"].iloc[0]),
           "test_acc": float(result.test_accuracy), "seconds": time.time() - start,
           "trial_s": float(t["time_total_s"].sum()), "trials": len(t), "resumed": resume}
    if tune is not None:
        row["mean_lr"] = float(t["autotuned_lr"].mean())
        row["autotune_s"] = float(t["autotune_s"].sum())
    record.write_text(json.dumps(row))
    return row


def main(argv=None) -> int:
    import pandas as pd

    from automl_chars import data
    from automl_chars.runner.cluster import local_ray

    args = parse(argv)
    os.environ.pop("AUTOML_CHARS_STORE", None)
    size = {"samples_per_class": args.samples_per_class} if args.samples_per_class else {}
    with local_ray(num_cpus=2), tempfile.TemporaryDirectory() as tmp:
        ds = data.load(args.dataset, root=os.path.join(tmp, "data") if args.smoke else None,
                       **size)
        storage = args.storage or os.path.join(tmp, "runs")
        os.makedirs(storage, exist_ok=True)
        rows = []
        for seed in args.seeds:
            pair = {v: run(ds, args, seed, v, storage) for v in ("autotune", "search")}
            preset = equal_preset(args.preset, pair["autotune"]["trial_s"],
                                  pair["search"]["trial_s"], cap=2 if args.smoke else 20)
            pair["search_equal"] = run(ds, args, seed, "search_equal", storage, preset)
            rows += [{"variant": v, **row} for v, row in pair.items()]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    means = table.groupby("variant").mean(numeric_only=True)
    for v in VARIANTS:
        for col in ("val_acc", "test_acc", "seconds", "trial_s"):
            print(f"{col}[{v}]: {means.loc[v, col]:.4f}")
    print(f"autotune_s[autotune]: {means.loc['autotune', 'autotune_s']:.4f}")
    searched = max(means.loc["search", "test_acc"], 1e-6)  # a tiny smoke run may score 0
    print(f"ratio_same_preset: {means.loc['autotune', 'test_acc'] / searched:.4f}")
    equal = max(means.loc["search_equal", "test_acc"], 1e-6)
    print(f"ratio: {means.loc['autotune', 'test_acc'] / equal:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
