from pathlib import Path

import pandas as pd
import pytest

from automl_chars.cli.main import main

GLYPH_ARGS = ["--samples-per-class", "6", "--verbose", "0"]


def test_datasets_lists_every_dataset_with_availability(data_root, capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert str(data_root) in out
    for name, status in (("kmnist", "missing"), ("k49", "missing"), ("emnist-letters", "missing"),
                         ("omniglot-background", "missing"), ("glyphs-greek", "built-in"),
                         ("cifar10", "missing"), ("rgb-glyphs-greek", "built-in")):
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert status in line


@pytest.mark.parametrize("argv,fragment", [
    (["bohb", "--dataset", "kmnsit"], "Did you mean 'kmnist'"),
    (["bohb", "--dataset", "kmnist"], "http"),
    (["bohb", "--dataset", "glyphs-digits", "--preset", "3_1_9"], "eta_min_max_iterations"),
    (["bohb", "--dataset", "kmnist", "--samples-per-class", "5"], "does not take"),
    (["show", "/nonexistent/sweep"], "/nonexistent/sweep does not exist: pass a sweep's folder"),
    (["bohb", "--dataset", "glyphs-digits", "--workers-per-trial", "0", *GLYPH_ARGS],
     "--workers-per-trial must be a whole number >= 1"),
    (["bohb", "--dataset", "glyphs-digits", "--restart-errored"],
     "--restart-errored acts on a resume: add --resume"),
    (["train", "mnist1", "--restart-errored"], "--restart-errored acts on a resume"),
    (["supernet", "--dataset", "glyphs-digits", "--darts-warm-start", "/pf"],
     "--darts-warm-start belong(s) to DARTS: add --sampler darts"),
    (["supernet", "--dataset", "glyphs-digits", "--sampler", "darts", "--darts-measure", "logme"],
     "add --darts-warm-start PORTFOLIO"),
    (["supernet", "--dataset", "glyphs-digits", "--sampler", "darts", "--darts-warm-start",
      "/nonexistent/pf"], "--darts-warm-start /nonexistent/pf: no portfolio folder"),
])
def test_bad_input_is_one_clear_error(data_root, capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err


@pytest.mark.slow
def test_bohb_then_show(ray_session, data_root, tmp_path, capsys):
    argv = ["bohb", "--dataset", "glyphs-digits", "--preset", "2_1_2_1", "--storage",
            str(tmp_path), "--name", "cli", "--plot", "--fidelity", "subset", *GLYPH_ARGS]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Validation Accuracy" in out and "Test Accuracy" in out and "glyphs-digits" in out
    assert (tmp_path / "cli" / "learning_curves.png").exists()
    trials = pd.read_csv(tmp_path / "cli" / "trials.csv")
    # Data-subset budgets: budget 1 of 2 trains on half of the training set.
    assert set(trials["data_fraction"]) <= {0.5, 1.0} and 0.5 in set(trials["data_fraction"])
    assert main(["show", str(tmp_path / "cli")]) == 0
    shown = capsys.readouterr().out
    assert "Incumbent:" in shown and "2_1_2_1" in shown
    assert main(argv) == 2  # exists already: needs --resume
    assert "--resume" in capsys.readouterr().err


def test_show_imports_neither_ray_nor_torch(tmp_path):
    """Reading a finished sweep must be fast and work where Ray or torch are not installed."""
    import json
    import subprocess
    import sys

    (tmp_path / "trials.csv").write_text(
        "trial_id,status,suggested_by,budget,val_acc,train_acc,num_params,timestamp\n"
        "a1,TERMINATED,random,3,0.9,0.95,100,20.0\n")
    (tmp_path / "summary.json").write_text(json.dumps({
        "incumbent": {"learning_rate": 0.01}, "incumbent_trial_id": "a1", "test_accuracy": 0.85,
        "settings": {"dataset": "glyphs-digits", "preset": "3_1_3_1", "started_at": 10.0}}))
    code = ("import sys; from automl_chars.cli.main import main; rc = main(['show', sys.argv[1]]);"
            "print('MODULES', 'ray' in sys.modules, 'torch' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "85.00%" in out.stdout and "MODULES False False" in out.stdout


def _finished_sweep(folder, n_trials=1):
    """A finished sweep's files, as ``show`` reads them (no Ray, no training)."""
    import json

    rows = "".join(f"a{i},TERMINATED,random,3,0.9,0.95,100,20.0\n" for i in range(n_trials))
    (folder / "trials.csv").write_text(
        "trial_id,status,suggested_by,budget,val_acc,train_acc,num_params,timestamp\n" + rows)
    (folder / "summary.json").write_text(json.dumps({
        "incumbent": {"learning_rate": 0.01}, "incumbent_trial_id": "a0", "test_accuracy": 0.85,
        "settings": {"dataset": "glyphs-digits", "preset": "3_1_3_1", "started_at": 10.0}}))
    return folder


def test_show_into_a_closed_pipe_is_quiet(tmp_path):
    """``automl-chars show DIR | head``: the reader leaves early; no BrokenPipeError traceback."""
    import subprocess
    import sys

    _finished_sweep(tmp_path)
    code = ("import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1);"
            "from automl_chars.cli.main import main; rc = main(['show', sys.argv[1]]);"
            "sys.stderr.write(f'RC {rc}'); os._exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert "RC 141" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert "BrokenPipe" not in out.stderr


def test_show_names_what_is_missing(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["show", str(tmp_path / "file")]) == 2
    assert "does not exist as a folder" in capsys.readouterr().err
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "automl_chars.json").write_text("{}")
    assert main(["show", str(tmp_path / "unfinished")]) == 2
    assert "an unfinished sweep (resume it with --resume)" in capsys.readouterr().err


def test_gpus_no_node_has_are_refused_before_data_or_ray(monkeypatch, capsys):
    """Without a cluster to join, a local instance is checked before the data loads or Ray
    starts, and the command line's error names its flag."""
    from automl_chars import data
    from automl_chars.runner import cluster

    monkeypatch.setattr(cluster.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(cluster, "local_resources", lambda: {"CPU": 2.0, "GPU": 0.0})
    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("loaded data"))
    monkeypatch.setattr(cluster, "connect", lambda *a, **k: pytest.fail("started Ray"))
    assert main(["bohb", "--dataset", "glyphs-digits", "--gpus-per-trial", "2",
                 "--address", "local"]) == 2
    err = capsys.readouterr().err
    assert "--gpus-per-trial 2.0 but the Ray cluster has no GPU" in err
    assert "gpus_per_trial" not in err


@pytest.mark.parametrize("message,cli", [
    ("gpus_per_trial=2.0 but no GPU. Use gpus_per_trial=0 (CPU only)",
     "--gpus-per-trial 2.0 but no GPU. Use --gpus-per-trial 0 (CPU only)"),
    ("Use cpus_per_trial <= 2.", "Use --cpus-per-trial <= 2."),
    ("Pass resume=True (CLI: --resume) to continue it", "Pass --resume to continue it"),
    ("Resume it with resume=True (command line: the same command with --resume); folder x",
     "Resume it with the same command and --resume; folder x"),
    ("A resume with restart_errored=True (command line: the same command with --resume "
     "--restart-errored; table build --resume does it by itself) trains it",
     "A resume with --resume --restart-errored trains it"),
    ("priors=False starts cold; storage_path 's3://x'", "--no-priors starts cold; --storage 's3://x'"),
    ("the dataset's seeds", "the dataset's seeds"),  # only whole names
])
def test_cli_wording_names_flags_instead_of_api_arguments(message, cli):
    from automl_chars.cli.main import cli_wording

    assert cli_wording(message) == cli


def test_help_descriptions_are_whole_sentences():
    from automl_chars.cli.main import build_parser
    from automl_chars.cli.options import summary_of

    assert summary_of('"""First line\nsecond line.\n\nMore."""'.strip('"')) == "First line second line."
    description = build_parser().description
    assert description.endswith("``report``.") and "\n" not in description


def test_a_smoke_run_without_storage_gets_a_fresh_folder_of_its_own(tmp_path, monkeypatch):
    """Never the user's results root (where a run of the same default name may be), never an
    earlier smoke run's folder; --storage wins; --resume without --storage is refused."""
    import argparse
    import tempfile

    from automl_chars.cli.options import smoke_storage
    from automl_chars.errors import InvalidConfigError

    monkeypatch.setenv("AUTOML_CHARS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    first, second = (argparse.Namespace(storage=None, resume=False) for _ in range(2))
    a, b = smoke_storage(first, "supernet_mnist"), smoke_storage(second, "supernet_mnist")
    assert a != b and first.storage == a and second.storage == b
    for folder in (a, b):
        assert Path(folder).parent == tmp_path / "tmp" and Path(folder).is_dir()
        assert not any(Path(folder).iterdir())
    assert not (tmp_path / "results").exists()
    given = argparse.Namespace(storage=str(tmp_path / "mine"), resume=True)
    assert smoke_storage(given, "bohb_k49") == str(tmp_path / "mine")
    with pytest.raises(InvalidConfigError, match="--smoke --resume needs --storage"):
        smoke_storage(argparse.Namespace(storage=None, resume=True), "bohb_k49")
