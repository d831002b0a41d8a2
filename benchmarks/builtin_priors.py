"""What do the built-in priors do for the README demo? (issue 7, "Built-in priors")

Runs the README's quick-start sweep (``glyphs-latin-upper``, preset ``3_1_9_3``: 17 trials) for
each seed twice: as it is (``run_bohb(priors=True)``, the default: BOHB's model starts from the
built-in priors of the nearest glyph domains; the demo's own domain is not among them) and with
``priors=False`` (cold BOHB). Printed per variant: ``model_share[v]`` (the share of trials whose
configuration BOHB's model proposed), ``first_model_trial[v]`` (position of the first such
trial; 0 = none), ``val_acc[v]`` and ``test_acc[v]`` of the incumbent, ``seconds[v]``; means over
seeds. ``ratio:`` is test accuracy with the priors / without.

    python benchmarks/builtin_priors.py                    # 3 seeds, about 30 minutes on 2 cores
    python benchmarks/builtin_priors.py --seeds 0 --preset 3_1_9_1
    python benchmarks/builtin_priors.py --smoke            # the test suite's tiny run
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

VARIANTS = {"priors": True, "cold": False}


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="glyphs-latin-upper")
    ap.add_argument("--preset", default="3_1_9_3")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--samples-per-class", type=int, default=None,
                    help="shrink the dataset (default: its own size, as in the README)")
    ap.add_argument("--storage", default=None, help="keep the sweeps here (default: a temp folder)")
    ap.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    args = ap.parse_args(argv)
    if args.smoke:
        args.preset, args.seeds, args.samples_per_class = "3_1_3_1", "0", 8
    args.seeds = [int(s) for s in str(args.seeds).split(",")]
    return args


def run(ds, args, seed: int, priors: bool, storage: str) -> dict:
    """One sweep; its figures."""
    from automl_chars import run_bohb

    start = time.time()
    name = f"{'priors' if priors else 'cold'}-s{seed}"
    # Each sweep in a folder of its own, so the results store beside it (which the default
    # priors read) holds no other run of this benchmark.
    result = run_bohb(ds, preset=args.preset, seed=seed, priors=priors,
                      storage_path=os.path.join(storage, name), name=name, verbose=0)
    model = (result.trials["suggested_by"] == "model").tolist()
    return {"seed": seed, "model_share": sum(model) / len(model),
            "first_model_trial": model.index(True) + 1 if any(model) else 0,
            "val_acc": float(result.table["val_acc"].iloc[0]),
            "test_acc": float(result.test_accuracy), "seconds": time.time() - start,
            "trials": len(model)}


def main(argv=None) -> int:
    import pandas as pd

    from automl_chars import data
    from automl_chars.runner.cluster import local_ray

    args = parse(argv)
    os.environ.pop("AUTOML_CHARS_STORE", None)  # each sweep's store is its own (see run)
    size = {"samples_per_class": args.samples_per_class} if args.samples_per_class else {}
    with local_ray(num_cpus=2), tempfile.TemporaryDirectory() as tmp:
        ds = data.load(args.dataset, root=os.path.join(tmp, "data") if args.smoke else None,
                       **size)
        storage = args.storage or os.path.join(tmp, "runs")
        rows = [{"variant": v, **run(ds, args, seed, priors, storage)}
                for seed in args.seeds for v, priors in VARIANTS.items()]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    means = table.groupby("variant").mean(numeric_only=True)
    for v in VARIANTS:
        for col in ("model_share", "first_model_trial", "val_acc", "test_acc", "seconds"):
            print(f"{col}[{v}]: {means.loc[v, col]:.4f}")
    cold = max(means.loc["cold", "test_acc"], 1e-6)  # a tiny smoke run may score 0
    print(f"ratio: {means.loc['priors', 'test_acc'] / cold:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
