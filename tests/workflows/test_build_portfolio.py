"""``build_portfolio`` through Ray (and its CLI): killed mid-build, resumed, finished entries kept."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from support import kill_driver_after

from automl_chars import data
from automl_chars.cli.main import main
from automl_chars.errors import PortfolioError
from automl_chars.portfolio import Portfolio, build_portfolio
from automl_chars.store import ResultsStore
from automl_chars.training import DeviceData, evaluate
from automl_chars.workflows.portfolio import TRAINING_RUN

pytestmark = pytest.mark.slow

SOURCES = ("glyphs-digits", "glyphs-greek", "glyphs-hebrew")
PER_CLASS = 6
CONFIG = {"conv1_channels": 8, "optimizer": "adam", "learning_rate": 0.01, "batch_size": 32}
EPOCHS = 2

DRIVER = textwrap.dedent("""
    import sys
    import ray
    ray.init(log_to_driver=False)  # joins RAY_ADDRESS: the test session's Ray
    from automl_chars.cli.main import main
    sys.exit(main(["portfolio", "build", "--sources", {sources!r}, "--model", "cnn",
                   "--config", {config!r}, "--epochs", "{epochs}", "--samples-per-class",
                   "{per_class}", "--out", {out!r}, "--verbose", "0"]))
""")


@pytest.fixture(scope="module")
def glyph_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for name in SOURCES:
        data.load(name, root=root, samples_per_class=PER_CLASS)  # generate the caches once
    return root


def test_a_killed_build_resumes_and_keeps_finished_entries(ray_session, ray_address, glyph_root, tmp_path,
                                                           monkeypatch, capsys):
    out = tmp_path / "pf"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(sources=",".join(SOURCES), config=json.dumps(CONFIG),
                                    epochs=EPOCHS, per_class=PER_CLASS, out=str(out)))
    run = out / TRAINING_RUN
    finished = kill_driver_after(script, glyph_root, run, finished=1, ray_address=ray_address)
    assert not (out / "manifest.json").exists()

    monkeypatch.setenv("AUTOML_CHARS_DATA", str(glyph_root))
    with pytest.raises(PortfolioError, match="resume"):
        (out / "manifest.json").write_text('{"version": 1, "entries": []}')
        build_portfolio(SOURCES, "cnn", CONFIG, EPOCHS, storage_path=tmp_path, name="pf")
    (out / "manifest.json").unlink()
    datasets = [data.load(n, samples_per_class=PER_CLASS) for n in SOURCES]
    portfolio = build_portfolio(datasets, "cnn", CONFIG, EPOCHS, storage_path=tmp_path,
                                name="pf", resume=True, verbose=0)

    assert portfolio.names() == list(SOURCES)
    e = portfolio.entries.set_index("name")
    assert (e["epochs"] == EPOCHS).all() and (e["model"] == "cnn").all()
    assert e.loc["glyphs-greek", "num_classes"] == datasets[1].num_classes
    for ds in datasets:  # the stored weights are the final model the run evaluated
        entry = portfolio.entry(ds.name)
        test = DeviceData.create(ds.x_test, ds.y_test, torch.device("cpu"), entry.mean, entry.std)
        assert evaluate(portfolio.model(ds.name), test)[1] == pytest.approx(entry.test_acc)
    for tid in finished:  # kept, not trained again: one run's results in the trial's folder
        progress = next(run.glob(f"*_{tid}")) / "progress.csv"
        assert len(progress.read_text().strip().splitlines()) - 1 == EPOCHS
    stored = ResultsStore(tmp_path / "store").frame()
    assert sorted(stored["dataset"]) == sorted(SOURCES) and (stored["kind"] == "portfolio").all()
    reloaded = Portfolio.load(out)
    assert reloaded.model("glyphs-hebrew").head.out_features == datasets[2].num_classes

    assert main(["portfolio", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in SOURCES) and "%" in shown


def test_cli_errors_before_ray(tmp_path, capsys):
    assert main(["portfolio", "build", "--sources", "glyphs-nope", "--out",
                 str(tmp_path / "x")]) == 2
    assert "glyphs-" in capsys.readouterr().err
    assert main(["portfolio", "show", str(tmp_path)]) == 2
    assert "not a portfolio" in capsys.readouterr().err
    assert main(["portfolio", "build", "--sources", "glyphs-digits", "--config", "{bad",
                 "--out", str(tmp_path / "x")]) == 2
    assert "JSON" in capsys.readouterr().err


def test_each_source_trains_as_a_job_described_by_its_source(make_dataset, tmp_path,
                                                             monkeypatch):
    """The jobs build_portfolio hands run_trials carry "source <name>", which the progress
    lines print instead of an anonymous trial (tests/search: run_trials prints descriptions)."""
    from automl_chars.runner import trials

    class Stop(Exception):
        pass

    seen = []

    def record(jobs, *args, **kwargs):
        seen.extend(jobs)
        raise Stop

    monkeypatch.setattr(trials, "run_trials", record)
    datasets = [make_dataset("a", num_classes=3), make_dataset("b", num_classes=4, seed=1)]
    with pytest.raises(Stop):
        build_portfolio(datasets, "cnn", CONFIG, 1, storage_path=tmp_path, name="pf")
    assert [(j.label, j.description) for j in seen] == [("a", "source a"), ("b", "source b")]
