"""The results store: concurrent writers, a writer killed mid-write, no double counting, import
of older folders, Syne Tune-shaped export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from automl_chars.errors import DamagedFileWarning
from automl_chars.spaces.values import config_key
from automl_chars.store import ResultsStore, add_sweep, import_folder, store_beside, sweep_rows
from automl_chars.store.ingest import trained_config
from automl_chars.store.store import rows


def _rows(dataset: str, n: int, budget: float = 1.0) -> pd.DataFrame:
    return rows("sweep", dataset, "f00", "cnn",
                [{"config": {"learning_rate": 10.0 ** -(i % 4), "batch_size": 16 + i},
                  "budget": budget, "val_acc": i / n, "trial_id": f"t{i}"} for i in range(n)],
                folder=f"/x/{dataset}", meta_features={"classes": 10})


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import _rows
    from automl_chars.store import ResultsStore
    store = ResultsStore({path!r})
    for i in range(15):
        store.write(f"{{sys.argv[1]}}-{{i}}", _rows(f"{{sys.argv[1]}}-{{i}}", 5))
""")


def test_concurrent_writers_lose_nothing(tmp_path):
    """Two processes writing 15 contributions each at the same time: all 150 rows are there."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=os.path.dirname(__file__), path=str(tmp_path / "st")))
    procs = [subprocess.Popen([sys.executable, str(script), name]) for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    frame = ResultsStore(tmp_path / "st").frame()
    assert len(frame) == 150 and frame["dataset"].nunique() == 30
    assert (frame["mf_classes"] == 10).all()


KILLED = textwrap.dedent("""
    import time
    import pyarrow.parquet as pq
    from automl_chars.store import ResultsStore
    import sys
    sys.path.insert(0, {tests!r})
    from test_store import _rows

    def slow_write(table, where, **kw):  # half a file, then stuck: the kill lands mid-write
        with open(where, "wb") as f:
            f.write(b"PAR1" + b"x" * 1000)
            f.flush()
            time.sleep(60)

    pq.write_table = slow_write
    ResultsStore({path!r}).write("late", _rows("late", 50))
