"""Subnet samplers: which subnet(s) the supernet trains in each round (one training batch).

Every sampler keeps per-subnet statistics (times sampled, running validation accuracy) that
:meth:`Sampler.update` feeds with each round's reward (the trained subnet's top-1 on a validation
batch), and saves them with its random generator in :meth:`Sampler.state_dict`, so a checkpointed
trial resumes its sampling exactly. Pick one by name from :data:`SAMPLERS`:

- ``uniform``: every active subnet equally likely (single-path one-shot, seed 002).
- ``epsilon_greedy``: seed 002's: uniform for the first ``warmup`` rounds (100), then uniform
  with probability ``epsilon`` (0.2), otherwise the leader by running validation top-1.
- ``ucb1``: the subnet maximising ``acc + c * sqrt(2 ln t / n)`` (unsampled ones first).
- ``thompson``: draws each subnet's accuracy from Beta(1 + s, 1 + f), with the rewards'
  successes ``s`` and failures ``f`` discounted by ``discount`` per round (training changes the
  accuracies, so old rewards count less); trains the best draw.
- ``fair``: FairNAS's strict fairness: each round trains a group of subnets in which every
  choice of every block (each depth, each operation at each sub-block position) appears equally
  often (as equally as the group size allows); their gradients are summed into one optimiser
  step.

Pruning (:class:`PruneSettings`, off by default) removes subnets whose running accuracy stays more
than ``margin`` below the leader's after ``warmup`` rounds; each removal is recorded in
:attr:`Sampler.pruned` (and reported by the trainable), never silent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch

from automl_chars.errors import InvalidConfigError
from automl_chars.registry import Registry
from automl_chars.supernet.space import SupernetSpace


@dataclass(frozen=True)
class PruneSettings:
    """Space pruning: after ``warmup`` rounds, a subnet with at least ``min_rewards`` rewards
    whose running accuracy is more than ``margin`` below the leader's is dropped. ``keep``
    subnets always stay."""

    enabled: bool = False
    warmup: int = 200
    margin: float = 0.1
    min_rewards: int = 5
    keep: int = 1

    def __post_init__(self) -> None:
        if self.warmup < 0 or not 0 < self.margin <= 1 or self.min_rewards < 1 or self.keep < 1:
            raise InvalidConfigError(
                f"prune settings out of range: warmup {self.warmup} (>= 0), margin "
                f"{self.margin} (0 < margin <= 1), min_rewards {self.min_rewards} (>= 1), keep "
                f"{self.keep} (>= 1)."
            )


@dataclass(frozen=True)
class SamplerSettings:
    """Which sampler and its settings (those of other samplers are ignored).

    Attributes:
        name: a name in :data:`SAMPLERS`.
        warmup, epsilon: ``epsilon_greedy``'s uniform rounds and exploration probability.
        ucb_c: ``ucb1``'s exploration weight.
        discount: ``thompson``'s per-round discount of old rewards (1 = none).
        ema: weight of a new reward in the running accuracy (1 = last reward only); also
            ``epsilon_greedy``'s, ``ucb1``'s and pruning's notion of a subnet's accuracy.
        prune: optional space pruning.
    """

    name: str = "uniform"
    warmup: int = 100
    epsilon: float = 0.2
    ucb_c: float = 0.1
    discount: float = 0.99
    ema: float = 0.1
    prune: PruneSettings = field(default_factory=PruneSettings)

    def __post_init__(self) -> None:
        SAMPLERS.get(self.name)  # unknown names raise with the closest ones
        problems = []
        if self.warmup < 0:
            problems.append(f"warmup must be >= 0, got {self.warmup}")
        if not 0 <= self.epsilon <= 1:
            problems.append(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.ucb_c < 0:
            problems.append(f"ucb_c must be >= 0, got {self.ucb_c}")
        if not 0 < self.discount <= 1:
            problems.append(f"discount must be in (0, 1], got {self.discount}")
        if not 0 < self.ema <= 1:
            problems.append(f"ema must be in (0, 1], got {self.ema}")
        if problems:
            raise InvalidConfigError("Invalid sampler settings: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamplerSettings:
        data = dict(data)
        prune = data.pop("prune", {})
        return cls(**data, prune=prune if isinstance(prune, PruneSettings) else PruneSettings(**prune))


class Sampler:
    """Base class: per-subnet statistics, pruning, state; subclasses choose in :meth:`choose`.

    Subnets are the positions of ``space.archs``. A round is one training batch: :meth:`sample`
    returns the subnets to train on it, :meth:`update` takes each one's reward.
    """

    #: Statistics history: a snapshot of every subnet's running accuracy every this many rounds.
    history_every: ClassVar[int] = 10
    #: At most this many snapshots are kept (older ones thinned out to every other one).
    history_max: ClassVar[int] = 400

    def __init__(self, space: SupernetSpace, settings: SamplerSettings | None = None,
                 seed: int = 0):
        self.space, self.settings = space, settings or SamplerSettings(self.kind())
        self.generator = torch.Generator().manual_seed(seed)
        n = space.size
        self.round = 0
        self.counts = [0] * n
        self.rewards = [0] * n
        self.acc = [float("nan")] * n
        self.active = list(range(n))
        self.pruned: list[dict] = []
        self.history: list[list[float]] = []
        self.history_step = self.history_every

    @classmethod
    def kind(cls) -> str:
        return next(name for name in SAMPLERS.names() if SAMPLERS.get(name) is cls)

    # -- choosing ---------------------------------------------------------------------------
    def sample(self) -> list[int]:
        """The subnets (positions in ``space.archs``) to train this round; counts them."""
        chosen = self.choose()
        for i in chosen:
            self.counts[i] += 1
        self.round += 1
        return chosen

    def choose(self) -> list[int]:
        raise NotImplementedError

    def uniform(self) -> int:
        """An active subnet, uniformly."""
        return self.active[int(torch.randint(len(self.active), (1,), generator=self.generator))]

    def leader(self) -> int | None:
        """The active subnet with the best running accuracy (the first such; None if none has a
        reward yet)."""
        scored = [(self.acc[i], -i) for i in self.active if self.rewards[i] > 0]
        return -max(scored)[1] if scored else None

    # -- learning ---------------------------------------------------------------------------
    def update(self, index: int, reward: float) -> None:
        """Records subnet ``index``'s reward (validation top-1 after its training round)."""
        old = self.acc[index]
        a = self.settings.ema
        self.acc[index] = reward if self.rewards[index] == 0 else (1 - a) * old + a * reward
        self.rewards[index] += 1

    def end_round(self) -> list[dict]:
        """After the round's updates: history snapshot and pruning; returns new prunings."""
        if self.round % self.history_step == 0:
            self.snapshot()
        return self._prune()

    def snapshot(self) -> None:
        """Adds every subnet's running accuracy at this round to :attr:`history` (once per
        round; the oldest are thinned out to every other one when it grows too long)."""
        if self.history and self.history[-1][0] == self.round:
            return
        self.history.append([float(self.round), *self.acc])
        if len(self.history) > self.history_max:
            self.history = self.history[1::2]
            self.history_step *= 2

    def _prune(self) -> list[dict]:
        p = self.settings.prune
        leader = self.leader()
        if not p.enabled or self.round < p.warmup or leader is None:
            return []
        best = self.acc[leader]
        drop = [i for i in self.active if i != leader and self.rewards[i] >= p.min_rewards
                and self.acc[i] < best - p.margin]
        drop = sorted(drop, key=lambda i: self.acc[i])[: max(0, len(self.active) - p.keep)]
        events = [{"subnet": self.space.name(self.space.archs[i]), "round": self.round,
                   "acc": self.acc[i], "leader": self.space.name(self.space.archs[leader]),
                   "leader_acc": best} for i in drop]
        self.active = [i for i in self.active if i not in set(drop)]
        self.pruned.extend(events)
        return events

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: statistics, pruning, history, the generator
        (tensors and plain values only: checkpoints load with ``weights_only=True``)."""
        return {"kind": self.kind(), "settings": self.settings.to_dict(),
                "names": [self.space.name(a) for a in self.space.archs], "round": self.round,
                "counts": list(self.counts), "rewards": list(self.rewards), "acc": list(self.acc),
                "active": list(self.active), "pruned": [dict(e) for e in self.pruned],
                "history": [list(h) for h in self.history], "history_step": self.history_step,
                "generator": self.generator.get_state(), **self.extra_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        names = [self.space.name(a) for a in self.space.archs]
        if state.get("kind") != self.kind() or state.get("names") != names:
            raise InvalidConfigError(
                f"Sampler state of {state.get('kind')!r} over {len(state.get('names', []))} "
                f"subnets cannot be loaded into {self.kind()!r} over {len(names)}."
            )
        self.round = int(state["round"])
        self.counts, self.rewards = list(state["counts"]), list(state["rewards"])
        self.acc, self.active = [float(a) for a in state["acc"]], list(state["active"])
        self.pruned = [dict(e) for e in state["pruned"]]
        self.history = [list(h) for h in state["history"]]
        self.history_step = int(state["history_step"])
        self.generator.set_state(state["generator"])
        self.load_extra_state(state)

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        pass


#: Samplers by name: ``SAMPLERS.get("uniform")(space, settings, seed)``.
SAMPLERS: Registry[type[Sampler]] = Registry("sampler")


@SAMPLERS.register("uniform")
class UniformSampler(Sampler):
    """Single-path uniform sampling."""

    def choose(self) -> list[int]:
        return [self.uniform()]


@SAMPLERS.register("epsilon_greedy")
class EpsilonGreedySampler(Sampler):
    """Seed 002: ``warmup`` uniform rounds, then the leader with probability ``1 - epsilon``."""

    def choose(self) -> list[int]:
        explore = float(torch.rand((), generator=self.generator)) < self.settings.epsilon
        leader = self.leader()
        if self.round < self.settings.warmup or explore or leader is None:
            return [self.uniform()]
        return [leader]


@SAMPLERS.register("ucb1")
class UCB1Sampler(Sampler):
    """UCB1 on the running accuracies: every active subnet once, then the highest bound."""

    def choose(self) -> list[int]:
        unseen = [i for i in self.active if self.counts[i] == 0]
        if unseen:
            return [unseen[int(torch.randint(len(unseen), (1,), generator=self.generator))]]
        t = max(1, self.round)
        bound = {i: (self.acc[i] if self.rewards[i] else 0.0)
                 + self.settings.ucb_c * math.sqrt(2 * math.log(t) / self.counts[i])
                 for i in self.active}
        return [max(bound, key=lambda i: (bound[i], -i))]


@SAMPLERS.register("thompson")
class ThompsonSampler(Sampler):
    """Thompson sampling with Beta posteriors over discounted fractional successes."""

    def __init__(self, space: SupernetSpace, settings: SamplerSettings | None = None,
                 seed: int = 0):
        super().__init__(space, settings, seed)
        self.successes = [0.0] * space.size
        self.failures = [0.0] * space.size

    def choose(self) -> list[int]:
        idx = torch.tensor(self.active)
        a = torch.tensor(self.successes, dtype=torch.float64)[idx] + 1
        b = torch.tensor(self.failures, dtype=torch.float64)[idx] + 1
        # Beta(a, b) as Ga(a) / (Ga(a) + Ga(b)), drawn from this sampler's own generator.
        ga, gb = _gamma(a, self.generator), _gamma(b, self.generator)
        draw = ga / (ga + gb)
        return [self.active[int(torch.argmax(draw))]]

    def update(self, index: int, reward: float) -> None:
        super().update(index, reward)
        g = self.settings.discount
        if g < 1:
            self.successes = [s * g for s in self.successes]
            self.failures = [f * g for f in self.failures]
        self.successes[index] += reward
        self.failures[index] += 1 - reward

    def extra_state(self) -> dict:
        return {"successes": list(self.successes), "failures": list(self.failures)}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.successes = [float(s) for s in state["successes"]]
        self.failures = [float(f) for f in state["failures"]]


def _gamma(shape: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gamma(shape, 1) draws from ``generator`` (Marsaglia-Tsang; shape >= 1 here)."""
    d = shape - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(shape)
    todo = torch.ones_like(shape, dtype=torch.bool)
    while todo.any():
        z = torch.randn(shape.shape, generator=generator, dtype=shape.dtype)
        u = torch.rand(shape.shape, generator=generator, dtype=shape.dtype)
        v = (1 + c * z) ** 3
        ok = (v > 0) & (torch.log(u.clamp_min(1e-300)) < 0.5 * z**2 + d - d * v
                        + d * torch.log(v.clamp_min(1e-300)))
        take = todo & ok
        out[take] = (d * v)[take]
        todo &= ~ok
    return out


