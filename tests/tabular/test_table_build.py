"""``build_table`` and ``automl-chars table``: the rows a run becomes (no Ray), settings refused
before Ray, and a tiny build on two glyph domains killed part-way and resumed (Ray)."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from ConfigSpace import Configuration
from ray.tune.callback import Callback
from support import kill_driver_after

from automl_chars import data
from automl_chars.cli.main import main
from automl_chars.errors import InvalidConfigError, TableError
from automl_chars.spaces import cnn_space, default_config
from automl_chars.tabular import COLUMNS, METRICS, LearningCurveTable, manifest_for
from automl_chars.workflows.table import build_table, curve_rows, draw_configs, job_label

DOMAINS = ("glyphs-digits", "glyphs-hebrew")
PER_CLASS = 4
N_CONFIGS = 3
EPOCHS = 2

DRIVER = textwrap.dedent("""
    import sys
    import ray
    ray.init(log_to_driver=False)  # joins RAY_ADDRESS: the test session's Ray
    from automl_chars.cli.main import main
    sys.exit(main(["table", "build", "--datasets", {datasets!r}, "--configs", "{n}",
                   "--epochs", "{epochs}", "--samples-per-class", "{per_class}",
                   "--out", {out!r}, "--storage", {storage!r}, "--verbose", "0"]))
