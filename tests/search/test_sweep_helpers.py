"""The sweep's small helpers: the GPU check (GPU trials on a cluster without GPUs fail fast
unless GPU nodes can come) and the environment Tune runs under."""

import logging
import os

import pytest

from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.search.result import SETTINGS_FILE, write_json
from automl_chars.search.sweep import (
    SweepSettings,
    _environment,
    _tune_environment,
    check_gpus,
    check_same_sweep,
)


def test_gpu_trials_without_gpus_fail_fast_on_a_fixed_cluster():
    with pytest.raises(InvalidConfigError, match="no GPU.*gpus_per_trial=0"):
        check_gpus(0.5, node_gpus=[0, 0], autoscaling=False)


def test_a_trial_larger_than_any_node_fails_fast():
    with pytest.raises(InvalidConfigError, match="largest node has 1 GPU.*gpus_per_trial <= 1"):
        check_gpus(2, node_gpus=[1, 1, 0], autoscaling=False)


def test_gpu_trials_wait_on_an_autoscaling_cluster(caplog):
    with caplog.at_level(logging.WARNING):
        check_gpus(0.5, node_gpus=[0], autoscaling=True)
    assert "autoscaler" in caplog.text


@pytest.mark.parametrize(("gpus", "node_gpus"), [(0.0, []), (0.25, [0, 1]), (2.0, [8])])
def test_nothing_to_check(gpus, node_gpus):
    check_gpus(gpus, node_gpus=node_gpus, autoscaling=False)


def test_autoscaling_means_a_cluster_launcher_config(tmp_path, monkeypatch):
    """Not the autoscaler's status key: every local head publishes that one (the regression)."""
    from automl_chars.search.sweep import _autoscaling

    monkeypatch.setenv("HOME", str(tmp_path))
    assert _autoscaling() is False
    (tmp_path / "ray_bootstrap_config.yaml").write_text("cluster_name: x\n")
    assert _autoscaling() is True


def test_tune_output_below_verbose_2_is_ours_alone(monkeypatch):
    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    assert _tune_environment(1)["RAY_AIR_NEW_OUTPUT"] == "0"
    assert "RAY_AIR_NEW_OUTPUT" not in _tune_environment(2)  # Tune's own output, as asked
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    assert "RAY_AIR_NEW_OUTPUT" not in _tune_environment(1)  # the user's setting wins


def test_environment_is_set_only_inside_the_block(monkeypatch):
    monkeypatch.delenv("AUTOML_CHARS_TEST_VAR", raising=False)
    with pytest.raises(RuntimeError), _environment({"AUTOML_CHARS_TEST_VAR": "1"}):
        assert os.environ["AUTOML_CHARS_TEST_VAR"] == "1"
        raise RuntimeError("a failed fit() must not leave it set either")
    assert "AUTOML_CHARS_TEST_VAR" not in os.environ


def _settings(**changes) -> SweepSettings:
    base = dict(dataset="glyphs-digits", dataset_fingerprint="0badcafe", preset="3_1_9_2", eta=3,
                min_budget=1, max_budget=9, num_samples=14, fidelity="epochs",
                gpus_per_trial=0.0, cpus_per_trial=1.0, seed=0)
    return SweepSettings(**{**base, **changes})


def test_a_sweep_resumes_only_with_its_defining_settings(tmp_path):
    write_json(tmp_path / SETTINGS_FILE, {**_settings().__dict__, "started_at": 1.0})
    check_same_sweep(tmp_path, _settings(gpus_per_trial=0.5, cpus_per_trial=2))  # resources may change
    for change in ({"dataset_fingerprint": "12345678"}, {"seed": 1}, {"preset": "3_1_9_3"},
                   {"fidelity": "subset"}):
        with pytest.raises(ExperimentStateError, match=f"different settings.*{next(iter(change))}"):
            check_same_sweep(tmp_path, _settings(**change))
    check_same_sweep(tmp_path / "elsewhere", _settings(seed=5))  # nothing saved: nothing to differ
