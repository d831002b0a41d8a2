"""Every experiment script runs end to end with --smoke (tiny budget, built-in data)."""

import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

EXPERIMENTS = sorted((Path(__file__).parents[1] / "experiments").glob("*.py"))
#: Seed 001's sweep scripts (``run_experiment``) print seed 001's table; the others (seed 002's
#: supernet) are run by their own tests (tests/supernet/test_supernet_experiment.py).
SWEEP_EXPERIMENTS = [p for p in EXPERIMENTS if "run_experiment(" in p.read_text()]

pytestmark = pytest.mark.slow


def test_every_experiment_is_covered():
    assert {p.name for p in SWEEP_EXPERIMENTS} >= {"bohb_kmnist.py", "bohb_k49.py"}
    others = {p.name for p in EXPERIMENTS} - {p.name for p in SWEEP_EXPERIMENTS}
    assert others <= {"supernet_mnist.py"}, f"{others}: add a --smoke test for each"


@pytest.mark.parametrize("script", SWEEP_EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_smoke(script, ray_session, data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(script), "--smoke", "--storage", str(tmp_path),
                                      "--verbose", "0"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "Test Accuracy" in out
    tables = list(tmp_path.glob("*-table.csv"))
    assert len(tables) == 1
    table = pd.read_csv(tables[0])
    assert list(table.columns) == ["dataset", "preset", "val_acc", "train_acc", "test_acc", "runtime_s"]
    assert table["dataset"].iloc[0].startswith("glyphs-")
    assert list(tmp_path.glob("*/learning_curves.png"))


def test_resume_continues_each_preset_where_it_is(ray_session, data_root, tmp_path, monkeypatch,
                                                  capsys):
    """--resume on a fresh storage starts the sweep; on a finished one it reads it back."""
    script = next(p for p in EXPERIMENTS if p.name == "bohb_k49.py")
    argv = [str(script), "--smoke", "--resume", "--storage", str(tmp_path), "--verbose", "0"]
    for expected in ("configurations from BOHB's model", "finished earlier"):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(script), run_name="__main__")
        assert done.value.code == 0
        assert expected in capsys.readouterr().out
    # A finished sweep is only read back for the same settings: another seed is another sweep.
    monkeypatch.setattr(sys, "argv", [*argv, "--seed", "1"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 2
    assert "different settings" in capsys.readouterr().err
