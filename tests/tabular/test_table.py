"""``LearningCurveTable`` on small hand-made tables: no Ray, no training."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pyarrow.parquet as pq
import pytest
from ConfigSpace import Float
from table_helpers import make_table

from automl_chars.errors import InvalidConfigError, TableError
from automl_chars.spaces import cnn_space
from automl_chars.tabular import COLUMNS, TABLE_FORMAT, LearningCurveTable
from automl_chars.tabular.table import MANIFEST_KEY


def test_round_trip_keeps_rows_and_manifest(tmp_path):
    table = make_table()
    path = table.save(tmp_path / "sub" / "t.parquet")
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]  # no temporary file left
    back = LearningCurveTable.load(path)
    pd.testing.assert_frame_equal(back.frame, table.frame)
    assert back.manifest == table.manifest and back.configs == table.configs
    assert list(back.frame.columns) == list(COLUMNS)
    assert back.datasets == ["a", "b"] and back.epochs == 3 and back.path == path
    assert back.manifest.seed == 7 and back.manifest.samples_per_class == 4
    assert len(back) == 18 and "3 configurations x 2 datasets x 3 epochs" in repr(back)


def test_curve_is_one_row_per_epoch():
    curve = make_table().curve(1, "a")
    assert list(curve.index) == [1, 2, 3]
    assert list(curve["val_acc"]) == [0.3, 0.35, 0.6]
    assert curve.loc[3, "test_acc"] == pytest.approx(0.55)
    failed = make_table().curve(2, "b")
    assert failed["val_acc"].isna().tolist() == [False, True, True]
    assert (failed["status"] == "FAILED").all() and "diverged" in failed.loc[1, "error"]


def test_best_per_budget_skips_failures_and_breaks_ties_by_id():
    table = make_table()
    assert table.best("a", 1)["config_id"] == 1
    assert table.best("a", 2)["config_id"] == 2
    assert table.best("a")["config_id"] == 1  # default: the top budget
    assert table.best("b", 1)["config_id"] == 2
    assert table.best("b", 2)["config_id"] == 0  # 0.6 ties with config 1: the lower id
    assert table.best("b", 3, metric="test_acc")["test_acc"] == pytest.approx(0.65)
    for budget in (0, 4, 1.5, True):
        with pytest.raises(InvalidConfigError, match="budget"):
            table.best("a", budget)
    with pytest.raises(InvalidConfigError, match="no dataset 'c'.*'a', 'b'"):
        table.best("c", 1)
    with pytest.raises(InvalidConfigError, match="Unknown metric"):
        table.best("a", 1, metric="acc")
    with pytest.raises(InvalidConfigError, match="No configuration 9"):
        table.curve(9, "a")


def test_summary_per_dataset():
    s = make_table().summary().set_index("dataset")
    assert s.loc["a", "configs"] == 3 and s.loc["a", "failed"] == 0
    assert s.loc["b", "failed"] == 1
    assert s.loc["a", "best@2"] == pytest.approx(0.5) and s.loc["b", "best@3"] == pytest.approx(0.7)
    assert s.loc["a", "test_acc"] == pytest.approx(0.55)


def test_refuses_a_space_whose_fingerprint_differs():
    table = make_table()
    table.check_space(cnn_space(seed=3))  # the seed is not part of the space's identity
    changed = cnn_space()
    changed.add(Float("label_smoothing", (0.0, 0.2)))
    with pytest.raises(TableError, match="another search space.*Rebuild"):
        table.check_space(changed)


def test_missing_truncated_foreign_and_other_version_files_are_named(tmp_path):
    with pytest.raises(TableError, match=r"No learning-curve table at .*nope\.parquet"):
        LearningCurveTable.load(tmp_path / "nope.parquet")
    path = make_table().save(tmp_path / "t.parquet")
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(TableError, match=r"cut\.parquet cannot be read.*truncated"):
        LearningCurveTable.load(cut)
    foreign = tmp_path / "foreign.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(foreign)
    with pytest.raises(TableError, match=r"foreign\.parquet .*not a learning-curve table"):
        LearningCurveTable.load(foreign)

    raw = pq.read_table(path)
    manifest = json.loads(raw.schema.metadata[MANIFEST_KEY])
    for name, change, fragment in (("v2", {"format": TABLE_FORMAT + 1}, "of format 2"),
                                   ("broken", {"configs": None}, "damaged manifest")):
        meta = {**raw.schema.metadata, MANIFEST_KEY: json.dumps({**manifest, **change}).encode()}
        pq.write_table(raw.replace_schema_metadata(meta), tmp_path / f"{name}.parquet")
        with pytest.raises(TableError, match=rf"{name}\.parquet .*{fragment}"):
            LearningCurveTable.load(tmp_path / f"{name}.parquet")


def test_inconsistent_rows_are_refused():
    table = make_table()
    frame = table.frame
    with pytest.raises(TableError, match="repeated"):
        LearningCurveTable(pd.concat([frame, frame.iloc[:1]]), table.manifest)
    with pytest.raises(TableError, match="every configuration, dataset and epoch makes 18"):
        LearningCurveTable(frame.iloc[1:], table.manifest)
    with pytest.raises(TableError, match="datasets \\['z'\\]"):
        LearningCurveTable(frame.assign(dataset="z"), table.manifest)
    with pytest.raises(InvalidConfigError, match="missing \\['error'\\]"):
        LearningCurveTable(frame.drop(columns="error"), table.manifest)


def test_parts_of_one_build_join_and_others_are_refused(tmp_path):
    whole = make_table()
    parts = []
    for name in ("a", "b"):
        rows = whole.frame[whole.frame["dataset"] == name]
        datasets = [d for d in whole.manifest.datasets if d["name"] == name]
        manifest = replace(whole.manifest, datasets=tuple(datasets),
                           hardware={"device": "cpu" if name == "a" else "cuda"})
        parts.append(LearningCurveTable(rows, manifest).save(tmp_path / f"{name}.parquet"))
    joined = LearningCurveTable.concat([LearningCurveTable.load(p) for p in parts])
    pd.testing.assert_frame_equal(joined.frame, whole.frame)
    assert joined.datasets == ["a", "b"] and joined.configs == whole.configs
    assert joined.manifest.hardware == {"parts": {"a": {"device": "cpu"}, "b": {"device": "cuda"}}}

    a = LearningCurveTable.load(parts[0])
    with pytest.raises(TableError, match="repeat the datasets \\['a'\\]"):
        LearningCurveTable.concat([a, a])
    other = LearningCurveTable(a.frame, replace(a.manifest, seed=8, epochs=3))
    with pytest.raises(TableError, match="a.parquet.*not parts of one build.*seed"):
        LearningCurveTable.concat([a, other])
    with pytest.raises(InvalidConfigError, match="at least one"):
        LearningCurveTable.concat([])


def test_store_rows_are_every_finished_epoch_with_the_manifest_meta_features():
    table = make_table()
    rows = table.store_rows(["b"])
    assert set(rows["dataset"]) == {"b"} and len(rows) == 3 * 3 - 2  # config 2 failed at 2
    assert rows["config"].map(type).eq(dict).all() and (rows["origin"] == "table").all()
    assert rows["mf_log_classes"].eq(2.3).all() and (rows["trainable"] == "cnn").all()
    one = rows[rows["trial_id"] == "b/1"].sort_values("budget")
    assert one["val_acc"].tolist() == [0.6, 0.6, 0.65] and one["budget"].tolist() == [1, 2, 3]
    assert one["config"].iloc[0] == {"learning_rate": 0.01}
    # seconds as a sweep's time_total_s: the time to train to that epoch from scratch
    epochs = table.curve(1, "b")["epoch_seconds"]
    assert one["seconds"].tolist() == pytest.approx(epochs.cumsum().tolist())
    assert set(table.store_rows()["dataset"]) == {"a", "b"}
    with pytest.raises(InvalidConfigError, match="no dataset 'c'"):
        table.store_rows(["c"])