@SAMPLERS.register("fair")
class FairSampler(Sampler):
    """FairNAS strict fairness: a group per round in which, for every block, each depth and each
    operation at each sub-block position appears equally often (independent permutations)."""

    def choose(self) -> list[int]:
        s = self.space
        group = max(len(s.depths), len(s.ops))
        blocks = []
        for _ in s.channels:
            depths = self._permuted(list(s.depths), group)
            ops = [self._permuted(list(s.ops), group) for _ in range(s.max_depth)]
            blocks.append([tuple(ops[i][g] for i in range(depths[g])) for g in range(group)])
        chosen = [s.index(tuple(blocks[b][g] for b in range(len(s.channels))))
                  for g in range(group)]
        # Pruned subnets are replaced by uniform draws (fairness then holds among the rest).
        active = set(self.active)
        return [i if i in active else self.uniform() for i in chosen]

    def _permuted(self, choices: list, group: int) -> list:
        """``group`` entries, each choice equally often (cycled), in a random order."""
        reps = -(-group // len(choices))
        pool = (choices * reps)[:group]
        order = torch.randperm(group, generator=self.generator).tolist()
        return [pool[k] for k in order]


def make_sampler(space: SupernetSpace, settings: SamplerSettings | str | None = None,
                 seed: int = 0) -> Sampler:
    """The sampler of ``settings`` (or of a name, with default settings) over ``space``."""
    if settings is None or isinstance(settings, str):
        settings = SamplerSettings(settings or "uniform")
    return SAMPLERS.get(settings.name)(space, settings, seed)
