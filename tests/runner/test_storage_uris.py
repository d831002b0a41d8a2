"""Storage URIs: a sweep's storage path, a results store and a portfolio at ``s3://`` (a local
S3-compatible server, moto's, started here), written by Ray Tune and the platform alike, read
back on another machine (an empty mirror cache) and resumed; bad URIs refused before Ray."""

from __future__ import annotations

import os
import signal
import socket
import textwrap

import pandas as pd
import pytest
from ray.tune.callback import Callback
from support import BUCKET, listing, s3_uri, uri_of

from automl_chars import uris
from automl_chars.errors import InvalidConfigError
from automl_chars.layout import read_json, write_json


def test_a_uri_stands_for_its_mirror_and_back(cache):
    uri = "s3://key:secret@bkt/a/b?scheme=http&endpoint_override=localhost:1"
    local = uris.mirror(uri)
    assert local.is_relative_to(uris.cache_root()) and local.parts[-2:] == ("a", "b")
    assert uris.remote_for(local) == uri
    assert uris.remote_for(local / "run" / "trials.csv") == (
        "s3://key:secret@bkt/a/b/run/trials.csv?scheme=http&endpoint_override=localhost:1")
    assert uris.remote_for(local.parent) == uri.replace("/a/b?", "/a?")
    assert uris.local_path("file:///tmp/x/../y") == uris.local_path("/tmp/y")
    assert uris.remote_for(uris.local_path("/tmp/y")) is None
    assert not uris.is_uri("file:///tmp/y") and uris.is_uri("gs://b/p")
    # messages and stored records name the URI, never its credentials
    assert uris.shown(local / "run") == "s3://bkt/a/b/run?scheme=http&endpoint_override=localhost:1"
    assert uris.shown(local / "run", query=False) == "s3://bkt/a/b/run"
    assert uris.shown("/tmp/y") == "/tmp/y"
    with pytest.raises(InvalidConfigError, match="'..' are not allowed"):
        uris.mirror("s3://bkt/a/../b")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("uri,fragment", [
    ("nosuch://bucket/path", "storage_path 'nosuch://bucket/path': Unrecognized filesystem"),
    # a closed port, chosen when the test runs (test ids must not change between xdist workers)
    ("s3://k:s@b/p?scheme=http&endpoint_override=127.0.0.1:{port}", "cannot be reached"),
])
def test_a_bad_storage_uri_is_refused_before_ray_starts(cache, monkeypatch, uri, fragment):
    uri = uri.format(port=_closed_port())
    from automl_chars import run_bohb
    from automl_chars.runner import cluster

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was joined")

    monkeypatch.setattr(cluster, "join", no_ray)
    monkeypatch.setattr(cluster, "precheck", no_ray)
    with pytest.raises(InvalidConfigError) as err:
        run_bohb("glyphs-digits", storage_path=uri, preset="3_1_3_1")
    assert fragment in str(err.value) and "storage_path" in str(err.value)


