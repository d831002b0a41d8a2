import numpy as np
import pytest
import torch

from automl_chars.errors import InvalidConfigError
from automl_chars.models import build_cnn
from automl_chars.spaces import cnn_space, default_config, plain_config, resolve, subspace
from automl_chars.trainables.cnn import cnn_settings


def test_space_has_more_than_30_hyperparameters():
    space = cnn_space()
    assert len(space) > 30
    for name in ("n_conv_layers", "n_fc_layers", "activation", "optimizer", "learning_rate",
                 "weight_decay", "batch_size", "augment", "conv3_pool_size", "fc2_dropout_rate"):
        assert name in space


def test_layer_parameters_active_only_when_layer_exists():
    space = cnn_space(seed=3)
    for config in space.sample_configuration(300):
        c = dict(config)
        for i in (1, 2, 3):
            present = f"conv{i}_channels" in c
            assert present == (c["n_conv_layers"] >= i)
            assert (f"conv{i}_dropout_rate" in c) == (present and bool(c[f"conv{i}_dropout"]))
            assert (f"conv{i}_pool_size" in c) == (present and bool(c[f"conv{i}_maxpool"]))
        for j in (1, 2):
            assert (f"fc{j}_units" in c) == (c["n_fc_layers"] >= j)
        assert ("momentum" in c) == (c["optimizer"] == "sgd")
        assert ("aug_rotation" in c) == bool(c["augment"])


def test_seed_makes_sampling_reproducible():
    a = [dict(c) for c in cnn_space(seed=7).sample_configuration(5)]
    b = [dict(c) for c in cnn_space(seed=7).sample_configuration(5)]
    assert a == b


@pytest.mark.timeout(120)
def test_500_sampled_configurations_build_and_run_forward():
    """All 500 build and map a batch to logits on torch's meta device (shapes only, no weights
    to initialise: a second where real tensors take tens); every tenth also on real tensors."""
    space = cnn_space(seed=0)
    for i, config in enumerate(space.sample_configuration(500)):
        arch = cnn_settings(plain_config(config)).arch
        with torch.device("meta"):
            out = build_cnn(arch, num_classes=10).eval()(torch.zeros(2, 1, 28, 28))
        assert out.shape == (2, 10), config
        if i % 10 == 0:
            model = build_cnn(arch, num_classes=10).eval()
            with torch.no_grad():
                out = model(torch.zeros(2, 1, 28, 28))
            assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_plain_config_has_no_numpy_scalars():
    config = plain_config(cnn_space(seed=1).sample_configuration())
    assert all(type(v) in (int, float, str, bool) for v in config.values())
    assert not any(isinstance(v, np.generic) for v in config.values())


def test_default_config_is_the_documented_baseline():
    d = default_config()
    assert d["n_conv_layers"] == 1 and d["n_fc_layers"] == 0
    assert d["optimizer"] == "sgd" and d["learning_rate"] == pytest.approx(1e-3)
    assert d["conv1_channels"] == 8 and d["conv1_maxpool"] is True and d["augment"] is False


def test_resolve_fills_defaults_and_rejects_unknown_names():
    full = resolve({"learning_rate": 0.05, "suggested_by": "model"})
    assert full["learning_rate"] == 0.05 and full["batch_size"] == 128
    assert "suggested_by" not in full
    with pytest.raises(InvalidConfigError, match="learnig_rate"):
        resolve({"learnig_rate": 0.1})


def test_subspace_keeps_conditions_and_requires_parents():
    sub = subspace(cnn_space(), ["optimizer", "momentum", "learning_rate"], seed=0)
    assert len(sub) == 3 and len(sub.conditions) == 1
    for c in sub.sample_configuration(20):
        assert ("momentum" in dict(c)) == (c["optimizer"] == "sgd")
    with pytest.raises(InvalidConfigError, match="optimizer"):
        subspace(cnn_space(), ["momentum"])
    with pytest.raises(InvalidConfigError, match="nope"):
        subspace(cnn_space(), ["nope"])
