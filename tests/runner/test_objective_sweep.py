"""Hardware-aware sweeps: a real constrained BOHB sweep never returns an incumbent over its
limits, BOHB learns from its infeasible trials, and its Pareto front comes from the CLI."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from automl_chars import SweepResult, data, run_bohb
from automl_chars.cli.main import main
from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.layout import SETTINGS_FILE
from automl_chars.reporting import sweep_pareto, top_trials
from automl_chars.runner.sweep import SweepSettings, check_same_sweep
from automl_chars.spaces import cnn_space, subspace
from automl_chars.training.objective import OBJECTIVE, Objective

GLYPHS = {"samples_per_class": 12}
#: conv1_channels spans 4 to 64 (log scale): 11.7k to 94k parameters with the default layers.
LIMIT = 20_000


@pytest.fixture(scope="module")
def glyph_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    data.load("glyphs-digits", root=root, **GLYPHS)
    return root


@pytest.mark.slow
def test_a_constrained_sweep_never_returns_an_incumbent_over_its_limits(ray_session, glyph_root,
                                                                        tmp_path, capsys):
    ds = data.load("glyphs-digits", root=glyph_root, **GLYPHS)
    space = subspace(cnn_space(), ["conv1_channels", "learning_rate"], seed=0)
    result = run_bohb(ds, space=space, preset="3_1_3_2", storage_path=tmp_path, name="limits",
                      verbose=0, seed=1, objective=Objective(max_params=LIMIT))
    t = result.trials
    infeasible = t[t["status"] == "INFEASIBLE"]
    feasible = t[t["status"] == "TERMINATED"]
    assert len(infeasible) >= 1 and len(feasible) >= 1, t[["status", "params"]]
    # Every trial measured its model; the limit splits them exactly by parameters.
    assert (infeasible["params"] > LIMIT).all() and (feasible["params"] <= LIMIT).all()
    assert infeasible["error"].str.contains(f"max_params {LIMIT}").all()
    # Infeasible trials trained nothing, were stopped at once and told BOHB how far over they are.
    assert (infeasible["samples_seen"].fillna(0) == 0).all() and (infeasible["budget"] == 1).all()
    assert (infeasible[OBJECTIVE] == -(infeasible["params"] / LIMIT - 1)).all()
    assert (feasible[OBJECTIVE] == feasible["val_acc"]).all()
    # The incumbent is feasible, the best objective among the trials at the top budget.
    inc = t.set_index("trial_id").loc[result.incumbent_trial_id]
    assert inc["status"] == "TERMINATED" and inc["params"] <= LIMIT
    assert result.incumbent["conv1_channels"] == inc["config/conv1_channels"]

    loaded = SweepResult.load(result.path)
    assert loaded.metric == OBJECTIVE and loaded.objective == Objective(max_params=LIMIT)
    assert loaded.n_infeasible == len(infeasible)
    assert set(top_trials(loaded)["status"]) == {"TERMINATED"}  # never an infeasible trial
    fronts = sweep_pareto(loaded)
    assert (fronts["params"] <= LIMIT).all() and result.incumbent_trial_id in set(
        fronts.loc[fronts["front"] == "params", "trial_id"])  # the best feasible is on it

    assert main(["show", str(result.path)]) == 0
    out = capsys.readouterr().out
    assert f"Objective: --max-params {LIMIT}; {len(infeasible)} trials infeasible" in out
    assert main(["pareto", str(result.path), "--cost", "params", "--max-latency-ms", "1e6"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of val_acc against params" in out and "Best within the limits" in out
    assert (result.path / "pareto.png").stat().st_size > 5000

    # Resuming it with other limits is another sweep: refused.
    with pytest.raises(ExperimentStateError, match="objective"):
        run_bohb(ds, space=space, preset="3_1_3_2", storage_path=tmp_path, name="limits",
                 verbose=0, seed=1, resume=True, objective=Objective(max_params=2 * LIMIT))


def test_objectives_a_sweep_cannot_take_are_refused_before_ray_starts(tmp_path):
    from automl_chars.search.warmstart import WarmStart

    with pytest.raises(InvalidConfigError, match="supernet.*best_subnet"):
        run_bohb("glyphs-digits", spec="supernet", preset="3_1_3_1", storage_path=tmp_path,
                 objective=Objective(max_params=1000), data_root=tmp_path, verbose=0)
    with pytest.raises(InvalidConfigError, match="warm start cannot be combined"):
        run_bohb("glyphs-digits", preset="3_1_3_1", storage_path=tmp_path,
                 objective=Objective(max_flops=1e6), warm_start=WarmStart(), verbose=0)
    with pytest.raises(InvalidConfigError, match="objective must be an Objective"):
        run_bohb("glyphs-digits", preset="3_1_3_1", storage_path=tmp_path,
                 objective={"max_params": 5}, verbose=0)


def test_a_sweep_saved_before_objectives_existed_still_resumes(tmp_path):
    given = SweepSettings(dataset="d", dataset_fingerprint="f", preset="3_1_3_1", eta=3,
                          min_budget=1, max_budget=3, num_samples=4, fidelity="epochs",
                          gpus_per_trial=0, cpus_per_trial=1, seed=0)
    old = {k: v for k, v in asdict(given).items() if k != "objective"}
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(old))
    check_same_sweep(tmp_path, given)  # no error
    limited = replace(given, objective=Objective(max_params=10).describe())
    with pytest.raises(ExperimentStateError, match="objective"):
        check_same_sweep(tmp_path, limited)


@pytest.mark.parametrize("argv,fragment", [
    (["--max-params", "-5"], "--max-params must be a number > 0"),
    (["--max-latency-ms", "0"], "--max-latency-ms must be a number > 0"),
    (["--reward-target", "latency_ms"], "--reward-target takes COST=TARGET"),
    (["--reward-target", "throughput=5"], "--reward-target names unknown costs"),
    (["--reward-weight", "-0.1"], "--reward-weight and --reward-weight-over need --reward-target"),
])
def test_cli_objective_errors_name_the_flag_before_data_loads(argv, fragment, data_root,
                                                             capsys):
    assert main(["bohb", "--dataset", "no-such-dataset", *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "no-such-dataset" not in err