def test_the_cli_names_storage_and_a_missing_bucket(cache, s3_server, capsys):
    from automl_chars.cli.main import main

    assert main(["bohb", "--dataset", "glyphs-digits", "--storage",
                 s3_uri(s3_server, "x", bucket="nobucket")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --storage 's3://") and "there is no bucket 'nobucket'" in err


def test_the_platforms_files_land_at_the_uri_and_read_back_elsewhere(cache, s3_server, bucket):
    from automl_chars.layout import experiment_dir
    from automl_chars.store import ResultsStore
    from automl_chars.store.store import rows

    folder = experiment_dir(s3_uri(s3_server, "root"), "run")
    folder.mkdir(parents=True)
    write_json(folder / "summary.json", {"a": 1})
    store = ResultsStore(s3_uri(s3_server, "store"))
    store.write("k", rows("sweep", "d", "fp", "cnn", [{"config": {}, "budget": 1,
                                                      "val_acc": 0.5}], "f"))
    assert listing(bucket, "root") == {"run/summary.json"}
    assert len(listing(bucket, "store")) == 1
    cache("machine-2")  # another machine: nothing mirrored yet
    again = experiment_dir(s3_uri(s3_server, "root"), "run")
    assert again != folder and read_json(again / "summary.json", "") == {"a": 1}
    assert ResultsStore(s3_uri(s3_server, "store")).frame()["val_acc"].tolist() == [0.5]
    bucket.delete_file(f"{BUCKET}/root/run/summary.json")  # a file gone there is gone here
    assert not (experiment_dir(s3_uri(s3_server, "root"), "run") / "summary.json").exists()
    # in subfolders too (a trial's log moved aside there), and removed here, gone there
    trial = again / "trial_1"
    trial.mkdir()
    write_json(trial / "progress.json", {"b": 2})
    assert uris.pull(again, recursive=True) == again and (trial / "progress.json").exists()
    bucket.move(f"{BUCKET}/root/run/trial_1/progress.json", f"{BUCKET}/root/run/aside.json")
    uris.pull(again, recursive=True)
    assert not (trial / "progress.json").exists() and (again / "aside.json").exists()
    uris.remove(again / "aside.json")
    assert listing(bucket, "root") == set()


class InterruptAfter(Callback):
    """Ctrl-C (SIGINT to this driver) once ``n`` results have come."""

    def __init__(self, n: int):
        self.n, self.seen = n, 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen += 1
        if self.seen == self.n:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(scope="module")
def glyph_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def glyphs(glyph_root):
    from automl_chars import data

    return data.load("glyphs-digits", root=glyph_root, samples_per_class=12)


@pytest.mark.slow
def test_a_sweep_to_s3_lands_there_and_is_shown_and_resumed_elsewhere(
        ray_session, glyphs, cache, s3_server, bucket, capsys, one_thread):
    from automl_chars import run_bohb
    from automl_chars.cli.main import main
    from automl_chars.runner.result import SweepResult
    from automl_chars.spaces import cnn_space, subspace

    storage = s3_uri(s3_server, "team")
    kwargs = dict(space=subspace(cnn_space(), ["learning_rate"], seed=0), preset="3_1_3_1",
                  storage_path=storage, name="glyphs", priors=False, verbose=0)
    result = run_bohb(glyphs, **kwargs)
    trials = result.trials
    assert (trials["status"] == "TERMINATED").all() and trials["budget"].max() == 3
    stored = listing(bucket, "team/glyphs")
    assert {"summary.json", "trials.csv", "automl_chars.json"} <= stored
    assert any(f.startswith("experiment_state") for f in stored)  # Tune's own, at the URI
    per_trial = {f.split("/")[0] for f in stored if f.endswith("/progress.csv")}
    assert per_trial == {f"CNNTrainable_{t}" for t in trials["trial_id"]}
    assert any("/checkpoint_" in f for f in stored)
    assert listing(bucket, "team/store")  # the store beside the sweep, at the URI too

    cache("machine-2")  # another machine: only the bucket has the sweep
    shown = SweepResult.load(uri_of(storage, "glyphs"))
    cols = ["trial_id", "status", "budget", "val_acc", "config/learning_rate"]
    pd.testing.assert_frame_equal(shown.trials[cols], trials[cols], check_dtype=False)
    assert shown.incumbent == result.incumbent
    capsys.readouterr()
    assert main(["show", uri_of(storage, "glyphs")]) == 0
    assert "Incumbent:" in capsys.readouterr().out
    cache("machine-3")  # a finished sweep resumed is read back, from the bucket
    again = run_bohb(glyphs, resume=True, **kwargs)
    assert again.incumbent_trial_id == result.incumbent_trial_id


DRIVER = textwrap.dedent("""
    import ray
    ray.init(log_to_driver=False)  # joins RAY_ADDRESS: the test session's Ray
    from automl_chars import data
    from automl_chars.runner.trials import TrialJob, run_trials
    ds = data.load("glyphs-digits", samples_per_class=12)
    jobs = [TrialJob(f"lr{{lr}}", ds, {{"learning_rate": lr}}) for lr in (0.01, 0.001)]
    run_trials(jobs, "cnn", 2, name="jobs", storage_path={storage!r}, verbose=0,
               cpus_per_trial=2)
""")


@pytest.mark.slow
def test_jobs_at_s3_whose_driver_died_resume_on_another_machine_with_their_checkpoints(
        ray_session, ray_address, glyph_root, glyphs, cache, s3_server, bucket, tmp_path,
        one_thread):
    from support import kill_driver_after

    from automl_chars.runner.trials import TrialJob, TrialsResult, run_trials

    storage = s3_uri(s3_server, "team")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(storage=storage))
    # one trial at a time (2 CPUs each): the first has finished when the driver dies
    finished = kill_driver_after(script, glyph_root, uri_of(storage, "jobs"), finished=1,
                                 ray_address=ray_address)
    assert len(finished) == 1
    stored = listing(bucket, "team/jobs")
    assert "automl_chars.json" in stored and "summary.json" not in stored

    cache("machine-2")  # resumed from another machine: only the bucket has the run
    jobs = [TrialJob(f"lr{lr}", glyphs, {"learning_rate": lr}) for lr in (0.01, 0.001)]
    run = run_trials(jobs, "cnn", 2, name="jobs", storage_path=storage, verbose=0,
                     cpus_per_trial=2, resume=True)
    table = run.table.set_index("trial_id")
    assert (table["status"] == "TERMINATED").all() and (table["epochs"] == 2).all()
    assert table["checkpoint"].str.startswith("s3://testing:testing@sweeps/team/jobs/").all()
    assert {"summary.json", "trials.csv", "history.csv"} <= listing(bucket, "team/jobs")
    cache("machine-3")
    loaded = TrialsResult.load(uri_of(storage, "jobs"))
    history = loaded.history.set_index("trial_id")
    for tid in finished:  # kept, not trained again: its one run of 2 epochs
        assert list(history.loc[[tid], "training_iteration"]) == [1, 2]
    ckpt = loaded.checkpoint("lr0.01")  # downloaded from the bucket
    assert ckpt.is_relative_to(uris.cache_root()) and any(ckpt.iterdir())
