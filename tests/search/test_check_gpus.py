"""``check_gpus``: GPU trials on a cluster without GPUs fail fast unless GPU nodes can come."""

import logging

import pytest

from automl_chars.errors import InvalidConfigError
from automl_chars.search.sweep import check_gpus


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
