"""A stratified sample of subnets as the standalone ground truth (issue 18, §4): which subnets,
the correlations and top-1 regret over them, and the standalone cost of every subnet estimated
from them. No Ray: the pure parts of ``run_supernet``'s sampled comparison."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from automl_chars.errors import InvalidConfigError
from automl_chars.supernet import SupernetSpace, correlations, ranking_table
from automl_chars.supernet.ranking import top1_regret
from automl_chars.supernet.standalone import (
    StandaloneSample,
    estimated_standalone_cost,
    stratified_sample,
    subnet_params,
)

#: The at-size space: two blocks, depths 1 to 3, conv3 or conv5 per sub-block.
AT_SIZE = SupernetSpace(ops=("conv3", "conv5"))


def test_the_at_size_space_has_196_subnets_ordered_by_parameters():
    assert AT_SIZE.size == 196
    smallest, largest = "(conv3, conv3)", "(conv5+conv5+conv5, conv5+conv5+conv5)"
    # conv3 at 16 channels: 3*3*16*16 weights + 16 + 16 batch norm; conv3 at 32 likewise.
    assert subnet_params(AT_SIZE, smallest) == (9 * 16 * 16 + 32) + (9 * 32 * 32 + 64)
    assert subnet_params(AT_SIZE, largest) == 3 * (25 * 16 * 16 + 32) + 3 * (25 * 32 * 32 + 64)
    params = [subnet_params(AT_SIZE, a) for a in AT_SIZE.archs]
    assert min(params) == subnet_params(AT_SIZE, smallest)
    assert max(params) == subnet_params(AT_SIZE, largest)


def test_a_sample_of_30_covers_every_stratum_with_the_extremes_and_follows_the_seed():
    sample = stratified_sample(AT_SIZE, 30, seed=0)
    names = [AT_SIZE.name(a) for a in AT_SIZE.archs]
    assert len(sample.subnets) == len(set(sample.subnets)) == 30
    assert list(sample.subnets) == [n for n in names if n in sample.subnets]  # space order
    assert {"(conv3, conv3)", "(conv5+conv5+conv5, conv5+conv5+conv5)"} <= set(sample.subnets)
    # Five parameter quantiles of 39 or 40 subnets, six draws each.
    assert sample.num_strata == 5 and sample.stratum_sizes() == [40, 39, 39, 39, 39]
    drawn = [sum(sample.strata[n] == k for n in sample.subnets) for k in range(5)]
    assert drawn == [6, 6, 6, 6, 6]
    # Strata are quantiles: every subnet of a lower stratum has at most the parameters of
    # every subnet of a higher one.
    params = {n: subnet_params(AT_SIZE, n) for n in names}
    for k in range(4):
        low = max(params[n] for n in names if sample.strata[n] == k)
        high = min(params[n] for n in names if sample.strata[n] == k + 1)
        assert low <= high
    assert stratified_sample(AT_SIZE, 30, seed=0) == sample  # deterministic in the seed
    assert stratified_sample(AT_SIZE, 30, seed=1).subnets != sample.subnets
    assert sample.to_dict()["stratum_sizes"] == [40, 39, 39, 39, 39]


@pytest.mark.parametrize("size", [2, 3, 7, 31, 64])
def test_every_size_gets_its_count_and_every_stratum_a_subnet(size):
    sample = stratified_sample(AT_SIZE, size, seed=3)
    assert len(sample.subnets) == size
    assert {sample.strata[n] for n in sample.subnets} == set(range(min(5, size)))
    assert {"(conv3, conv3)", "(conv5+conv5+conv5, conv5+conv5+conv5)"} <= set(sample.subnets)


def test_a_sample_as_large_as_the_space_is_every_subnet_and_bad_sizes_are_refused():
    small = SupernetSpace(channels=(4, 8), depths=(1, 2))
    assert stratified_sample(small, 4).subnets == ("(1, 1)", "(1, 2)", "(2, 1)", "(2, 2)")
    assert stratified_sample(small, 10).subnets == stratified_sample(small, 4).subnets
    for bad in (1, 0, 2.5, True):
        with pytest.raises(InvalidConfigError, match="at least 2 subnets"):
            stratified_sample(small, bad)


def test_the_standalone_cost_of_all_is_estimated_per_stratum():
    strata = {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1, "f": 2}
    sample = StandaloneSample(("a", "d", "f"), strata, 3, 0)
    # 3 subnets at a's 10 s, 2 at d's 20 s, 1 at f's 40 s.
    assert estimated_standalone_cost({"a": 10.0, "d": 20.0, "f": 40.0}, sample) == 110.0
    two = StandaloneSample(("a", "b", "d", "f"), strata, 4, 0)
    assert estimated_standalone_cost({"a": 10.0, "b": 14.0, "d": 20.0, "f": 40.0}, two) == \
        pytest.approx(3 * 12.0 + 2 * 20.0 + 40.0)
    every = StandaloneSample(tuple(strata), strata, 6, 0)
    seconds = dict(zip(strata, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    assert estimated_standalone_cost(seconds, every) == 21.0  # all trained: their sum
    with pytest.raises(InvalidConfigError, match=r"sampled subnets \['f'\]"):
        estimated_standalone_cost({"a": 10.0, "d": 20.0}, sample)
    with pytest.raises(InvalidConfigError, match=r"Strata \[2\] have no sampled subnet"):
        estimated_standalone_cost({"a": 10.0, "d": 20.0},
                                  StandaloneSample(("a", "d"), strata, 2, 0))


def test_cost_ratios_against_all_and_against_the_sampled():
    from automl_chars.workflows.supernet import standalone_costs

    strata = {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1, "f": 2}
    sample = StandaloneSample(("a", "d", "f"), strata, 3, 0)
    c = standalone_costs(11.0, {"a": 10.0, "d": 20.0, "f": 40.0}, sample)
    assert c["standalone"] == 110.0 and c["standalone_estimated"] is True
    assert c["standalone_sampled"] == 70.0 and c["n_standalone"] == 3 and c["n_subnets"] == 6
    assert c["ratio"] == pytest.approx(0.1) and c["ratio_sampled"] == pytest.approx(11 / 70)
    every = standalone_costs(7.0, dict.fromkeys(strata, 10.0),
                             StandaloneSample(tuple(strata), strata, 6, 0))
    assert every["standalone"] == every["standalone_sampled"] == 60.0
    assert every["standalone_estimated"] is False and every["ratio"] == every["ratio_sampled"]


def test_correlations_and_top1_regret_over_the_sampled_subnets():
    supernet = {"a": 0.50, "b": 0.90, "c": 0.70, "d": 0.60, "e": 0.80}
    standalone = {"a": 0.55, "c": 0.85, "d": 0.60, "e": 0.80}  # b was not trained standalone
    table = ranking_table(supernet, standalone, order=list(supernet))
    t = table.set_index("subnet")
    assert math.isnan(t.loc["b", "standalone_acc"])
    assert t["standalone_rank"].isna().sum() == 1 and t.loc["c", "standalone_rank"] == 1
    assert t.loc["b", "supernet_rank"] == 1  # the supernet still ranks every subnet
    sampled = table.dropna(subset=["standalone_acc"])
    c = correlations(table)
    assert c["kendall_tau"] == pytest.approx(
        stats.kendalltau(sampled["supernet_acc"], sampled["standalone_acc"]).statistic)
    assert c["kendall_tau"] == pytest.approx(2 / 3)  # e and c swapped among 4
    # Among the sampled, the supernet's first is e (0.80 standalone); the best is c (0.85).
    assert top1_regret(table) == pytest.approx(0.05)
    assert top1_regret(table, "standalone_acc") == 0.0
    with pytest.raises(InvalidConfigError, match=r"\['z'\] have a standalone accuracy but no"):
        ranking_table(supernet, {**standalone, "z": 0.1})


def test_allocation_gives_a_small_stratum_its_subnet():
    from automl_chars.supernet.standalone import _allocate

    assert _allocate([1, 98, 1], 3) == [1, 1, 1]  # proportional alone: [0, 3, 0]
    assert _allocate([40, 39, 39, 39, 39], 30) == [6, 6, 6, 6, 6]
    assert sum(_allocate([5, 50, 5, 40], 9)) == 9


def test_darts_derived_subnet_in_or_outside_the_sample():
    from automl_chars.workflows.supernet import derived_standing

    table = ranking_table({"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4},
                          {"a": 0.60, "c": 0.80, "d": 0.70})  # b outside the sample
    inside = derived_standing(table, "d")
    assert inside == {"derived_standalone_rank": 2, "derived_standalone_acc": 0.70,
                      "derived_in_sample": True, "derived_regret": pytest.approx(0.10),
                      "n_subnets": 3}
    # b trained standalone on its own (outside the sample): ranked among the sampled and it.
    outside = derived_standing(table, "b", derived_acc=0.90)
    assert outside["derived_standalone_rank"] == 1 and outside["derived_regret"] == 0.0
    assert outside["n_subnets"] == 4 and outside["derived_in_sample"] is False
    assert derived_standing(table, "b", derived_acc=0.65)["derived_standalone_rank"] == 3
    tied = derived_standing(table, "b", derived_acc=0.80)  # a tie for first counts as first
    assert tied["derived_standalone_rank"] == 1 and tied["derived_regret"] == 0.0
    assert derived_standing(table, "c")["derived_regret"] == 0.0  # the best: no regret
    with pytest.raises(InvalidConfigError, match=r"derived subnet b has no standalone"):
        derived_standing(table, "b")