""")


def test_configs_are_the_default_then_distinct_draws_of_the_seed():
    configs = draw_configs(5, seed=3)
    assert list(configs) == [0, 1, 2, 3, 4, 5] and configs[0] == default_config()
    assert draw_configs(5, seed=3) == configs and draw_configs(5, seed=4) != configs
    assert len({tuple(sorted(c.items())) for c in configs.values()}) == 6
    space = cnn_space()
    for config in configs.values():
        Configuration(space, values=config)  # a valid configuration of the full space
    assert draw_configs(0, seed=1) == {0: default_config()}
    with pytest.raises(InvalidConfigError, match="n_configs"):
        draw_configs(-1, seed=0)


def test_a_run_becomes_every_row_failures_included():
    trials = pd.DataFrame([
        {"label": job_label("a", 0), "status": "TERMINATED", "error": math.nan},
        {"label": job_label("a", 1), "status": "FAILED", "error": "loss diverged at budget 2"},
        {"label": job_label("a", 2), "status": "FAILED", "error": "cannot be built"},
        {"label": job_label("a", 3), "status": "ERROR", "error": "actor died"},
    ])
    ok = {"val_acc": 0.5, "val_loss": 1.0, "test_acc": 0.4, "test_loss": 1.2, "train_acc": 0.6,
          "train_loss": 0.9, "epoch_s": 0.3, "num_params": 100}
    history = pd.DataFrame([
        {"label": "a/0", "training_iteration": 1, **ok},
        {"label": "a/0", "training_iteration": 2, **ok, "val_acc": 0.7},
        {"label": "a/1", "training_iteration": 1, **ok},
        {"label": "a/1", "training_iteration": 2, "val_acc": math.nan, "failure": "diverged"},
        {"label": "a/2", "training_iteration": 1, "val_acc": math.nan, "failure": "cannot"},
        {"label": "a/2", "training_iteration": 2, "val_acc": math.nan, "failure": "cannot"},
    ])
    rows = curve_rows(trials, history, epochs=2)
    assert list(rows.columns) == list(COLUMNS) and len(rows) == 8
    r = rows.set_index(["config_id", "epoch"])
    assert r.loc[(0, 2), "val_acc"] == 0.7 and r.loc[(0, 1), "epoch_seconds"] == 0.3
    assert r.loc[(1, 1), "val_acc"] == 0.5 and math.isnan(r.loc[(1, 2), "val_acc"])
    assert r.loc[(1, 2), "status"] == "FAILED" and "diverged" in r.loc[(1, 2), "error"]
    assert r.loc[[2, 3], "val_acc"].isna().all() and (rows["dataset"] == "a").all()
    assert r.loc[(3, 1), "error"] == "actor died" and r.loc[(0, 1), "error"] == ""


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(datasets=[]), "list of dataset names"),
    (dict(datasets="glyphs-digits"), "list of dataset names"),
    (dict(datasets=["glyphs-digits", "glyphs-digits"]), "distinct"),
    (dict(max_epochs=0), "max_epochs"),
    (dict(samples_per_class=0), "samples_per_class"),
    (dict(n_configs=1.5), "n_configs"),
])
def test_bad_settings_are_refused_before_data_or_ray(kwargs, fragment, tmp_path):
    args = {"datasets": ["glyphs-digits"], "n_configs": 1, "max_epochs": 1,
            "storage_path": tmp_path, **kwargs}
    with pytest.raises(InvalidConfigError, match=fragment):
        build_table(**args)
    assert not any(tmp_path.iterdir())  # no run folder: refused before Ray


def test_an_existing_table_is_not_overwritten(tmp_path):
    out = tmp_path / "t.parquet"
    out.write_bytes(b"x")
    with pytest.raises(TableError, match="already exists.*resume"):
        build_table(["glyphs-digits"], 1, 1, storage_path=tmp_path, out=out)


def test_cli_errors_before_ray(tmp_path, data_root, capsys):
    assert main(["table", "build", "--datasets", "glyphs-nope", "--configs", "1", "--epochs",
                 "1", "--out", str(tmp_path / "t.parquet"), "--storage", str(tmp_path)]) == 2
    assert "glyphs-" in capsys.readouterr().err
    assert main(["table", "show", str(tmp_path / "none.parquet")]) == 2
    assert "No learning-curve table at" in capsys.readouterr().err


def test_show_imports_neither_ray_nor_torch(tmp_path):
    """Reading a table needs pandas and pyarrow only: fast, and fine where Ray is absent."""
    from table_helpers import make_table

    path = make_table().save(tmp_path / "t.parquet")
    code = ("import sys; from automl_chars.cli.main import main; rc = main(['table', 'show', "
            "sys.argv[1]]); print('MODULES', 'ray' in sys.modules, 'torch' in sys.modules); "
            "sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "MODULES False False" in out.stdout and "best@3" in out.stdout
    assert "3 configurations x 2 datasets x 3 epochs" in out.stdout


@pytest.fixture(scope="module")
def glyph_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for name in DOMAINS:
        data.load(name, root=root, samples_per_class=PER_CLASS)  # generate the caches once
    return root


@pytest.mark.slow
def test_a_killed_build_resumes_and_ends_with_every_row(ray_session, ray_address, glyph_root,
                                                        tmp_path, monkeypatch, capsys):
    out = tmp_path / "curves.parquet"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(datasets=",".join(DOMAINS), n=N_CONFIGS, epochs=EPOCHS,
                                    per_class=PER_CLASS, out=str(out), storage=str(tmp_path)))
    run = tmp_path / "table-curves"
    finished = kill_driver_after(script, glyph_root, run, finished=2, ray_address=ray_address)
    assert not out.exists()

    monkeypatch.setenv("AUTOML_CHARS_DATA", str(glyph_root))
    argv = ["table", "build", "--datasets", ",".join(DOMAINS), "--configs", str(N_CONFIGS),
            "--epochs", str(EPOCHS), "--samples-per-class", str(PER_CLASS), "--out", str(out),
            "--storage", str(tmp_path), "--verbose", "0"]
    assert main(argv) == 2  # the killed run is there: without --resume it is refused
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert "Learning-curve table" in capsys.readouterr().out

    table = LearningCurveTable.load(out)
    frame = table.frame
    assert len(frame) == len(DOMAINS) * (N_CONFIGS + 1) * EPOCHS
    assert table.datasets == list(DOMAINS) and table.epochs == EPOCHS
    assert table.configs == draw_configs(N_CONFIGS, seed=0)
    table.check_space(cnn_space())
    ok = frame[frame["status"] == "TERMINATED"]
    assert len(ok) >= EPOCHS * 2
    for column in ("val_acc", "val_loss", "test_acc", "test_loss", "train_acc", "train_loss",
                   "epoch_seconds", "num_params"):
        assert ok[column].notna().all(), column
    assert ((ok["val_acc"] >= 0) & (ok["val_acc"] <= 1)).all()
    # test metrics differ from validation ones: the test split is evaluated, not copied
    assert not (ok["test_loss"] == ok["val_loss"]).all()
    m = table.manifest
    assert [d["name"] for d in m.datasets] == list(DOMAINS) and m.samples_per_class == PER_CLASS
    assert all(d["meta_features"] and d["fingerprint"] for d in m.datasets)
    assert m.hardware["devices"] == ["cpu"]
    for tid in finished:  # kept, not trained again: one run's results in the trial's folder
        progress = next(run.glob(f"*_{tid}")) / "progress.csv"
        # (at most: Tune's CSV logger, in the driver, may not have written the last row before
        # the kill; the table has that epoch all the same, from the trial's checkpoint)
        assert 1 <= len(progress.read_text().strip().splitlines()) - 1 <= EPOCHS
    # the last epoch's test accuracy is the final model's, which run_trials evaluates again
    trials = pd.read_csv(run / "trials.csv")
    for row in trials[trials["status"] == "TERMINATED"].itertuples():
        ds, cid = row.label.rsplit("/", 1)
        assert table.curve(int(cid), ds).loc[EPOCHS, "test_acc"] == pytest.approx(row.test_acc)

    assert main([*argv, "--resume"]) == 0  # a finished build is read back, not trained again
    assert main(["table", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in DOMAINS) and "best@2" in shown

    # A table shipped without its run folder: resume reads it back if it is this build's
    shutil.rmtree(run)
    kwargs = dict(samples_per_class=PER_CLASS, storage_path=tmp_path, resume=True, out=out)
    again = build_table(DOMAINS, N_CONFIGS, EPOCHS, **kwargs)
    pd.testing.assert_frame_equal(again.frame, frame)
    with pytest.raises(TableError, match="another build.*epochs"):
        build_table(DOMAINS, N_CONFIGS, EPOCHS + 1, **kwargs)
    assert not run.exists()


class KillFirst(Callback):
    """SIGKILLs the process of the first trial to report (a machine's failure: with no retries
    left the trial ends in Ray's ERROR), and of every first report after a restore, should
    the run bring it back."""

    def __init__(self):
        self.killed = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if not self.killed:
            self.killed.append(result["pid"])
            os.kill(result["pid"], signal.SIGKILL)


class Seen(Callback):
    def __init__(self):
        self.results = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results.append(result["training_iteration"])


@pytest.mark.slow
def test_an_errored_trial_is_never_a_row_and_a_resume_trains_it_again(ray_session, glyph_root,
                                                                       tmp_path):
    out = tmp_path / "slice.parquet"
    kwargs = dict(samples_per_class=PER_CLASS, storage_path=tmp_path, out=out, verbose=0,
                  data_root=glyph_root, config_ids=[1, 2], name="slice")
    killer = KillFirst()
    with pytest.raises(TableError, match=r"1 trials .* errored.*glyphs-digits/[12] .*"
                                         r"Run the same build again"):
        build_table(["glyphs-digits"], N_CONFIGS, EPOCHS, max_failures=0, callbacks=[killer],
                    **kwargs)
    assert killer.killed and not out.exists()
    # the resume runs the callbacks it is given, not the killer the run started with
    seen = Seen()
    table = build_table(["glyphs-digits"], N_CONFIGS, EPOCHS, resume=True, callbacks=[seen],
                        **kwargs)
    assert seen.results == [1, 2]  # the errored trial's epochs, trained again
    assert sorted(table.configs) == [1, 2]
    frame = table.frame
    assert (frame["status"] == "TERMINATED").all() and frame["val_acc"].notna().all()
    assert len(frame) == 2 * EPOCHS
    trials = pd.read_csv(tmp_path / "slice" / "trials.csv")
    assert (trials["status"] == "TERMINATED").all()


def test_slices_of_a_build_join_into_the_whole_and_refuse_other_builds():
    rows = pd.DataFrame([{"config_id": c, "dataset": "d", "epoch": 1, "status": "TERMINATED",
                          "error": "", **{m: 0.5 for m in METRICS}} for c in range(4)])
    configs = draw_configs(3, seed=0)
    whole = LearningCurveTable(rows, manifest_for([{"name": "d"}], configs, cnn_space(), 1))
    a, b = whole.select([0, 1]), whole.select([3, 2])
    assert sorted(b.configs) == [2, 3] and len(b.frame) == 2
    joined = LearningCurveTable.join_configs([b, a])
    pd.testing.assert_frame_equal(joined.frame, whole.frame)
    assert joined.configs == whole.configs
    with pytest.raises(TableError, match="repeat the configurations \\[1\\]"):
        LearningCurveTable.join_configs([a, whole.select([1, 2])])
    other = LearningCurveTable(rows.assign(dataset="e"),
                               manifest_for([{"name": "e"}], configs, cnn_space(), 1))
    with pytest.raises(TableError, match="not slices of one build: their datasets differ"):
        LearningCurveTable.join_configs([a, other.select([2, 3])])
    with pytest.raises(InvalidConfigError, match="No configurations \\[7\\]"):
        whole.select([7])
    with pytest.raises(InvalidConfigError, match="config_ids must be ids"):
        build_table(["glyphs-digits"], 3, 1, config_ids=[5])
