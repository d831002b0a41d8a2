"""Subnets by cost: their measured costs, and the best subnet within limits."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.models import count_flops, count_params
from automl_chars.supernet import SupernetResult, SupernetSpace, best_subnet, build_supernet
from automl_chars.supernet.select import measure_subnet_costs

SPACE = SupernetSpace(channels=(4, 8), depths=(1, 2))


def test_a_subnets_costs_are_its_extracted_models():
    supernet = build_supernet(SPACE, 10)
    for arch in SPACE.archs:
        before = torch.get_rng_state()
        costs = measure_subnet_costs(SPACE, arch, 10, (1, 28, 28))
        assert torch.equal(torch.get_rng_state(), before), "measuring drew from torch's RNG"
        sub = supernet.extract(arch)
        assert costs.params == count_params(sub) and costs.flops == count_flops(sub, (1, 28, 28))
        assert costs.latency_ms > 0
    deeper = [measure_subnet_costs(SPACE, a, 10, (1, 28, 28)).params for a in SPACE.archs]
    assert deeper[0] < deeper[-1]  # (1, 1) is the smallest subnet, (2, 2) the largest


def _result(with_costs=True):
    table = pd.DataFrame({
        "subnet": ["(1, 1)", "(1, 2)", "(2, 1)", "(2, 2)"],
        "supernet_acc": [0.60, 0.70, 0.65, 0.80],
        "standalone_acc": [0.62, 0.75, 0.66, 0.78],
        "params": [20_000, 45_000, 30_000, 60_000],
        "flops": [1e5, 3e5, 2e5, 4e5],
        "latency_ms": [0.1, 0.3, 0.2, 0.4],
    })
    if not with_costs:
        table = table.drop(columns=["params", "flops", "latency_ms"])
    history = pd.DataFrame(columns=["round", "subnet", "running_acc"])
    return SupernetResult(table, history, {"sampler": "uniform"}, None)


def test_the_best_subnet_within_limits():
    r = _result()
    assert best_subnet(r)["subnet"] == "(2, 2)"  # no limits: the supernet's best
    assert best_subnet(r, max_params=50_000)["subnet"] == "(1, 2)"
    assert best_subnet(r, max_params=50_000, max_latency_ms=0.25)["subnet"] == "(2, 1)"
    assert best_subnet(r, "standalone_acc", max_flops=3e5)["subnet"] == "(1, 2)"
    with pytest.raises(InvalidConfigError, match="No subnet .* within the limits"):
        best_subnet(r, max_params=10_000)
    with pytest.raises(InvalidConfigError, match="max_params"):
        best_subnet(r, max_params=-1)
    with pytest.raises(InvalidConfigError, match="chosen by one of"):
        best_subnet(r, "val_acc")


def test_a_run_from_before_costs_says_so():
    with pytest.raises(ExperimentStateError, match="before subnets' costs were recorded"):
        best_subnet(_result(with_costs=False), max_params=50_000)


def test_cli_pareto_of_a_supernet_run_picks_the_best_subnet_within_limits(tmp_path, capsys):
    from dataclasses import replace

    from automl_chars.cli.main import main

    result = replace(_result(), path=tmp_path / "uniform")
    result.save()
    assert main(["pareto", str(result.path), "--max-params", "50000", "--cost", "params"]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of supernet_acc against params (3 of 3 subnets)" in out
    assert "Best within the limits: subnet (1, 2)" in out
    assert (result.path / "pareto.png").exists()
    assert main(["pareto", str(result.path), "--metric", "standalone_acc", "--max-flops",
                 "2e5", "--out", str(tmp_path / "f.png")]) == 0
    assert "Best within the limits: subnet (2, 1)" in capsys.readouterr().out
    assert main(["pareto", str(result.path), "--budget", "3"]) == 2
    assert "--budget applies to sweeps" in capsys.readouterr().err
