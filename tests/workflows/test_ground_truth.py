"""The transferability ground truth: settings, grid jobs, the selection on validation, the
results store's rows, and (slow) a tiny real run read back by a second call."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.layout import SETTINGS_FILE, TRIALS_FILE
from automl_chars.store import ResultsStore, add_trials
from automl_chars.workflows.ground_truth import (
    KIND,
    GroundTruth,
    GroundTruthSettings,
    Regime,
    entry_name,
    grid_jobs,
    ground_truth,
    split_entry,
)

DOMAINS = ("glyphs-digits", "glyphs-greek", "glyphs-hebrew")


def test_settings_are_checked_before_anything_runs():
    with pytest.raises(InvalidConfigError, match="at least 3"):
        GroundTruthSettings(DOMAINS[:2])
    with pytest.raises(InvalidConfigError, match="unknown: \\['cnn-xl'\\]"):
        GroundTruthSettings(DOMAINS, archs=("cnn-s", "cnn-xl"))
    with pytest.raises(InvalidConfigError, match="regimes"):
        GroundTruthSettings(DOMAINS, regimes=("huge",))
    with pytest.raises(InvalidConfigError, match="weight_decays"):
        GroundTruthSettings(DOMAINS, weight_decays=(-1.0,))
    s = GroundTruthSettings(DOMAINS, regime_overrides={"few": {"epochs": 1}})
    assert s.regime("few").epochs == 1 and s.regime("standard").epochs == 5
    assert len(s.grid) == len(s.learning_rates) * len(s.weight_decays)
    # another grid is another run; the zoo stays the same
    other = GroundTruthSettings(DOMAINS, learning_rates=(1e-2,))
    assert other.zoo_name() == s.zoo_name()
    assert other.run_name(other.regime("few"), 0) != s.run_name(s.regime("few"), 0)


def test_entry_names():
    assert split_entry(entry_name("glyphs-greek", "cnn-m")) == ("glyphs-greek", "cnn-m")
    with pytest.raises(InvalidConfigError, match="zoo entry"):
        split_entry("glyphs-greek")


class _Zoo:
    def __init__(self, names):
        self._names = names

    def names(self):
        return list(self._names)


def test_grid_jobs_never_use_the_targets_own_domain():
    s = GroundTruthSettings(DOMAINS, archs=("cnn-s", "cnn-m"), learning_rates=(1e-3, 1e-2),
                            weight_decays=(0.0,))
    zoo = _Zoo([entry_name(d, a) for d in DOMAINS for a in s.archs])
    regime = s.regime("few")
    jobs = grid_jobs(zoo, {d: d for d in DOMAINS}, s, regime)
    assert len(jobs) == len(DOMAINS) * (len(DOMAINS) - 1) * len(s.archs) * len(s.grid)
    for job in jobs:
        target = job.label.split("|")[0]
        assert split_entry(job.config["source"])[0] != target
        assert job.config["batch_size"] == regime.batch_size
    assert len({j.label for j in jobs}) == len(jobs)


def trials(rows):
    return pd.DataFrame([dict(zip(("seed", "target", "source", "learning_rate", "weight_decay",
                                   "val_acc", "test_acc"), r), regime="few", seconds=1.0,
                              status="TERMINATED") for r in rows])


def test_selection_is_by_mean_validation_then_mean_test():
    gt = GroundTruth(trials([
        # lr 1e-3: validation 0.5 on average, test 0.9 (not chosen: its validation is worse)
        (0, "t", "a", 1e-3, 0.0, 0.4, 0.9), (1, "t", "a", 1e-3, 0.0, 0.6, 0.9),
        # lr 1e-2: validation 0.6 on average -> chosen; test mean 0.3, sd over seeds
        (0, "t", "a", 1e-2, 0.0, 0.7, 0.2), (1, "t", "a", 1e-2, 0.0, 0.5, 0.4),
        # source b: a tie on validation goes to the first grid point
        (0, "t", "b", 1e-3, 0.0, 0.5, 0.1), (0, "t", "b", 1e-2, 0.0, 0.5, 0.8),
    ]))
    sel = gt.selected("few").set_index("source")
    assert sel.loc["a", "learning_rate"] == 1e-2
    assert sel.loc["a", "test_acc"] == pytest.approx(0.3)
    assert sel.loc["a", "test_sd"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert sel.loc["b", "learning_rate"] == 1e-3 and sel.loc["b", "test_acc"] == 0.1
    assert gt.accuracy("few").loc["t"].to_dict() == pytest.approx({"a": 0.3, "b": 0.1})
    with pytest.raises(InvalidConfigError, match="standard"):
        gt.selected("standard")


def test_unfinished_trials_are_refused():
    bad = trials([(0, "t", "a", 1e-3, 0.0, 0.4, 0.9)]).assign(status="ERROR")
    with pytest.raises(ExperimentStateError, match="did not finish"):
        GroundTruth(bad)


def _run_folder(path, rows):
    """A finished run_trials folder as the store reads it (its settings and trials.csv)."""
    path.mkdir()
    (path / SETTINGS_FILE).write_text(json.dumps({"trainable": "transfer", "epochs": 3}))
    pd.DataFrame([{
        "label": f"{t}|{s}|{lr:g}|{wd:g}", "dataset": t, "trial_id": f"id{i}",
        "status": "TERMINATED", "val_acc": v, "train_acc": 1.0, "test_acc": a, "epochs": 3,
        "seconds": 2.0, "device": "cpu", "checkpoint": "", "error": "",
        "config/source": s, "config/learning_rate": lr, "config/weight_decay": wd,
        "config/optimizer": "adam"} for i, (t, s, lr, wd, v, a) in enumerate(rows)]
    ).to_csv(path / TRIALS_FILE, index=False)


def test_the_store_keeps_the_ground_truth(tmp_path):
    store = ResultsStore(tmp_path / "store")
    rows0 = [("t1", "s@cnn-s", 1e-3, 0.0, 0.5, 0.6), ("t1", "s@cnn-s", 1e-2, 0.0, 0.7, 0.4),
             ("t2", "s@cnn-s", 1e-3, 0.0, 0.3, 0.2)]
    rows1 = [("t1", "s@cnn-s", 1e-3, 0.0, 0.6, 0.7), ("t1", "s@cnn-s", 1e-2, 0.0, 0.6, 0.5),
             ("t2", "s@cnn-s", 1e-3, 0.0, 0.4, 0.3)]
    for seed, rows in enumerate((rows0, rows1)):
        folder = tmp_path / f"run{seed}"
        _run_folder(folder, rows)
        assert add_trials(folder, store, kind=KIND, suggested_by=f"few:{seed}",
                          fingerprints={"t1": "fp1"}) == 3
        assert add_trials(folder, store, kind=KIND, suggested_by=f"few:{seed}") == 3  # replaced
    frame = store.frame()
    assert len(frame) == 6 and set(frame["kind"]) == {KIND}
    assert set(frame["trainable"]) == {"transfer"}
    gt = GroundTruth.from_store(store)
    assert sorted(gt.trials["seed"].unique()) == [0, 1]
    # t1: lr 1e-3 has mean validation 0.55 < lr 1e-2's 0.65 -> test (0.4 + 0.5) / 2
    assert gt.accuracy("few").loc["t1", "s@cnn-s"] == pytest.approx(0.45)
    assert gt.accuracy("few").loc["t2", "s@cnn-s"] == pytest.approx(0.25)
    assert GroundTruth.from_store(store, targets=["t2"]).trials["target"].unique() == ["t2"]
    with pytest.raises(InvalidConfigError, match="no ground_truth rows"):
        GroundTruth.from_store(ResultsStore(tmp_path / "empty"))


@pytest.mark.slow
def test_a_tiny_ground_truth_runs_and_is_read_back(ray_session, data_root, tmp_path):
    settings = GroundTruthSettings(
        DOMAINS, archs=("cnn-s",), regimes=("few",), seeds=1, learning_rates=(1e-2,),
        weight_decays=(0.0,), source_samples_per_class=6, source_epochs=1,
        regime_overrides={"few": {"samples_per_class": 2, "val_per_class": 2,
                                  "test_per_class": 3, "epochs": 1}})
    assert isinstance(settings.regime("few"), Regime)
    gt = ground_truth(settings, tmp_path)
    assert gt.zoo.names() == [entry_name(d, "cnn-s") for d in DOMAINS]
    truth = gt.accuracy("few")
    assert truth.shape == (3, 3) and all(np.isnan(truth.loc[d, entry_name(d, "cnn-s")])
                                         for d in DOMAINS)
    assert truth.notna().sum().sum() == 6
    run = next(tmp_path.glob("gt-few-s0-*"))
    written = (run / TRIALS_FILE).stat().st_mtime_ns
    again = ground_truth(settings, tmp_path)  # read back: nothing trains again
    assert (run / TRIALS_FILE).stat().st_mtime_ns == written
    pd.testing.assert_frame_equal(again.accuracy("few"), truth)
    from_store = GroundTruth.from_store(ResultsStore(tmp_path / "store"))
    pd.testing.assert_frame_equal(from_store.accuracy("few").loc[truth.index, truth.columns],
                                  truth, check_names=False)
