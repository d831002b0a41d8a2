"""The sweep's small helpers, before Ray starts: the cluster check (a trial that no node can hold
fails fast unless nodes can come), settings validation, resume checks, the environment Tune runs
under."""

import logging
import os

import pytest

from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.layout import SETTINGS_FILE, write_json
from automl_chars.runner.cluster import autoscaling, check_extra_fits, check_fits
from automl_chars.runner.core import _tune_environment, environment
from automl_chars.runner.sweep import SweepSettings, check_same_sweep
from automl_chars.search.bohb import check_bohb_config, resolve_preset


def _nodes(*specs):
    return [{"CPU": c, "GPU": g} for c, g in specs]


def test_gpu_trials_without_gpus_fail_fast_on_a_fixed_cluster():
    with pytest.raises(InvalidConfigError, match="no GPU.*gpus_per_trial=0"):
        check_fits(1, 0.5, _nodes((2, 0), (2, 0)), autoscaling=False)


def test_a_trial_larger_than_any_node_fails_fast():
    with pytest.raises(InvalidConfigError, match="largest node has 1 GPU.*gpus_per_trial <= 1"):
        check_fits(1, 2, _nodes((4, 1), (4, 1), (4, 0)), autoscaling=False)
    with pytest.raises(InvalidConfigError, match="cpus_per_trial=3.*largest has 2 CPU.*<= 2"):
        check_fits(3, 0, _nodes((2, 0), (1, 0)), autoscaling=False)


def test_cpus_and_gpus_must_fit_on_the_same_node():
    # 4 CPUs on one node and a GPU on another: no node holds a 4-CPU GPU trial.
    with pytest.raises(InvalidConfigError, match="cpus_per_trial=4"):
        check_fits(4, 1, _nodes((4, 0), (2, 1)), autoscaling=False)
    check_fits(2, 1, _nodes((4, 0), (2, 1)), autoscaling=False)


def test_trials_wait_on_an_autoscaling_cluster(caplog):
    with caplog.at_level(logging.WARNING):
        check_fits(1, 0.5, _nodes((2, 0)), autoscaling=True)
    assert "autoscaler" in caplog.text


@pytest.mark.parametrize(("cpus", "gpus", "nodes"), [
    (1, 0.0, [(1, 0)]), (1, 0.25, [(2, 0), (2, 1)]), (2, 2.0, [(8, 8)]),
])
def test_nothing_to_refuse(cpus, gpus, nodes):
    check_fits(cpus, gpus, _nodes(*nodes), autoscaling=False)


def test_a_jobs_own_resources_must_be_on_a_node_with_the_cpus_and_gpus():
    """TrialJob.resources: a custom resource no node has, or only a node too small for the
    trial's CPUs, fails fast on a fixed cluster (naming the job and the nodes' custom
    resources), waits on an autoscaling one, and passes where a node has it all."""
    nodes = [{"CPU": 4, "GPU": 0, "worker_a": 1, "memory": 1e9, "node:10.0.0.1": 1},
             {"CPU": 1, "GPU": 0, "worker_b": 1}]
    check_extra_fits({"a": {"worker_a": 1}, "b": {"worker_b": 1}}, 1, 0, nodes, autoscaling=False)
    with pytest.raises(InvalidConfigError, match=r"Job 'c' asks for.*'worker_c'.*\['worker_a', "
                                                 r"'worker_b'\].*ray start --resources"):
        check_extra_fits({"c": {"worker_c": 1}}, 1, 0, nodes, autoscaling=False)
    with pytest.raises(InvalidConfigError, match="Job 'b'.*2 CPU"):
        check_extra_fits({"b": {"worker_b": 1}}, 2, 0, nodes, autoscaling=False)
    with pytest.raises(InvalidConfigError, match="Job 'a'"):
        check_extra_fits({"a": {"worker_a": 2}}, 1, 0, nodes, autoscaling=False)
    check_extra_fits({"c": {"worker_c": 1}}, 1, 0, nodes, autoscaling=True)


