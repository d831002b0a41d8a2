"""Hyperparameter spaces of supernet training and of standalone subnet training (ConfigSpace).

The supernet's own architecture space is not searched here: it is a
:class:`~automl_chars.supernet.SupernetSpace`, given in a configuration under ``"supernet"`` (its
``to_dict()``), default seed 002's. Besides the hyperparameters, a configuration may set the
:data:`SUPERNET_FIXED` settings (not searched).
"""

from __future__ import annotations

from functools import lru_cache

from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, Integer

from automl_chars.spaces.training import add_training_hyperparameters
from automl_chars.spaces.values import plain_value, resolve_against

SAMPLER_NAMES = ("uniform", "epsilon_greedy", "ucb1", "thompson", "fair")

#: Settings a supernet configuration may carry without searching them, with their defaults.
SUPERNET_FIXED = {"supernet": None, "reward_batch": 64, "calib_samples": 512,
                  "eval_subnets": 64, "ema": 0.1, "prune_warmup": 200}
#: Settings a DARTS configuration may carry without searching them, with their defaults:
#: ``init_arch_weights`` is an ``arch_weights.json`` (or its folder) to start the architecture
#: logits from (a warm start; "" starts uniform).
DARTS_FIXED = {"supernet": None, "calib_samples": 512, "eval_subnets": 64,
               "init_arch_weights": ""}
#: Settings a subnet configuration may carry: its architecture (a ``SubnetSpec.to_dict()``) and,
#: for fine-tuning, a supernet checkpoint folder to take the weights from.
SUBNET_FIXED = {"subnet": None, "init_checkpoint": ""}


def subnet_space(seed: int | None = None) -> ConfigurationSpace:
    """The shared training hyperparameters (optimizer, learning rate and schedule, weight decay,
    batch size, augmentation) of a standalone subnet; SGD, learning rate 0.05, batch 64 by
    default."""
    return add_training_hyperparameters(ConfigurationSpace(seed=seed), learning_rate=0.05,
                                        batch_size=64)


def supernet_space(seed: int | None = None) -> ConfigurationSpace:
    """:func:`subnet_space` plus the sampler and its settings (conditional on the sampler) and
    optional pruning."""
    cs = subnet_space(seed)
    sampler = Categorical("sampler", list(SAMPLER_NAMES), default="uniform")
    epsilon = Float("epsilon", (0.0, 0.5), default=0.2)
    warmup = Integer("warmup", (0, 500), default=100)
    ucb_c = Float("ucb_c", (0.01, 1.0), log=True, default=0.1)
    discount = Float("discount", (0.9, 1.0), default=0.99)
    prune = Categorical("prune", [False, True], default=False)
    margin = Float("prune_margin", (0.02, 0.3), default=0.1)
    cs.add([sampler, epsilon, warmup, ucb_c, discount, prune, margin,
            EqualsCondition(epsilon, sampler, "epsilon_greedy"),
            EqualsCondition(warmup, sampler, "epsilon_greedy"),
            EqualsCondition(ucb_c, sampler, "ucb1"),
            EqualsCondition(discount, sampler, "thompson"),
            EqualsCondition(margin, prune, True)])
    return cs


def darts_space(seed: int | None = None) -> ConfigurationSpace:
    """DARTS: :func:`subnet_space` (the weights' optimiser) plus the architecture parameters'
    Adam learning rate and weight decay (defaults 3e-3 and 1e-3)."""
    cs = subnet_space(seed)
    cs.add([Float("arch_learning_rate", (1e-4, 3e-2), log=True, default=3e-3),
            Float("arch_weight_decay", (1e-5, 1e-2), log=True, default=1e-3)])
    return cs


_KINDS = {"supernet": (supernet_space, SUPERNET_FIXED), "subnet": (subnet_space, SUBNET_FIXED),
          "darts": (darts_space, DARTS_FIXED)}


@lru_cache(maxsize=3)
def _defaults(kind: str) -> tuple[tuple[str, object], ...]:
    make, fixed = _KINDS[kind]
    return (*((n, plain_value(hp.default_value)) for n, hp in make().items()), *fixed.items())


def resolve_supernet(config: dict, kind: str = "supernet") -> dict:
    """``config`` over every default of the ``kind`` (``"supernet"``, ``"subnet"`` or
    ``"darts"``) space and its fixed settings; unknown names raise, so a typo never passes
    silently."""
    return resolve_against(config, dict(_defaults(kind)), f"{kind} space")
