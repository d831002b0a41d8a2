"""The training hyperparameters every model's space shares: optimizer, learning rate and its
schedule, weight decay, batch size, augmentation (with their conditions)."""

from __future__ import annotations

from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, Integer

OPTIMIZERS = ("sgd", "adam")
#: The learning-rate schedules the spaces search (see ``training.OptimizerSettings``). A
#: configuration may also name those of ``training.settings.SCHEDULES`` outside the spaces
#: (``cosine_restarts``, ``multistep``): adding them here would change every space, and with it
#: the space the shipped learning-curve table was built over.
SCHEDULES = ("constant", "cosine", "step")

#: Configuration keys every Trainable accepts besides its space's hyperparameters, with their
#: defaults (which leave training as it was). The spaces leave them out (so their fingerprints
#: and the shipped learning-curve table stay valid); give them in a configuration, or add them
#: to a space to search them (:func:`add_distance_hyperparameters`). See docs/training-tools.md.
TRAINING_OPTIONS: dict[str, object] = {
    # lr_schedule="cosine_restarts": budget units of the first cycle (0: a third of the budget)
    # and the factor each later cycle grows by.
    "lr_restart_period": 0,
    "lr_restart_mult": 1,
    # lr_schedule="multistep": the budget units after which the rate drops (a list, or a string
    # such as "3,6"; empty: after a third and two thirds of the budget), and by what factor.
    "lr_milestones": "",
    "lr_gamma": 0.1,
    # The distance regularizer (training.regularizers): strength 0 is off.
    "dist_strength": 0.0,
    "dist_width": 1.0,
    "dist_merge": False,
    # BSGuard (training.bsguard): the smallest micro-batch before a trial fails out of memory.
    "min_micro_batch": 1,
}


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


def add_distance_hyperparameters(cs: ConfigurationSpace, *, strength: tuple[float, float] = (
        1e-3, 10.0), width: tuple[float, float] = (0.1, 100.0)) -> ConfigurationSpace:
    """Adds the distance regularizer's ``dist_strength`` and ``dist_width`` (log scales) to
    ``cs``, for a sweep that searches them; every Trainable reads them (see
    :data:`TRAINING_OPTIONS`)."""
    cs.add([Float("dist_strength", strength, log=True),
            Float("dist_width", width, log=True)])
    return cs