def test_autoscaling_means_a_cluster_launcher_config(tmp_path, monkeypatch):
    """Not the autoscaler's status key: every local head publishes that one (the regression)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert autoscaling() is False
    (tmp_path / "ray_bootstrap_config.yaml").write_text("cluster_name: x\n")
    assert autoscaling() is True


def test_tune_output_below_verbose_2_is_ours_alone(monkeypatch):
    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    assert _tune_environment(1)["RAY_AIR_NEW_OUTPUT"] == "0"
    assert "RAY_AIR_NEW_OUTPUT" not in _tune_environment(2)  # Tune's own output, as asked
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    assert "RAY_AIR_NEW_OUTPUT" not in _tune_environment(1)  # the user's setting wins


def test_the_sweep_owns_sigint_during_fit(monkeypatch):
    monkeypatch.delenv("TUNE_DISABLE_SIGINT_HANDLER", raising=False)
    assert _tune_environment(1)["TUNE_DISABLE_SIGINT_HANDLER"] == "1"


def test_environment_is_set_only_inside_the_block(monkeypatch):
    monkeypatch.delenv("AUTOML_CHARS_TEST_VAR", raising=False)
    with pytest.raises(RuntimeError), environment({"AUTOML_CHARS_TEST_VAR": "1"}):
        assert os.environ["AUTOML_CHARS_TEST_VAR"] == "1"
        raise RuntimeError("a failed fit() must not leave it set either")
    assert "AUTOML_CHARS_TEST_VAR" not in os.environ


def _settings(**changes) -> SweepSettings:
    base = dict(dataset="glyphs-digits", dataset_fingerprint="0badcafe", preset="3_1_9_2", eta=3,
                min_budget=1, max_budget=9, num_samples=14, fidelity="epochs",
                gpus_per_trial=0.0, cpus_per_trial=1.0, seed=0, trainable="cnn",
                space_fingerprint="abc", bohb_config={})
    return SweepSettings(**{**base, **changes})


def test_a_sweep_resumes_only_with_its_defining_settings(tmp_path):
    write_json(tmp_path / SETTINGS_FILE, {**_settings().__dict__, "started_at": 1.0})
    # Resources and retries may change: a sweep can resume on another cluster.
    check_same_sweep(tmp_path, _settings(gpus_per_trial=0.5, cpus_per_trial=2, max_failures=5))
    for change in ({"dataset_fingerprint": "12345678"}, {"seed": 1}, {"preset": "3_1_9_3"},
                   {"fidelity": "subset"}, {"trainable": "transfer"},
                   {"space_fingerprint": "def"}, {"bohb_config": {"top_n_percent": 30}},
                   {"num_samples": 15}, {"objective": {"limits": {"params": 5e4}}}):
        with pytest.raises(ExperimentStateError, match=f"different settings.*{next(iter(change))}"):
            check_same_sweep(tmp_path, _settings(**change))
    check_same_sweep(tmp_path / "elsewhere", _settings(seed=5))  # nothing saved: nothing to differ


@pytest.mark.parametrize(("change", "fragment"), [
    ({"num_samples": 0}, "num_samples must be a whole number >= 1"),
    ({"num_samples": 2.5}, "num_samples must be a whole number"),
    ({"seed": -1}, "seed must be a whole number in"),
    ({"seed": 2**32}, "seed must be"),
    ({"seed": 1.5}, "seed must be"),
    ({"gpus_per_trial": -0.5}, "gpus_per_trial must be >= 0"),
    ({"gpus_per_trial": 1.5}, "whole number"),
    ({"cpus_per_trial": 0}, "cpus_per_trial must be > 0"),
    ({"max_failures": -1}, "max_failures"),
])
def test_sweep_settings_are_validated(change, fragment):
    with pytest.raises(InvalidConfigError, match=fragment):
        _settings(**change)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"eta": 0}, "eta must be >= 2"),
    ({"min_budget": 0}, "min_budget must be >= 1"),
    ({"max_budget": 0}, "max_budget"),
    ({"eta": 2.5}, "eta must be a whole number"),
    ({"preset": "3_1_9_2", "eta": 3}, "either a preset"),
])
def test_budgets_and_eta_are_used_as_given_never_replaced(kwargs, fragment):
    """0 used to be replaced by the default silently (``eta or 3``)."""
    args = {"preset": None, "eta": None, "min_budget": None, "max_budget": None, **kwargs}
    with pytest.raises(InvalidConfigError, match=fragment):
        resolve_preset(**args)


def test_explicit_budgets_make_one_full_round():
    p = resolve_preset(None, eta=2, min_budget=1, max_budget=4)
    assert (p.eta, p.min_budget, p.max_budget, p.iterations) == (2, 1, 4, 3)


def test_bohb_config_keys_and_values_are_checked():
    assert check_bohb_config({"top_n_percent": 30, "min_points_in_model": None}) == {
        "top_n_percent": 30, "min_points_in_model": None}
    with pytest.raises(InvalidConfigError, match=r"Unknown bohb_config option\(s\) \['top_n_pct'\]"):
        check_bohb_config({"top_n_pct": 30})
    with pytest.raises(InvalidConfigError, match="must be numbers"):
        check_bohb_config({"random_fraction": "a third"})


def test_an_unreachable_cluster_is_one_clear_error_not_minutes_of_retries(monkeypatch):
    """Ray retries an unreachable GCS for minutes; the sweep checks the address first."""
    import socket

    from automl_chars.errors import ClusterUnavailableError
    from automl_chars.runner import cluster

    monkeypatch.setattr(cluster.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(cluster.ray, "init", lambda **kw: pytest.fail("ray.init was called"))
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterUnavailableError, match=f"127.0.0.1:{port}: nothing answers"):
        cluster.connect(f"127.0.0.1:{port}")
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ClusterUnavailableError, match="ray start --head"):
        cluster.connect(None)
    assert cluster._reachable("auto") and cluster._reachable("ray://head:10001")


def test_a_bad_seed_is_refused_before_the_space_draws_from_it(tmp_path):
    from automl_chars import run_bohb

    with pytest.raises(InvalidConfigError, match=r"seed must be a whole number in \[0, 2\*\*32\)"):
        run_bohb("glyphs-digits", seed=-1, storage_path=tmp_path)


def test_a_cluster_lost_mid_run_is_a_resumable_error(tmp_path):
    """The cluster went away under ``fit()`` (its Ray actors died): the project's own error,
    naming the folder and how to resume, instead of Ray's traceback."""
    from ray.exceptions import ActorDiedError

    from automl_chars.errors import ClusterUnavailableError
    from automl_chars.runner.core import fit_to_the_end

    class LostCluster:
        def fit(self):
            raise ActorDiedError()

    with pytest.raises(ClusterUnavailableError) as err:
        fit_to_the_end(LostCluster(), tmp_path, num_trials=1, verbose=0)
    message = str(err.value)
    assert "Lost the Ray cluster during the run (ActorDiedError: The actor died" in message
    assert str(tmp_path) in message and "resume=True (CLI: --resume)" in message


