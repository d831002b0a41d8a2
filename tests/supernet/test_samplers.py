"""Subnet samplers: shared behaviour over every registered sampler, then each one's own."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
import torch

from automl_chars.errors import InvalidConfigError, UnknownNameError
from automl_chars.supernet import SAMPLERS, PruneSettings, SamplerSettings, SupernetSpace
from automl_chars.supernet.samplers import make_sampler

SPACE = SupernetSpace()  # seed 002's 9 subnets


def quality(i: int) -> float:
    """A fixed reward per subnet: subnet 8 ((3, 3)) is the best, 0 ((1, 1)) the worst."""
    return 0.5 + 0.05 * i


def drive(sampler, rounds: int) -> list[list[int]]:
    chosen = []
    for _ in range(rounds):
        picks = sampler.sample()
        for i in picks:
            sampler.update(i, quality(i))
        sampler.end_round()
        chosen.append(picks)
    return chosen


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_keeps_statistics_and_resumes_exactly_from_its_state(name):
    a = make_sampler(SPACE, name, seed=3)
    first = drive(a, 40)
    assert a.round == 40 and sum(a.counts) == sum(len(c) for c in first)
    assert all(a.counts[i] == sum(c.count(i) for c in first) for i in range(SPACE.size))
    seen = [i for i in range(SPACE.size) if a.rewards[i]]
    assert seen and all(a.acc[i] == pytest.approx(quality(i)) for i in seen)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)  # as in a checkpoint: tensors and plain values only
    buffer.seek(0)
    b = make_sampler(SPACE, name, seed=99)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    assert drive(b, 30) == drive(a, 30)
    assert b.state_dict()["counts"] == a.state_dict()["counts"]
    np.testing.assert_equal(b.history, a.history)  # NaN (never rewarded) equals NaN here
    assert len(a.history) == 7  # a snapshot every 10 rounds


def test_a_state_of_another_sampler_or_space_is_refused():
    state = make_sampler(SPACE, "uniform").state_dict()
    with pytest.raises(InvalidConfigError, match="cannot be loaded"):
        make_sampler(SPACE, "ucb1").load_state_dict(state)
    with pytest.raises(InvalidConfigError, match="over 9 subnets cannot be loaded.*over 4"):
        make_sampler(SupernetSpace(depths=(1, 2)), "uniform").load_state_dict(state)


def test_unknown_sampler_suggests_the_closest_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'epsilon_greedy'"):
        SamplerSettings("epsilon-greedy")
    with pytest.raises(UnknownNameError, match="Known samplers: epsilon_greedy, fair, thompson"):
        make_sampler(SPACE, "unifrom")


def test_uniform_covers_the_space_evenly():
    counts = Counter(i for c in drive(make_sampler(SPACE, "uniform", seed=0), 1800) for i in c)
    assert set(counts) == set(range(9)) and max(counts.values()) < 1.3 * min(counts.values())


def test_epsilon_greedy_warms_up_uniformly_then_mostly_trains_the_leader():
    settings = SamplerSettings("epsilon_greedy", warmup=100, epsilon=0.2)
    sampler = make_sampler(SPACE, settings, seed=0)
    warmup = Counter(i for c in drive(sampler, 100) for i in c)
    assert warmup[8] < 25 and len(warmup) == 9  # uniform: no favourite yet
    assert sampler.leader() == 8
    after = Counter(i for c in drive(sampler, 1000) for i in c)
    # 80 % leader plus its share of the 20 % uniform draws: about 82 %.
    assert 0.77 < after[8] / 1000 < 0.87
    # Same generator seed, same choices; the leader follows the rewards.
    again = make_sampler(SPACE, settings, seed=0)
    assert drive(again, 1100) == drive(make_sampler(SPACE, settings, seed=0), 1100)
    again.update(3, 1.0)  # (2, 1) takes the lead (its running accuracy rises above 0.9)
    for _ in range(30):
        again.update(3, 1.0)
    assert again.leader() == 3
    assert Counter(i for c in drive(again, 200) for i in c).most_common(1)[0][0] in (3, 8)


def test_epsilon_greedy_with_zero_epsilon_is_greedy_after_warmup():
    sampler = make_sampler(SPACE, SamplerSettings("epsilon_greedy", warmup=30, epsilon=0.0))
    drive(sampler, 30)
    leader = sampler.leader()
    assert all(c == [leader] for c in drive(sampler, 50))


def test_ucb1_tries_everything_once_then_exploits():
    sampler = make_sampler(SPACE, SamplerSettings("ucb1", ucb_c=0.05), seed=0)
    first = [c[0] for c in drive(sampler, 9)]
    assert sorted(first) == list(range(9))
    later = Counter(c[0] for c in drive(sampler, 300))
    assert later.most_common(1)[0][0] == 8 and later[8] > 150


def test_thompson_concentrates_on_the_best():
    later = Counter(c[0] for c in drive(make_sampler(SPACE, "thompson", seed=0), 600)[200:])
    assert later.most_common(1)[0][0] in (7, 8) and later[7] + later[8] > 200


def test_fair_trains_every_choice_of_every_block_equally_each_round():
    sampler = make_sampler(SPACE, "fair", seed=0)
    for group in drive(sampler, 50):
        archs = [SPACE.archs[i] for i in group]
        assert len(group) == 3
        for b in range(2):
            assert sorted(len(a[b]) for a in archs) == [1, 2, 3]
    ops_space = SupernetSpace(channels=(4,), depths=(2,), ops=("conv3", "conv5", "skip"))
    for group in drive(make_sampler(ops_space, "fair", seed=1), 20):
        archs = [ops_space.archs[i] for i in group]
        for position in range(2):
            assert sorted(a[0][position] for a in archs) == ["conv3", "conv5", "skip"]


def test_pruning_is_recorded_and_never_drops_the_leader():
    prune = PruneSettings(enabled=True, warmup=50, margin=0.2, min_rewards=3)
    sampler = make_sampler(SPACE, SamplerSettings("uniform", prune=prune), seed=0)
    drive(sampler, 49)
    assert sampler.pruned == [] and len(sampler.active) == 9
    drive(sampler, 200)
    # quality: 0.5 + 0.05 i; the leader (8) has 0.9, so subnets 0..3 (<= 0.65 < 0.7) go.
    assert sorted(p["subnet"] for p in sampler.pruned) == ["(1, 1)", "(1, 2)", "(1, 3)", "(2, 1)"]
    assert all(p["leader"] == "(3, 3)" and p["round"] >= 50 for p in sampler.pruned)
    assert sorted(sampler.active) == [4, 5, 6, 7, 8]
    counts_then = list(sampler.counts)
    drive(sampler, 100)
    assert sampler.counts[:4] == counts_then[:4]  # pruned subnets are never trained again


@pytest.mark.parametrize("kwargs,fragment", [
    ({"epsilon": 1.5}, "epsilon must be in"), ({"warmup": -1}, "warmup must be"),
    ({"discount": 0.0}, "discount must be in"), ({"ema": 0.0}, "ema must be in"),
])
def test_bad_sampler_settings(kwargs, fragment):
    with pytest.raises(InvalidConfigError, match=fragment):
        SamplerSettings("epsilon_greedy", **kwargs)
