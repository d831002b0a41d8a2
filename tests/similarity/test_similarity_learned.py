"""The learned ranker: fitting within targets, leave-one-target-out, saving, the shipped file.

(The shared tests of test_similarity_measures.py run the registered ``learned`` measure with
the shipped ranker like every other measure.)
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from similarity_helpers import SAMPLE

from automl_chars.errors import DamagedFileError, InvalidConfigError
from automl_chars.similarity import Context, LearnedRanker, leave_one_target_out, similarity
from automl_chars.similarity.learned import (
    META,
    SHIPPED_PATH,
    body_parameters,
    shipped_ranker,
    source_measures,
    source_scores,
)

BASES = ("logme", "knn")


def scores_table(n_targets: int = 5, n_sources: int = 6, seed: int = 0) -> pd.DataFrame:
    """A ground truth where accuracy follows ``knn`` within each target (plus a target-level
    offset the ranker must ignore) and ``logme`` is noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_targets):
        offset = rng.uniform(0, 0.5)
        for s in range(n_sources):
            knn = rng.uniform(0, 1)
            rows.append({"regime": "few", "target": f"t{t}", "source": f"s{s}",
                         "accuracy": offset + 0.3 * knn + rng.normal(0, 0.001),
                         "params": 1000.0 * (1 + s % 3), "images_per_class": 5.0,
                         "source_classes": 10.0, "knn": knn, "logme": rng.normal()})
    return pd.DataFrame(rows)


def test_fit_learns_the_order_within_targets():
    scores = scores_table()
    ranker = LearnedRanker.fit(scores, BASES)
    weights = ranker.weights()
    assert list(weights.index) == [*BASES, *META]
    assert weights["knn"] > 5 * abs(weights["logme"])
    for _, rows in scores.groupby("target"):
        pred = ranker.predict(rows)
        assert np.argmax(pred) == np.argmax(rows["accuracy"].to_numpy())


def test_orientation_follows_the_measure():
    """A distance (lower = more similar) enters with its sign turned."""
    scores = scores_table()
    scores["frechet"] = -scores["knn"]
    with pytest.raises(InvalidConfigError, match="own model"):  # not a base: reference network
        LearnedRanker.fit(scores, ("frechet",))


def test_leave_one_target_out_never_sees_its_target(monkeypatch):
    scores = scores_table()
    seen = []
    fit = LearnedRanker.fit.__func__

    def spy(cls, frame, *args, **kwargs):
        seen.append(set(frame["target"]))
        return fit(cls, frame, *args, **kwargs)

    monkeypatch.setattr(LearnedRanker, "fit", classmethod(spy))
    pred = leave_one_target_out(scores, BASES)
    assert len(seen) == scores["target"].nunique()
    for held_out, trained in zip(scores["target"].unique(), seen):
        assert held_out not in trained and len(trained) == scores["target"].nunique() - 1
    assert pred.notna().all()


def test_a_targets_own_truth_does_not_move_its_predictions():
    scores = scores_table()
    before = leave_one_target_out(scores, BASES)
    changed = scores.copy()
    t0 = changed["target"] == "t0"
    changed.loc[t0, "accuracy"] = changed.loc[t0, "accuracy"].to_numpy()[::-1]  # reversed truth
    after = leave_one_target_out(changed, BASES)
    assert np.allclose(before[t0], after[t0])
    assert not np.allclose(before[~t0], after[~t0])  # t0's truth trains the others' rankers


def test_needs_two_targets_and_the_columns():
    scores = scores_table(n_targets=1)
    with pytest.raises(InvalidConfigError, match="at least two"):
        LearnedRanker.fit(scores, BASES)
    with pytest.raises(InvalidConfigError, match="lacks the columns"):
        LearnedRanker.fit(scores_table().drop(columns="params"), BASES)


def test_save_load_round_trip_and_damage(tmp_path):
    ranker = LearnedRanker.fit(scores_table(), BASES, note="toy")
    path = ranker.save(tmp_path / "r.json")
    again = LearnedRanker.load(path)
    assert again == ranker
    rows = scores_table(seed=1)
    assert np.allclose(again.predict(rows), ranker.predict(rows))
    data = json.loads(path.read_text())
    data["coef"] = data["coef"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(DamagedFileError, match="features but"):
        LearnedRanker.load(path)
    path.write_text("{not json")
    with pytest.raises(DamagedFileError, match="train_learned_ranker"):
        LearnedRanker.load(path)
    path.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(DamagedFileError, match="format version"):
        LearnedRanker.load(path)


def test_the_shipped_ranker():
    ranker = shipped_ranker()
    assert SHIPPED_PATH.exists() and set(ranker.measures) <= set(source_measures())
    assert np.isfinite(ranker.coef).all() and ranker.trained_on["targets"]


def test_the_measure_is_the_shipped_ranker_on_the_bases(fresh, views):
    """``learned`` = the shipped ranker's prediction from its bases' scores and the models'
    sizes, computed for all sources together."""
    ranker = shipped_ranker()
    table = similarity(fresh["boxes"], views, ["learned", *ranker.measures], sample_size=SAMPLE,
                       bootstrap=0)
    ctx = Context(views[0])
    target = fresh["boxes"]
    from automl_chars.similarity.source import target_sample

    inputs = source_scores(target_sample(target, SAMPLE, 0), views, ranker.measures, ctx)
    for m in ranker.measures:
        assert np.allclose(inputs[m], table.loc[inputs.index, m])
    assert np.allclose(ranker.predict(inputs), table.loc[inputs.index, "learned"])
    assert inputs["params"].tolist() == [body_parameters(v.model) for v in views]
