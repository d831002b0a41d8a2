"""Named experiments: the registry, ``--set`` parsing and the space of free hyperparameters
(pure: no Ray, no training)."""

import pytest

from automl_chars.errors import DuplicateNameError, InvalidConfigError, UnknownNameError
from automl_chars.search.named import (
    EXPERIMENTS,
    NamedExperiment,
    coerce_value,
    experiment_space,
    experiment_spec,
    free_hyperparameters,
    get_experiment,
    parse_sets,
)
from automl_chars.search.spec import get_spec


def test_seed_003_experiments_are_registered_with_their_settings():
    mnist1 = get_experiment("mnist1")
    assert (mnist1.dataset, mnist1.model, mnist1.epochs) == ("mnist", "mlp", 20)
    assert {k: mnist1.fixed[k] for k in ("optimizer", "learning_rate", "weight_decay",
                                         "batch_size")} == {
        "optimizer": "sgd", "learning_rate": 1e-2, "weight_decay": 1e-3, "batch_size": 128}
    assert mnist1.fixed["momentum"] > 0
    cifar = get_experiment("cifar10_1")
    assert (cifar.dataset, cifar.model, cifar.epochs) == ("cifar10", "resnet34", 100)
    assert cifar.fixed["learning_rate"] == 1e-3
    assert {"mnist1", "cifar10_1"} <= set(EXPERIMENTS.names())


def test_unknown_experiment_names_the_closest():
    with pytest.raises(UnknownNameError, match="mnist1"):
        get_experiment("mnist")


def test_a_taken_name_and_bad_definitions_raise():
    from automl_chars.search.named import register_experiment

    with pytest.raises(DuplicateNameError):
        register_experiment(NamedExperiment("mnist1", "mnist", "mlp"))
    with pytest.raises(InvalidConfigError, match="not a model family"):
        NamedExperiment("x", "mnist", "vgg")
    with pytest.raises(InvalidConfigError, match="learning_rate"):
        NamedExperiment("x", "mnist", "mlp", fixed={"learning_rat": 0.1})
    with pytest.raises(InvalidConfigError, match="both fixed and free"):
        NamedExperiment("x", "mnist", "mlp", fixed={"dropout": 0.1}, free=("dropout",))
    with pytest.raises(InvalidConfigError, match="epochs"):
        NamedExperiment("x", "mnist", "mlp", epochs=0)


def test_parse_sets_takes_key_value_items_and_names_the_flag():
    assert parse_sets(["learning_rate=0.1", " batchnorm = true", "learning_rate=0.2"]) == {
        "learning_rate": "0.2", "batchnorm": "true"}
    assert parse_sets(None) == {}
    for bad in ("learning_rate", "=0.1", "learning_rate="):
        with pytest.raises(InvalidConfigError, match="--set takes KEY=VALUE"):
            parse_sets([bad])


@pytest.mark.parametrize("key,raw,value", [
    ("learning_rate", "0.1", 0.1), ("batch_size", "64", 64), ("batch_size", "64.0", 64),
    ("batchnorm", "True", True), ("batchnorm", "false", False), ("activation", "tanh", "tanh"),
    ("optimizer", "adam", "adam"), ("dist_merge", "1", True), ("lr_milestones", "3,6", "3,6"),
    ("learning_rate", 0.5, 0.5),
])
def test_coerce_value_gives_each_key_its_type(key, raw, value):
    got = coerce_value("mlp", key, raw)
    assert got == value and type(got) is type(value)


def test_resnet_width_choices_parse_from_strings():
    assert coerce_value("resnet34", "width", "0.5") == 0.5


@pytest.mark.parametrize("sets,fragment", [
    (["learning_rat=0.1"], "--set learning_rat=0.1: 'learning_rat' is not a hyperparameter of "
                           "the mlp family. Did you mean learning_rate"),
    (["batchnorm=maybe"], "--set batchnorm=maybe: batchnorm is one of [False, True]"),
    (["batch_size=1.5"], "--set batch_size=1.5: batch_size takes a whole number"),
    (["learning_rate=fast"], "learning_rate takes a number"),
    (["learning_rate=-1"], "--set learning_rate=-1: learning_rate must be > 0"),
    (["n_layers=9"], "--set n_layers=9"),
])
def test_bad_overrides_name_the_flag(sets, fragment):
    with pytest.raises(InvalidConfigError) as err:
        get_experiment("mnist1").with_overrides(parse_sets(sets))
    assert fragment in str(err.value)


def test_overrides_fix_values_over_the_experiments_own():
    base = get_experiment("mnist1")
    exp = base.with_overrides(parse_sets(["learning_rate=0.1", "dropout=0.2"]))
    assert exp.fixed["learning_rate"] == 0.1 and exp.fixed["dropout"] == 0.2
    assert exp.fixed["weight_decay"] == base.fixed["weight_decay"]
    assert base.fixed["learning_rate"] == 1e-2  # the registered one is unchanged
    assert "dropout" not in free_hyperparameters(exp)


def test_free_hyperparameters_leave_out_fixed_ones_and_those_they_switch_off():
    exp = get_experiment("mnist1")  # n_layers=2, optimizer=sgd fixed
    free = free_hyperparameters(exp)
    assert not set(free) & set(exp.fixed)
    assert "layer3_units" not in free  # n_layers=2 switches it off
    assert {"activation", "dropout", "augment", "aug_rotation"} <= set(free)
    one = exp.with_overrides({"n_layers": 3})
    assert "layer3_units" in free_hyperparameters(one)  # now active, and not fixed
    space = experiment_space(one)
    assert "layer3_units" in space and not space.parent_conditions_of["layer3_units"]
    # A condition among free hyperparameters stays.
    assert [c.parent.name for c in space.parent_conditions_of["aug_rotation"]] == ["augment"]


def test_a_free_hyperparameter_the_fixed_values_switch_off_raises():
    exp = NamedExperiment("x", "mnist", "mlp", fixed={"n_layers": 1}, free=("layer2_units",))
    with pytest.raises(InvalidConfigError, match="layer2_units is marked free"):
        experiment_space(exp)
    # Marked free with its parent free: the condition is kept.
    exp = NamedExperiment("y", "mnist", "mlp", fixed={"dropout": 0.0},
                          free=("n_layers", "layer2_units"))
    assert list(experiment_space(exp).parent_conditions_of["layer2_units"])


def test_experiment_spec_searches_the_free_ones_and_fixes_the_rest():
    exp = get_experiment("cifar10_1")
    spec = experiment_spec(exp, seed=0)
    assert spec.name == "resnet34" and spec.fixed == exp.fixed
    assert set(spec.space) == set(free_hyperparameters(exp))
    assert not set(spec.space) & set(spec.fixed)
    # The fixed values are part of the sweep's identity.
    other = experiment_spec(exp.with_overrides({"learning_rate": 0.01}), seed=0)
    assert other.fingerprint() != spec.fingerprint()
    assert get_spec("resnet34").fingerprint() != spec.fingerprint()


def test_a_spec_cannot_fix_what_it_searches():
    from dataclasses import replace

    with pytest.raises(InvalidConfigError, match="both fixed and in the space"):
        replace(get_spec("mlp"), fixed={"dropout": 0.1})


def test_fixed_values_are_checked_against_the_dataset(make_dataset):
    from dataclasses import replace

    spec = experiment_spec(get_experiment("mnist1"))
    spec.check(make_dataset())  # the experiment's own values fit
    bad = replace(spec, fixed={**spec.fixed, "min_micro_batch": 0})
    with pytest.raises(InvalidConfigError):
        bad.check(make_dataset())
