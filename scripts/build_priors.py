"""Rebuilds the built-in priors (automl_chars/store/builtin/): a cold BOHB sweep of the CNN space
on each glyph domain but the README demo's, every trial's result at every epoch recorded.

    python scripts/build_priors.py              # about 15 minutes on 2 CPU cores
    python scripts/build_priors.py --smoke --out /tmp/priors   # a tiny build (tested)
"""

from __future__ import annotations

import argparse
import time

from automl_chars.cli.options import summary_of
from automl_chars.store import builtin
from automl_chars.workflows.priors import build_builtin_store


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=summary_of(__doc__))
    p.add_argument("--out", default=str(builtin.BUILTIN_STORE_PATH), help="store folder to write")
    p.add_argument("--trials", type=int, default=40, help="BOHB trials per domain")
    p.add_argument("--max-budget", type=int, default=1, help="largest budget (epochs)")
    p.add_argument("--storage", default=None, help="where the sweeps go (default beside --out)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true",
                   help="one domain of 10 images per class, 3 trials of 1 epoch")
    args = p.parse_args(argv)
    domains = builtin.BUILTIN_DOMAINS[:1] if args.smoke else builtin.BUILTIN_DOMAINS
    trials, budget = (3, 1) if args.smoke else (args.trials, args.max_budget)
    start = time.perf_counter()
    store = build_builtin_store(args.out, domains, trials=trials, max_budget=budget,
                                        seed=args.seed, storage_path=args.storage,
                                        samples_per_class=10 if args.smoke else None)
    frame = store.frame()
    print(frame.groupby(["dataset", "budget"]).size().unstack(fill_value=0).to_string())
    print(f"rows: {len(frame)}")
    print(f"seconds: {time.perf_counter() - start:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
