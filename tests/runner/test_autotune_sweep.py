"""A BOHB sweep with AutotuneLR end to end: the space without ``learning_rate``, each trial's
chosen rate in its results and in trials.csv, the settings saved, time in TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automl_chars import data, run_bohb
from automl_chars.errors import ExperimentStateError
from automl_chars.layout import SETTINGS_FILE
from automl_chars.spaces import cnn_space, subspace
from automl_chars.training.autotune import AutotuneSettings

pytestmark = pytest.mark.slow


def test_a_sweep_with_autotune_lr(ray_session, data_root, tmp_path):
    ds = data.load("glyphs-digits", samples_per_class=8)
    space = subspace(cnn_space(), ["learning_rate", "batch_size"], seed=0)
    tune = AutotuneSettings(coarse=2, fine=1, steps=2, val_samples=64)
    result = run_bohb(ds, space=space, preset="2_1_2_1", storage_path=tmp_path, name="auto",
                      verbose=0, priors=False, autotune_lr=tune)
    t = result.trials
    assert "config/learning_rate" not in t
    # The incumbent trained at the rate it chose, and is given with it (not the space's default).
    best = t.set_index("trial_id").loc[result.incumbent_trial_id]
    assert result.incumbent["learning_rate"] == best["autotuned_lr"]
    assert t["autotuned_lr"].between(tune.low, tune.high).all()
    assert (t["autotune_s"] > 0).all() and (t["batch_shrinks"] == 0).all()
    saved = json.loads((Path(result.path) / SETTINGS_FILE).read_text())
    assert saved["autotune_lr"] == tune.to_dict()
    events = list(Path(result.path).glob("CNNTrainable_*/events.out.tfevents*"))
    assert events and all(b"ray/tune/elapsed_s" in e.read_bytes() for e in events)
    with pytest.raises(ExperimentStateError, match="autotune_lr"):  # another sweep: refused
        run_bohb(ds, space=space, preset="2_1_2_1", storage_path=tmp_path, name="auto",
                 verbose=0, priors=False, resume=True, autotune_lr=True)