""")


def test_a_writer_killed_mid_write_corrupts_nothing(tmp_path):
    store = ResultsStore(tmp_path / "st")
    store.write("early", _rows("early", 4))
    script = tmp_path / "killed.py"
    script.write_text(KILLED.format(tests=os.path.dirname(__file__), path=str(store.path)))
    proc = subprocess.Popen([sys.executable, str(script)])
    deadline = time.time() + 60
    while not any(f.stat().st_size for f in store.path.glob(".*.tmp")):
        assert time.time() < deadline and proc.poll() is None, "the writer never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    frame = store.frame()
    assert list(frame["dataset"].unique()) == ["early"] and len(frame) == 4
    store.write("after", _rows("after", 2))  # the store stays writable
    assert len(store.frame()) == 6


def test_a_contribution_written_twice_is_counted_once(tmp_path):
    store = ResultsStore(tmp_path / "st")
    store.write("sweep:/x", _rows("d", 3))
    store.write("sweep:/x", _rows("d", 5))  # resumed and finished again: replaces
    assert len(store.frame()) == 5


def _fake_sweep(folder, dataset="glyphs-digits", finished=True):
    """A sweep folder as run_bohb leaves it (settings, trials, per-trial progress)."""
    folder.mkdir(parents=True)
    (folder / "automl_chars.json").write_text(json.dumps(
        {"dataset": dataset, "dataset_fingerprint": "abc", "trainable": "cnn", "preset": "3_1_3_1",
         "space_fingerprint": "space-fp"}))
    trials = pd.DataFrame({"trial_id": ["aa", "bb"], "status": ["TERMINATED"] * 2,
                           "suggested_by": ["random", "model"], "budget": [3, 1],
                           "val_acc": [0.7, 0.2], "config/learning_rate": [0.01, 0.1],
                           "config/n_fc_layers": [1, 0]})
    for tid, budget, accs in (("aa", 3, [0.3, 0.5, 0.7]), ("bb", 1, [0.2])):
        trial = folder / f"CNNTrainable_{tid}"
        trial.mkdir()
        pd.DataFrame({"training_iteration": range(1, budget + 1), "val_acc": accs,
                      "time_total_s": np.arange(1, budget + 1)}).to_csv(trial / "progress.csv")
        (trial / "params.json").write_text(json.dumps(
            {"learning_rate": 0.01 if tid == "aa" else 0.1, "suggested_by": "random"}))
    if finished:
        trials.to_csv(folder / "trials.csv", index=False)
        (folder / "summary.json").write_text(json.dumps(
            {"incumbent_trial_id": "aa", "test_accuracy": 0.66}))
    return folder


def test_a_sweep_adds_every_budget_and_the_incumbents_test_accuracy(tmp_path):
    sweep = _fake_sweep(tmp_path / "res" / "bohb-a")
    store = store_beside(sweep)
    assert store.path == tmp_path / "res" / "store"
    assert add_sweep(sweep, store) == 4
    assert add_sweep(sweep, store) == 4  # again: replaced, not added
    f = ResultsStore(tmp_path / "res" / "store").configs()
    assert len(f) == 4
    aa = f[f["trial_id"] == "aa"].sort_values("budget")
    assert list(aa["val_acc"]) == [0.3, 0.5, 0.7] and list(aa["budget"]) == [1, 2, 3]
    assert aa["test_acc"].isna().tolist() == [True, True, False] and aa["test_acc"].iloc[2] == 0.66
    assert aa["config"].iloc[0] == {"learning_rate": 0.01, "n_fc_layers": 1}
    assert (f["space_fingerprint"] == "space-fp").all()  # its configurations are of that space


def test_a_store_file_of_format_1_reads_with_no_space_fingerprint(tmp_path):
    """Files written before rows recorded their space (format 1, no such column) still read,
    beside new ones; their rows' space is unknown ("") and a warm start fits them."""
    import pyarrow.parquet as pq

    store = ResultsStore(tmp_path)
    new = store.write("new", _rows("d-new", 2).assign(space_fingerprint="fp"))
    old = store.write("old", _rows("d-old", 3))
    table = pq.read_table(old).drop(["space_fingerprint"])
    pq.write_table(table.replace_schema_metadata({b"automl_chars.store_version": b"1"}), old)
    frame, damaged = store.read()
    assert not damaged and len(frame) == 5
    by = frame.groupby("dataset")["space_fingerprint"].agg(set).to_dict()
    assert by == {"d-new": {"fp"}, "d-old": {""}}
    assert pq.read_schema(new).metadata[b"automl_chars.store_version"] == b"2"
    assert not store.check()
    # a format-2 file without the column is not a store file
    pq.write_table(table.replace_schema_metadata({b"automl_chars.store_version": b"2"}), old)
    assert [d.path for d in store.check()] == [old]


def test_import_finds_older_sweeps_also_unfinished_ones(tmp_path):
    _fake_sweep(tmp_path / "old" / "one")
    _fake_sweep(tmp_path / "old" / "deep" / "two", dataset="glyphs-greek", finished=False)
    (tmp_path / "old" / "broken").mkdir()
    (tmp_path / "old" / "broken" / "automl_chars.json").write_text("{not json")
    store = ResultsStore(tmp_path / "st")
    with pytest.warns(DamagedFileWarning, match=r"broken/automl_chars\.json is damaged"):
        added = import_folder(tmp_path / "old", store)  # skipped, said, the others added
    assert sorted(added.values()) == [4, 4]
    f = store.frame()
    assert set(f["dataset"]) == {"glyphs-digits", "glyphs-greek"}
    assert set(f.loc[f["dataset"] == "glyphs-greek", "status"]) == {"UNFINISHED"}


def test_export_as_configuration_by_task_evaluations(tmp_path):
    store = ResultsStore(tmp_path / "st")
    store.write("a", _rows("d1", 4, budget=1))
    store.write("b", _rows("d1", 2, budget=3))
    store.write("c", _rows("d2", 3))
    tasks = store.task_evaluations("cnn")
    assert set(tasks) == {"d1", "d2"}
    d1 = tasks["d1"]
    assert d1.objectives_evaluations.shape == (4, 1, 2, 1)
    assert list(d1.fidelity_values) == [1, 3]
    assert np.isnan(d1.objectives_evaluations[3, 0, 1, 0])  # config 3 never ran at budget 3
    assert d1.objectives_evaluations[1, 0, 1, 0] == 0.5 and list(d1.hyperparameters.columns) == [
        "batch_size", "learning_rate"]


