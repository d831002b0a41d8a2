"""Retrains the shipped ``learned`` similarity measure from a ground-truth run's scores table.

    python benchmarks/transferability.py --storage /tmp/gt        # writes /tmp/gt/scores.csv
    python scripts/train_learned_ranker.py /tmp/gt/scores.csv --note "full ground truth, ..."

Fits :class:`automl_chars.similarity.LearnedRanker` on every row (all targets, all regimes),
prints its weights and its leave-one-target-out weighted tau per regime (what the benchmark
reports), and writes it to ``--out`` (default: the package's shipped file).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy import stats

from automl_chars.cli.options import summary_of
from automl_chars.similarity.learned import (
    DEFAULT_BASES,
    SHIPPED_PATH,
    LearnedRanker,
    leave_one_target_out,
)


def loo_weighted_tau(scores: pd.DataFrame, measures: list[str]) -> pd.Series:
    """Mean weighted tau per regime of the leave-one-target-out predictions."""
    pred = leave_one_target_out(scores, measures)
    taus = {}
    for (regime, target), rows in scores.assign(pred=pred).groupby(["regime", "target"]):
        taus[(regime, target)] = stats.weightedtau(rows["pred"], rows["accuracy"]).statistic
    return pd.Series(taus).groupby(level=0).mean()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=summary_of(__doc__))
    p.add_argument("scores", help="scores.csv of benchmarks/transferability.py --storage DIR")
    p.add_argument("--measures", default=",".join(DEFAULT_BASES),
                   help="base measures (columns of the scores table)")
    p.add_argument("--out", default=str(SHIPPED_PATH), help="where to write the ranker")
    p.add_argument("--note", default="", help="what it was trained on, kept in the file")
    args = p.parse_args(argv)
    scores = pd.read_csv(args.scores)
    measures = [m.strip() for m in args.measures.split(",") if m.strip()]
    ranker = LearnedRanker.fit(scores, measures, note=args.note)
    print(f"trained on {ranker.trained_on['rows']} rows: {len(ranker.trained_on['targets'])} "
          f"targets, regimes {ranker.trained_on['regimes']}; ridge alpha {ranker.alpha:g}")
    print("weights (per scaled feature):")
    print(ranker.weights().round(3).to_string())
    if len(scores["target"].unique()) > 2:
        for regime, tau in loo_weighted_tau(scores, measures).items():
            print(f"leave-one-target-out weighted tau [{regime}]: {tau:.3f}")
    print(f"written: {ranker.save(args.out)}")
    return 0 if np.isfinite(ranker.coef).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