def test_a_signal_during_fit_is_an_interrupted_run_whatever_the_statuses_say(tmp_path):
    """Tune's graceful stop saves its running trials' state, then marks them TERMINATED as it
    stops them: a grid whose trials all look ended is still an interrupted run after a signal
    (regression: such runs were written up as finished, their trials at an early budget)."""
    import signal
    from types import SimpleNamespace

    from automl_chars.errors import SweepInterrupted
    from automl_chars.runner.core import fit_to_the_end

    class Grid(list):  # what fit_to_the_end reads of a ResultGrid: results and statuses
        _experiment_analysis = SimpleNamespace(trials=[SimpleNamespace(trial_id="1",
                                                                       status="TERMINATED")])

    stops = []

    def fit():  # Tune installs its SIGUSR1 handler (a graceful stop), then Ctrl-C comes
        signal.signal(signal.SIGUSR1, lambda *a: stops.append("graceful"))
        os.kill(os.getpid(), signal.SIGINT)
        return Grid([SimpleNamespace(config={})])

    with pytest.raises(SweepInterrupted, match="SIGINT") as err:
        fit_to_the_end(SimpleNamespace(fit=fit), tmp_path, 1, verbose=0)
    assert err.value.exit_code == 130 and stops == ["graceful"]


@pytest.mark.parametrize("verbose,forwarded", [(0, False), (1, False), (2, True)])
def test_the_trials_own_output_reaches_the_console_only_from_verbose_2(monkeypatch, verbose,
                                                                       forwarded):
    """At the default verbosity the progress lines speak; what Ray's worker processes print (e.g.
    a SystemExit from Ray's SIGTERM handler while it stops idle workers) stays in Ray's logs."""
    from automl_chars.runner import cluster

    calls = []
    monkeypatch.setattr(cluster.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(cluster.ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr(cluster.ray, "cluster_resources", lambda: {"CPU": 2.0})
    line = cluster.connect("local", verbose)
    assert calls[0]["log_to_driver"] is forwarded and calls[0]["address"] == "local"
    assert line.startswith("Ray: started a local instance (2 CPUs, 0 GPUs)")