def test_configs_parse_each_row_into_a_dict_of_its_own(tmp_path):
    """A configuration repeated at several budgets is parsed once, but each row gets its own
    dict: changing one row's leaves the others as stored."""
    store = ResultsStore(tmp_path / "st")
    store.write("a", _rows("d1", 3, budget=1))
    store.write("b", _rows("d1", 3, budget=3))  # the same three configurations again
    frame = store.configs()
    assert len(frame) == 6 and all(isinstance(c, dict) for c in frame["config"])
    same = frame[frame["trial_id"] == "t1"]["config"].tolist()
    assert same[0] == same[1] == {"learning_rate": 0.1, "batch_size": 17}
    same[0]["learning_rate"] = 5.0
    assert same[1]["learning_rate"] == 0.1
    assert store.configs()[lambda f: f["trial_id"] == "t1"]["config"].iloc[0]["learning_rate"] == 0.1


def test_a_configuration_is_stored_as_its_key(tmp_path):
    """The store writes each configuration as :func:`config_key` (canonical JSON of plain
    values: numpy scalars as numbers, keys sorted), so its text is its key: the warm start
    keys rows of its own space by their text without parsing and dumping them again."""
    config = {"n": np.int64(3), "lr": np.float64(0.1), "opt": np.str_("adam"), "bn": np.bool_(True)}
    text = rows("k", "d", "fp", "cnn", [{"config": config, "budget": 1, "val_acc": 0.5}],
                "f")["config"].iloc[0]
    assert text == '{"bn": true, "lr": 0.1, "n": 3, "opt": "adam"}' == config_key(config)
    assert config_key(json.loads(text)) == text  # parsed and keyed again: the same text


def test_bad_rows_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown columns"):
        ResultsStore(tmp_path).write("x", _rows("d", 1).assign(extra=1))
    assert ResultsStore(tmp_path / "none").frame().empty


def test_cli_import_and_show(tmp_path, capsys):
    from automl_chars.cli.main import main

    _fake_sweep(tmp_path / "old" / "one")
    assert main(["store", "import", str(tmp_path / "old"), "--store", str(tmp_path / "st")]) == 0
    assert "Imported 1 folders" in capsys.readouterr().out
    assert main(["store", "show", "--store", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    assert "(4 rows)" in out and "glyphs-digits" in out and "0.7" in out


def _autotune_sweep(folder, finished=True):
    """A sweep folder of an AutotuneLR sweep: no learning_rate in the configurations, each
    trial's chosen rate in trials.csv (``bb`` failed before choosing one) and progress.csv."""
    folder.mkdir(parents=True)
    (folder / "automl_chars.json").write_text(json.dumps(
        {"dataset": "glyphs-digits", "dataset_fingerprint": "abc", "trainable": "cnn",
         "autotune_lr": {"coarse": 2, "fine": 1}}))
    for tid, rate in (("aa", 0.0042), ("bb", None)):
        trial = folder / f"CNNTrainable_{tid}"
        trial.mkdir()
        pd.DataFrame({"training_iteration": [1], "val_acc": [0.5 if rate else float("nan")],
                      "time_total_s": [1.0],
                      "autotuned_lr": [rate if rate else float("nan")]}).to_csv(
            trial / "progress.csv")
        (trial / "params.json").write_text(json.dumps({"batch_size": 16}))
    if finished:
        pd.DataFrame({"trial_id": ["aa", "bb"], "status": ["TERMINATED", "FAILED"],
                      "budget": [1, 1], "val_acc": [0.5, float("nan")],
                      "autotuned_lr": [0.0042, float("nan")],
                      "config/batch_size": [16, 32]}).to_csv(folder / "trials.csv", index=False)
    return folder


@pytest.mark.parametrize("finished", [True, False])
def test_an_autotune_sweeps_rows_carry_the_rate_each_trial_chose(tmp_path, finished):
    f = sweep_rows(_autotune_sweep(tmp_path / "auto", finished)).set_index("trial_id")
    configs = {tid: json.loads(c) for tid, c in f["config"].items()}
    assert configs["aa"]["learning_rate"] == 0.0042  # the rate that trained it
    assert (f["space_fingerprint"] == "").all()  # a rate from outside the searched space
    assert "learning_rate" not in configs["bb"]  # chose none: none recorded


def test_trained_config_takes_the_chosen_rate_only_with_autotune_lr():
    trial = {"autotuned_lr": 0.0042}
    assert trained_config({"learning_rate": 0.1}, trial, {"coarse": 2}) == {"learning_rate": 0.0042}
    assert trained_config({"learning_rate": 0.1}, trial, None) == {"learning_rate": 0.1}
    assert trained_config({"batch_size": 16}, {"autotuned_lr": float("nan")}, True) == {
        "batch_size": 16}
