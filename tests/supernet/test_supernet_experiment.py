"""The ``automl-chars supernet`` command end to end on a tiny supernet (4 subnets, one epoch):
killed and resumed, the table, correlations, fine-tuning, costs, plots, bad input. (The experiment script's
--smoke run is checked in tests/test_experiments.py.)"""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest
from scipy import stats
from support import kill_driver_after

from automl_chars.cli.main import main
from automl_chars.supernet import SupernetResult

pytestmark = pytest.mark.slow

TINY = ["--channels", "4,8", "--depths", "1,2", "--epochs", "1", "--top-k", "2",
        "--samples-per-class", "8", "--batch-size", "16", "--verbose", "0"]
NAMES = ["(1, 1)", "(1, 2)", "(2, 1)", "(2, 2)"]
PLOTS = ("supernet_vs_standalone.png", "dynamics.png", "sampling_counts.png")


DRIVER = textwrap.dedent("""
    import sys
    import ray
    ray.init(log_to_driver=False)  # joins RAY_ADDRESS: the test session's Ray
    from automl_chars.cli.main import main
    sys.exit(main({argv!r}))
""")


def test_cli_supernet_killed_then_resumed_writes_the_table_correlations_and_plots(
        ray_session, ray_address, data_root, tmp_path, capsys):
    """The command runs in a driver that is killed (SIGKILL, no clean stop) while the standalone
    subnets train; the same command with --resume keeps the finished supernet and standalone
    trials, trains the rest, fine-tunes the top 2 and writes everything up."""
    argv = ["supernet", "--dataset", "glyphs-digits", "--sampler", "epsilon_greedy",
            "--warmup", "2", "--storage", str(tmp_path), "--name", "cli", *TINY]
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(argv=argv))
    exp = tmp_path / "cli"
    finished = kill_driver_after(script, data_root, exp / "standalone", finished=2, ray_address=ray_address)
    assert not (exp / "epsilon_greedy" / "summary.json").exists()
    supernet_trial = pd.read_csv(exp / "epsilon_greedy" / "supernet" / "trials.csv",
                                 dtype=str)["trial_id"]

    assert main([*argv, "--resume", "--verbose", "1", "--max-params", "1e9"]) == 0
    out = capsys.readouterr().out
    assert "Top-1 in supernet" in out and "Kendall tau" in out and "fine-tuning" in out
    assert "best subnet within the limits: (" in out
    # The fine-tuning run starts after the kill, so its lines come from this driver.
    tuned = [line for line in out.splitlines() if "(fine-tuned subnet (" in line]
    assert len(tuned) == 2 and all("sampler epsilon_greedy)" in line for line in tuned)
    plots = out.split("\nPlots:\n")[1].split("\n")
    listed = [line.strip() for line in plots if line.startswith("  ")]
    assert listed == [str(exp / "epsilon_greedy" / f) for f in PLOTS] + [
        str(exp / "dynamics.png"), str(exp / "sampling_counts.png")]
    standalone = pd.read_csv(exp / "standalone" / "trials.csv", dtype={"trial_id": str})
    assert sorted(standalone["label"]) == NAMES and (standalone["epochs"] == 1).all()
    assert (standalone["status"] == "TERMINATED").all()
    assert finished <= set(standalone["trial_id"])  # kept, not trained again
    again = pd.read_csv(exp / "epsilon_greedy" / "supernet" / "trials.csv", dtype=str)["trial_id"]
    assert list(again) == list(supernet_trial)

    result = SupernetResult.load(exp / "epsilon_greedy")
    t = result.table
    assert list(t["subnet"]) == NAMES and t[["supernet_acc", "standalone_acc"]].notna().all().all()
    if t["supernet_acc"].nunique() > 1 and t["standalone_acc"].nunique() > 1:
        assert result.kendall_tau == pytest.approx(
            stats.kendalltau(t["supernet_acc"], t["standalone_acc"]).statistic)
        assert result.spearman == pytest.approx(
            stats.spearmanr(t["supernet_acc"], t["standalone_acc"]).statistic)
    else:  # one epoch on 80 images may leave every subnet at one accuracy: no ranking
        assert result.kendall_tau != result.kendall_tau and result.spearman != result.spearman
    assert set(t["supernet_rank"]) <= {1, 2, 3, 4} and t["standalone_rank"].min() == 1
    # Each subnet's costs, as its standalone trial measured them; deeper subnets cost more.
    assert (t[["params", "flops", "latency_ms"]] > 0).all().all()
    assert t.set_index("subnet").loc["(2, 2)", "params"] > t.set_index("subnet").loc["(1, 1)", "params"]
    assert t["finetuned_acc"].notna().sum() == 2 and t["sampled"].sum() > 0
    assert result.top1_match == (result.summary["supernet_top1"] == result.summary["standalone_top1"])
    ft = result.finetune
    assert len(ft["subnets"]) == 2 and ft["chosen"] in ft["subnets"]
    c = result.costs
    assert c["unit"] == "CPU-seconds" and c["supernet"] > 0 and c["standalone"] > 0
    assert c["ratio"] == pytest.approx(c["supernet"] / c["standalone"])
    assert set(result.history["subnet"]) == set(NAMES) and not result.history.empty
    for png in PLOTS:
        assert (result.path / png).stat().st_size > 1000
    summary = json.loads((result.path / "summary.json").read_text())
    assert summary["sampler"] == "epsilon_greedy" and summary["epochs"] == 1

    # Resumed when finished: read back, nothing trained again.
    assert main([*argv, "--resume"]) == 0
    pd.testing.assert_frame_equal(SupernetResult.load(exp / "epsilon_greedy").table, t)


def test_progress_lines_name_the_sampler_and_each_subnet(make_dataset, tmp_path, monkeypatch):
    """The supernet's job is described by its sampler and each standalone job by its subnet,
    which the progress lines print (tests/search: run_trials prints descriptions)."""
    from automl_chars.workflows import supernet as supernet_run

    class Stop(Exception):
        pass

    phases = []

    def record(jobs, *args, **kwargs):
        phases.append([(j.label, j.description) for j in jobs])
        if len(phases) == 2:  # the supernet, then the standalone subnets
            raise Stop

    monkeypatch.setattr(supernet_run, "run_trials", record)
    space = {"channels": (4, 8), "depths": (1, 2)}
    with pytest.raises(Stop):
        supernet_run.run_supernet(make_dataset("d", num_classes=3), "ucb1", 1, tmp_path,
                                  space=space)
    assert phases[0] == [("supernet", "supernet, sampler ucb1")]
    assert phases[1] == [(n, f"standalone subnet {n}") for n in NAMES]


@pytest.mark.parametrize("argv,fragment", [
    (["--sampler", "epsilon-greedy"], "Did you mean 'epsilon_greedy'"),
    (["--depths", "1,2,3,4", "--ops", "conv3,conv5"], "run_supernet: the space has 900 subnets"),
    (["--ops", "conv3,conv9"], "Unknown sub-block operation 'conv9'"),
    (["--top-k", "12"], "top_k (12) exceeds"),
    (["--standalone-sample", "1"], "standalone_sample must be a whole number from 2"),
])
def test_cli_supernet_bad_input_is_one_clear_error(data_root, tmp_path, capsys, argv, fragment):
    storage = tmp_path / "runs"
    code = main(["supernet", "--dataset", "glyphs-digits", "--storage", str(storage), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and fragment in err and "Traceback" not in err
    assert not storage.exists()  # refused before anything was written
