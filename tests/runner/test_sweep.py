"""End-to-end BOHB sweeps on a built-in glyph dataset (Ray started once for the session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automl_chars import SweepResult, data, run_bohb
from automl_chars.errors import DamagedFileError, ExperimentStateError, InvalidConfigError
from automl_chars.spaces import cnn_space, subspace
from automl_chars.store import ResultsStore

pytestmark = pytest.mark.slow

KEEP = ["learning_rate", "batch_size", "conv1_channels"]
GLYPHS = {"samples_per_class": 12}


@pytest.fixture(scope="module")
def glyph_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    data.load("glyphs-digits", root=root, **GLYPHS)  # generate the cache once
    return root


def _small_space():
    return subspace(cnn_space(), KEEP, seed=0)


def test_sweep_fits_bohb_model_with_more_trials_than_slots(ray_session, glyph_root, tmp_path):
    ds = data.load("glyphs-digits", root=glyph_root, **GLYPHS)
    # s_max = 1: brackets of 3 configs at budget 1 and 2 at budget 3; 8 iterations = 20 trials on
    # 2 CPU slots. BOHB fits its KDE once a budget has more than 2 * (3 + 1) results.
    result = run_bohb(ds, space=_small_space(), preset="3_1_3_8", storage_path=tmp_path,
                      name="e2e", verbose=0, priors=False)  # cold: the model from its own results
    t = result.trials
    assert len(t) == 20 and (t["status"] == "TERMINATED").all()
    assert result.n_model_based > 0, "BOHB's model never proposed a configuration"
    assert set(t["suggested_by"]) <= {"model", "random"}
    assert t["budget"].max() == 3 and t["budget"].min() >= 1
    assert (t.loc[t["suggested_by"] == "model", "budget"] >= 1).all()
    assert set(result.incumbent) == set(KEEP)
    assert all(type(v) in (int, float, str, bool) for v in result.incumbent.values())
    assert 0.0 <= result.test_accuracy <= 1.0
    row = result.table.iloc[0]
    assert row["dataset"] == "glyphs-digits" and row["preset"] == "3_1_3_8" and row["runtime_s"] > 0

    exp = Path(result.path)
    assert (exp / "trials.csv").exists() and (exp / "summary.json").exists()
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["n_model_based"] == result.n_model_based
    loaded = SweepResult.load(exp)
    assert loaded.incumbent == result.incumbent and len(loaded.trials) == 20
    events = list(exp.glob("CNNTrainable_*/events.out.tfevents*"))
    assert len({e.parent for e in events}) == 20, "every trial needs TensorBoard event files"
    assert any(b"_hparams_/session_start_info" in e.read_bytes() for e in events), "no hparams"

    # The store beside the sweep has every trial at every budget it reached, once.
    stored = ResultsStore(tmp_path / "store").frame()
    assert len(stored) == sum(t["budget"]) and set(stored["trial_id"]) == set(t["trial_id"])
    top = stored[stored["test_acc"].notna()]
    assert list(top["trial_id"]) == [result.incumbent_trial_id]
    assert top["test_acc"].iloc[0] == pytest.approx(result.test_accuracy)

    with pytest.raises(ExperimentStateError, match="resume"):
        run_bohb(ds, space=_small_space(), preset="3_1_3_8", storage_path=tmp_path, name="e2e",
                 verbose=0)


# A sweep killed mid-run and resumed: tests/search/test_warmstart.py's
# test_a_warm_started_sweep_survives_a_killed_driver (one killed driver of run_bohb per suite).


def test_resume_with_nothing_to_resume(ray_session, glyph_root, tmp_path):
    with pytest.raises(ExperimentStateError, match="Nothing to resume"):
        run_bohb("glyphs-digits", space=_small_space(), preset="3_1_3_1", storage_path=tmp_path,
                 name="none", resume=True, data_root=glyph_root, verbose=0)


def test_resume_of_a_truncated_experiment_state_says_so_before_ray_starts(glyph_root, tmp_path):
    """A driver killed while Ray copied its state (before the copies were atomic) left an empty
    experiment_state file; Tune would start the trials again with empty configs."""
    exp = tmp_path / "cut"
    exp.mkdir()
    (exp / "tuner.pkl").write_bytes(b"N.")  # what Tuner.can_restore looks for (a pickle of None)
    (exp / "experiment_state-2026-01-01_00-00-00.json").write_text("")
    with pytest.raises(DamagedFileError, match=r"experiment_state-\S+\.json is damaged \(it is "
                                               r"empty\)\. Ray Tune cannot resume"):
        run_bohb("glyphs-digits", space=_small_space(), preset="3_1_3_1", storage_path=tmp_path,
                 name="cut", resume=True, data_root=glyph_root, verbose=0)


def test_gpus_requested_without_a_gpu(ray_session, glyph_root, tmp_path, monkeypatch):
    if ray_session.cluster_resources().get("GPU", 0) > 0:
        pytest.skip("this machine has a GPU; the check is for clusters without one")
    monkeypatch.setattr("automl_chars.runner.cluster.autoscaling", lambda: False)  # on a `ray up` head too
    with pytest.raises(InvalidConfigError, match="no GPU"):
        run_bohb("glyphs-digits", space=_small_space(), preset="3_1_3_1", storage_path=tmp_path,
                 gpus_per_trial=0.5, data_root=glyph_root, verbose=0)


def test_a_warm_start_saved_before_a_setting_existed_still_resumes(tmp_path):
    """Settings a warm start gained later are not compared with a sweep saved without them;
    the ones it saved still are."""
    import json
    from dataclasses import asdict, replace

    from automl_chars.layout import SETTINGS_FILE
    from automl_chars.runner.sweep import SweepSettings, check_same_sweep
    from automl_chars.search.warmstart import WarmStart

    given = SweepSettings(dataset="d", dataset_fingerprint="f", preset="3_1_3_1", eta=3,
                          min_budget=1, max_budget=3, num_samples=4, fidelity="epochs",
                          gpus_per_trial=0, cpus_per_trial=1, seed=0,
                          warm_start=WarmStart(k=2).describe())
    old = {k: v for k, v in given.warm_start.items() if k not in ("seed_trials", "same_dataset")}
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({**asdict(given), "warm_start": old}))
    check_same_sweep(tmp_path, given)  # no error
    with pytest.raises(ExperimentStateError, match="different settings"):
        check_same_sweep(tmp_path, replace(given, warm_start=WarmStart(k=3).describe()))
    # Saved before the default measure changed (frechet then; no method): the default resumes
    # it, an explicit other measure does not.
    before = {k: v for k, v in old.items() if k != "method"} | {"measure": "frechet"}
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({**asdict(given), "warm_start": before}))
    check_same_sweep(tmp_path, given)  # no error
    with pytest.raises(ExperimentStateError, match="different settings"):
        check_same_sweep(tmp_path, replace(given, warm_start=WarmStart(k=2, measure="otdd").describe()))
