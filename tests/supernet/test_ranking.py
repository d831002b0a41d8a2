"""Ranking tables and correlations, checked on seed 002's own table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.supernet import SupernetResult, correlations, ordering_errors, ranking_table
from automl_chars.supernet.ranking import RANKING_COLUMNS, best

# Seed 002's table: subnet -> (top-1 in the supernet, top-1 standalone), MNIST.
SEED_002 = {
    "(1, 1)": (0.853600, 0.950733), "(1, 2)": (0.941300, 0.977233),
    "(1, 3)": (0.951867, 0.988917), "(2, 1)": (0.935967, 0.963383),
    "(2, 2)": (0.962083, 0.983217), "(2, 3)": (0.968833, 0.989100),
    "(3, 1)": (0.947317, 0.965817), "(3, 2)": (0.969000, 0.983167),
    "(3, 3)": (0.971383, 0.990533),
}


def seed_table(**kwargs):
    return ranking_table({k: v[0] for k, v in SEED_002.items()},
                         {k: v[1] for k, v in SEED_002.items()}, **kwargs)


def test_seed_002s_table_gives_its_correlations():
    table = seed_table()
    assert list(table.columns) == list(RANKING_COLUMNS)
    c = correlations(table)
    assert c["kendall_tau"] == pytest.approx(0.7222, abs=1e-3)  # the 0.72
    assert c["spearman"] == pytest.approx(0.8667, abs=1e-3)  # and 0.87
    assert best(table, "supernet_acc") == best(table, "standalone_acc") == "(3, 3)"
    ranks = table.set_index("subnet")
    assert ranks.loc["(3, 3)", "supernet_rank"] == 1 and ranks.loc["(1, 1)", "standalone_rank"] == 9


def test_ordering_errors_find_seed_002s_wrong_pair():
    table = seed_table()
    errors = ordering_errors(table, "supernet_acc", ["(1, 3)", "(2, 2)"])
    assert errors == [("(2, 2)", "(1, 3)")]  # the supernet puts (2, 2) first, standalone (1, 3)
    # Fine-tuning that restores the standalone order leaves no error among them.
    fixed = seed_table(finetuned={"(1, 3)": 0.985, "(2, 2)": 0.980})
    assert ordering_errors(fixed, "finetuned_acc", ["(1, 3)", "(2, 2)"]) == []
    assert math.isnan(fixed.set_index("subnet").loc["(1, 1)", "finetuned_acc"])


def test_degenerate_and_mismatched_tables():
    flat = ranking_table({"a": 0.5, "b": 0.5}, {"a": 0.4, "b": 0.6})
    assert all(math.isnan(v) for v in correlations(flat).values())  # no ranking to compare
    with pytest.raises(InvalidConfigError, match=r"\['c'\] have a standalone accuracy but no"):
        ranking_table({"a": 0.5}, {"a": 0.4, "c": 0.1})


def test_result_round_trips_through_its_folder(tmp_path):
    table = seed_table()
    history = pd.DataFrame({"round": [10, 10], "subnet": ["(1, 1)", "(3, 3)"],
                            "running_acc": [0.2, 0.3]})
    summary = {"sampler": "uniform", **correlations(table), "top1_match": True,
               "supernet_top1": "(3, 3)", "standalone_top1": "(3, 3)",
               "costs": {"unit": "CPU-seconds", "supernet": 10.0, "standalone": 80.0,
                         "finetune": 0.0, "ratio": 0.125}}
    SupernetResult(table, history, summary, tmp_path / "uniform").save()
    back = SupernetResult.load(tmp_path / "uniform")
    pd.testing.assert_frame_equal(back.table, table, check_dtype=False)
    assert back.kendall_tau == pytest.approx(0.7222, abs=1e-3) and back.cost_ratio == 0.125
    with pytest.raises(ExperimentStateError, match="not a finished supernet run"):
        SupernetResult.load(tmp_path)
