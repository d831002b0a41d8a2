"""The training hyperparameters every model's space shares: optimizer, learning rate and its
schedule, weight decay, batch size, augmentation (with their conditions)."""

from __future__ import annotations

from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, Integer

OPTIMIZERS = ("sgd", "adam")
#: Learning-rate schedules over a trial's budget (see ``training.OptimizerSettings``).
SCHEDULES = ("constant", "cosine", "step")


def add_training_hyperparameters(cs: ConfigurationSpace, *, learning_rate: float = 1e-3,
                                 optimizer: str = "sgd", batch_size: int = 128,
                                 schedule: str = "constant") -> ConfigurationSpace:
    """Adds the shared training hyperparameters to ``cs`` with the given defaults: ``momentum``
    is active for SGD only, the augmentation strengths only when ``augment`` is on."""
    opt = Categorical("optimizer", list(OPTIMIZERS), default=optimizer)
    momentum = Float("momentum", (0.0, 0.99), default=0.9)
    augment = Categorical("augment", [False, True], default=False)
    aug = [
        Float("aug_rotation", (0.0, 30.0), default=10.0),  # degrees
        Float("aug_translate", (0.0, 0.2), default=0.1),  # fraction of the image side
        Float("aug_scale", (0.0, 0.3), default=0.1),  # +- relative zoom
    ]
    cs.add([
        opt, momentum, augment, *aug,
        Float("learning_rate", (1e-4, 1e-1), log=True, default=learning_rate),
        Float("weight_decay", (1e-6, 1e-2), log=True, default=1e-5),
        Integer("batch_size", (16, 512), log=True, default=batch_size),
        Categorical("lr_schedule", list(SCHEDULES), default=schedule),
        EqualsCondition(momentum, opt, "sgd"),
        *[EqualsCondition(h, augment, True) for h in aug],
    ])
    return cs
