"""The sweep's small helpers: the GPU check (GPU trials on a cluster without GPUs fail fast
unless GPU nodes can come) and the environment Tune runs under."""

import logging
import os

import pytest

from automl_chars.errors import InvalidConfigError
from automl_chars.search.sweep import _environment, _tune_environment, check_gpus


def test_gpu_trials_without_gpus_fail_fast_on_a_fixed_cluster():
    with pytest.raises(InvalidConfigError, match="no GPU.*gpus_per_trial=0"):
        check_gpus(0.5, cluster_gpus=0, autoscaling=False)


def test_gpu_trials_wait_on_an_autoscaling_cluster(caplog):
    with caplog.at_level(logging.WARNING):
        check_gpus(0.5, cluster_gpus=0, autoscaling=True)
    assert "autoscaler" in caplog.text


@pytest.mark.parametrize(("gpus", "cluster_gpus"), [(0.0, 0), (0.25, 1), (1.0, 8)])
def test_nothing_to_check(gpus, cluster_gpus):
    check_gpus(gpus, cluster_gpus=cluster_gpus, autoscaling=False)


def test_autoscaling_means_a_cluster_launcher_config(tmp_path, monkeypatch):
    """Not the autoscaler's status key: every local head publishes that one (the regression)."""
    from ray.tune.execution.cluster_info import _is_ray_cluster

    from automl_chars.search.sweep import _autoscaling

    monkeypatch.setenv("HOME", str(tmp_path))
    try:
        _is_ray_cluster.cache_clear()  # Tune caches the answer for the process
        assert _autoscaling() is False
        (tmp_path / "ray_bootstrap_config.yaml").write_text("cluster_name: x\n")
        _is_ray_cluster.cache_clear()
        assert _autoscaling() is True
    finally:
        _is_ray_cluster.cache_clear()


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
