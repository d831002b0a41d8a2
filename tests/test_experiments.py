"""Every experiment script runs end to end with --smoke (tiny budget, built-in data)."""

import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

EXPERIMENTS = sorted((Path(__file__).parents[1] / "experiments").glob("*.py"))

pytestmark = pytest.mark.slow


SEED_001_SCRIPTS = ("bohb_kmnist.py", "bohb_k49.py")


def test_every_experiment_is_covered():
    assert {p.name for p in EXPERIMENTS} >= {*SEED_001_SCRIPTS, "transfer_k49.py"}
    assert set(CHECKS) >= {p.name for p in EXPERIMENTS}, "add a check of the new script's output"


def _check_bohb_table(out: str, storage: Path) -> None:
    assert "Test Accuracy" in out
    tables = list(storage.glob("*-table.csv"))
    assert len(tables) == 1
    table = pd.read_csv(tables[0])
    assert list(table.columns) == ["dataset", "preset", "val_acc", "train_acc", "test_acc", "runtime_s"]
    assert table["dataset"].iloc[0].startswith("glyphs-")
    assert list(storage.glob("*/learning_curves.png"))


def _check_transfer_table(out: str, storage: Path) -> None:
    from automl_chars.workflows.transfer_table import ROWS, TABLE_FILE

    assert "glyphs-latin-upper -> glyphs-latin-lower" in out and "model transfer" in out
    table = pd.read_csv(next(storage.glob(f"*/{TABLE_FILE}")))
    assert list(table["row"]) == list(ROWS)
    assert table[["val_acc", "train_acc", "test_acc"]].notna().all().all()
    assert ((table["test_acc"] >= 0) & (table["test_acc"] <= 1)).all()


def _check_supernet(out: str, storage: Path) -> None:
    from automl_chars.supernet import SupernetResult

    assert "== uniform" in out and "== epsilon_greedy" in out and "Kendall tau" in out
    exp = storage / "supernet-glyphs-digits"
    for sampler in ("uniform", "epsilon_greedy"):
        result = SupernetResult.load(exp / sampler)
        assert len(result.table) == 4 and result.summary["dataset"] == "glyphs-digits"
        assert result.table[["supernet_acc", "standalone_acc"]].notna().all().all()
    assert (exp / "dynamics.png").exists() and (exp / "sampling_counts.png").exists()
    listed = [line.strip() for line in out.split("\nPlots:\n")[1].splitlines()
              if line.startswith("  ")]
    assert len(listed) == 2 * 3 + 2 and all(Path(p).stat().st_size for p in listed)
    assert {str(exp / s / "supernet_vs_standalone.png") for s in ("uniform", "epsilon_greedy")} \
        <= set(listed)
    assert len(pd.read_csv(exp / "standalone" / "trials.csv")) == 4  # trained once, shared


def _check_portfolio_k49(out: str, storage: Path) -> None:
    from automl_chars.similarity import MEASURES

    report = storage / "portfolio_k49-report"
    table = pd.read_csv(report / "table.csv")
    assert list(table["sweep"]) == ["warm", "cold"]
    assert ((table["test_acc"] >= 0) & (table["test_acc"] <= 1)).all()
    warm, cold = table.set_index("sweep").loc["warm"], table.set_index("sweep").loc["cold"]
    assert warm["seeded"] >= 1 and cold["seeded"] == 0, table
    sim = pd.read_csv(report / "similarity.csv", index_col=0)
    assert set(MEASURES.names()) - {"task2vec"} <= set(sim.columns) and len(sim) == 2
    assert (report / "similarity.png").stat().st_size and (report / "trajectory.png").stat().st_size
    assert "portfolio:glyphs-" in out and "Trajectory:" in out


def _check_valleys(out: str, storage: Path) -> None:
    from automl_chars.workflows.valleys import ARMS, load_valley_study

    result = load_valley_study(storage)
    assert list(result.summary["arm"]) == [*ARMS, *ARMS]
    assert result.summary[["distance", "barrier", "ensemble_acc"]].notna().all().all()
    assert set(result.path_losses["alpha"]) == {0.0, 0.5, 1.0}
    assert (storage / "valleys.png").stat().st_size
    assert "Ensemble of the first minima" in out and "Summary" in out


#: What each script's --smoke must print and write.
CHECKS = {**dict.fromkeys(SEED_001_SCRIPTS, _check_bohb_table),
          "transfer_k49.py": _check_transfer_table, "supernet_mnist.py": _check_supernet,
          "portfolio_k49.py": _check_portfolio_k49, "valleys.py": _check_valleys}


#: Scripts that run in one process, without Ray (no Ray is started for them).
WITHOUT_RAY = ("valleys.py",)


#: Scripts whose smoke run another test makes, checked there: bohb_k49 runs in
#: test_resume_continues_each_preset_where_it_is (and as a Ray job in test_jobs.py); its
#: --storage-less smoke path is bohb_kmnist's, the same code.
SMOKED_ELSEWHERE = ("bohb_k49.py",)


@pytest.mark.parametrize("script", [p for p in EXPERIMENTS if p.name not in SMOKED_ELSEWHERE],
                         ids=lambda p: p.stem)
def test_experiment_smoke(script, request, data_root, tmp_path, monkeypatch, capsys):
    """Without --storage, as a new user runs it: the results go to a fresh temporary folder, and
    the user's results root (where runs of the same default names may be) stays untouched."""
    import tempfile

    if script.name not in WITHOUT_RAY:
        request.getfixturevalue("ray_session")

    monkeypatch.setenv("AUTOML_CHARS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(sys, "argv", [str(script), "--smoke", "--verbose", "0"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    (storage,) = (tmp_path / "tmp").glob(f"{script.stem}-smoke-*")
    assert f"Smoke run: results in {storage}" in out
    assert not (tmp_path / "results").exists()
    CHECKS[script.name](out, storage)


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
        out = capsys.readouterr().out
        assert expected in out
        CHECKS[script.name](out, tmp_path)  # what its smoke run must print and write
    # A finished sweep is only read back for the same settings: another seed is another sweep.
    monkeypatch.setattr(sys, "argv", [*argv, "--seed", "1"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 2
    assert "different settings" in capsys.readouterr().err
