import numpy as np
import pytest
import torch

from automl_chars.errors import InvalidConfigError
from automl_chars.models import build_cnn
from automl_chars.spaces import default_config
from automl_chars.trainables.cnn import cnn_settings
from automl_chars.training import (
    AugmentSettings,
    DeviceData,
    OptimizerSettings,
    evaluate,
    random_affine,
    rng_state,
    set_rng_state,
    train_epoch,
)
from automl_chars.training.fidelity import Fidelity


def _setup(ds, lr=0.01, **extra):
    config = {**default_config(), "optimizer": "adam", "learning_rate": lr, **extra}
    torch.manual_seed(0)
    settings = cnn_settings(config)
    model = build_cnn(settings.arch, ds.num_classes)
    opt = settings.optimizer.make(model)
    train = DeviceData.create(ds.x_train, ds.y_train, torch.device("cpu"))
    val = DeviceData.create(ds.x_val, ds.y_val, torch.device("cpu"), train.mean, train.std)
    return model, opt, train, val


def test_training_learns_the_toy_task(make_dataset):
    ds = make_dataset(num_classes=4, per_class=40)
    model, opt, train, val = _setup(ds)
    before = evaluate(model, val)[0]
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        stats = train_epoch(model, opt, train, 32, gen)
    loss, acc = evaluate(model, val)
    assert loss < before and acc >= 0.9
    assert stats.samples == len(train) and 0.0 <= stats.accuracy <= 1.0


def test_rng_state_roundtrip_reproduces_an_epoch(make_dataset):
    ds = make_dataset()
    # Dropout draws from torch's global RNG, augmentation and shuffling from the generator.
    model, opt, train, _ = _setup(ds, conv1_dropout=True, conv1_dropout_rate=0.5)
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(1)
    state = rng_state(gen, cpu)
    snapshot = ({k: v.clone() for k, v in model.state_dict().items()}, opt.state_dict())
    a = train_epoch(model, opt, train, 16, gen, AugmentSettings(enabled=True))
    model.load_state_dict(snapshot[0])
    opt.load_state_dict(snapshot[1])
    torch.manual_seed(12345)  # disturb the global RNG: the restore must undo this
    set_rng_state(gen, state, cpu)
    b = train_epoch(model, opt, train, 16, gen, AugmentSettings(enabled=True))
    assert a.loss == b.loss and a.accuracy == b.accuracy


def test_rng_state_from_another_device_type_reseeds_reproducibly():
    """A GPU trial's checkpoint resumed on a CPU: a CUDA generator's state (16 bytes: seed and
    offset) cannot load into a CPU generator, so the generator is seeded from it instead."""
    cpu = torch.device("cpu")

    def draws_after_restoring(cuda_state: list[int]) -> torch.Tensor:
        saved = {**rng_state(torch.Generator(), cpu),
                 "generator": torch.tensor(cuda_state, dtype=torch.uint8)}
        gen = torch.Generator().manual_seed(99)
        set_rng_state(gen, saved, cpu)
        return torch.randperm(50, generator=gen)

    state_a, state_b = [7] + [0] * 7 + [3] + [0] * 7, [8] + [0] * 7 + [3] + [0] * 7
    assert torch.equal(draws_after_restoring(state_a), draws_after_restoring(state_a))
    assert not torch.equal(draws_after_restoring(state_a), draws_after_restoring(state_b))
    assert not torch.equal(draws_after_restoring(state_a),
                           torch.randperm(50, generator=torch.Generator().manual_seed(99)))


def test_epoch_statistics_are_those_of_the_samples_trained(make_dataset):
    """With a learning rate of 0 the model is fixed, so the epoch's running loss and accuracy must
    equal an evaluation of the same model on the samples it trained on; 121 samples in batches of
    8 leave one sample over, which is skipped (BatchNorm cannot train on one) and not counted."""
    ds = make_dataset(num_classes=4, per_class=34)  # 136 images: 122 train after validation
    torch.manual_seed(0)
    model = build_cnn(cnn_settings(default_config()).arch, ds.num_classes)  # no BN, no dropout
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    full = DeviceData.create(ds.x_train, ds.y_train, torch.device("cpu"))
    train = full.subset(torch.arange(121))
    stats = train_epoch(model, opt, train, 8, torch.Generator().manual_seed(5))
    order = torch.randperm(121, generator=torch.Generator().manual_seed(5))
    kept = train.subset(order[:120])  # the last, single-sample batch is skipped
    loss, acc = evaluate(model, kept)
    assert stats.samples == 120
    assert stats.accuracy == pytest.approx(acc, abs=1e-9)
    assert stats.loss == pytest.approx(loss, rel=1e-5)
    assert train_epoch(model, opt, train.subset(torch.arange(1)), 8, torch.Generator()).samples == 0


def test_random_affine_is_per_image_and_seeded():
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 10:18, 4:24] = 1.0
    on = AugmentSettings(enabled=True, rotation=30, translate=0.1, scale=0.2)
    y1 = random_affine(x, on, torch.Generator().manual_seed(0))
    y2 = random_affine(x, on, torch.Generator().manual_seed(0))
    assert torch.equal(y1, y2)
    assert not torch.allclose(y1[0], y1[1])  # each image gets its own transform
    assert not torch.allclose(y1, x)
    assert torch.equal(random_affine(x, AugmentSettings(enabled=False), torch.Generator()), x)


def test_optimizer_settings():
    sgd = OptimizerSettings(optimizer="sgd", momentum=0.5)
    model = torch.nn.Linear(2, 2)
    assert isinstance(sgd.make(model), torch.optim.SGD) and sgd.make(model).defaults["momentum"] == 0.5
    assert isinstance(OptimizerSettings(optimizer="adam").make(model), torch.optim.Adam)
    for bad, fragment in (({"optimizer": "lbfgs"}, "optimizer must be one of"),
                          ({"learning_rate": 0.0}, "learning_rate must be > 0"),
                          ({"momentum": 1.0}, "momentum"), ({"batch_size": 0}, "batch_size"),
                          ({"weight_decay": -1e-3}, "weight_decay")):
        with pytest.raises(InvalidConfigError, match=fragment):
            OptimizerSettings(**bad)
    with pytest.raises(InvalidConfigError, match="augmentation out of range"):
        AugmentSettings(enabled=True, scale=1.5)


def test_a_diverging_loss_raises_once_per_epoch(make_dataset):
    """A NaN or infinite loss is a failure a retry cannot fix; it is detected at the epoch's one
    read of the running loss, without a synchronisation per batch."""
    from automl_chars.errors import NonFiniteLossError

    ds = make_dataset()
    model, _, train, _ = _setup(ds)
    opt = torch.optim.SGD(model.parameters(), lr=1e12)
    with pytest.raises(NonFiniteLossError, match="diverged"):
        for _ in range(3):
            train_epoch(model, opt, train, 16, torch.Generator().manual_seed(0))


def test_subset_fidelity_is_nested_and_stratified():
    labels = np.repeat(np.arange(5), [40, 40, 20, 20, 80])
    fid = Fidelity("subset", max_budget=4)
    order = fid.order(labels)
    prev = set()
    for unit in (1, 2, 3):
        idx = fid.indices(unit, order)
        assert set(prev) <= set(idx)
        counts = np.bincount(labels[idx], minlength=5)
        expected = np.bincount(labels, minlength=5) * unit / 4
        assert np.abs(counts - expected).max() <= 1
        prev = idx
    assert fid.indices(4, order) is None and fid.fraction(4) == 1.0
    assert Fidelity("epochs", 4).indices(1, Fidelity("epochs", 4).order(labels)) is None
    with pytest.raises(InvalidConfigError, match="fidelity"):
        Fidelity("pixels", 4)


def test_pixel_stats_are_computed_in_chunks_exactly():
    from automl_chars.training.loop import pixel_mean_std

    x = torch.randint(0, 256, (1000, 1, 28, 28), dtype=torch.uint8)
    mean, std = pixel_mean_std(x, chunk=300)
    xf = x.double() / 255
    assert mean == pytest.approx(float(xf.mean()), rel=1e-9)
    assert std == pytest.approx(float(xf.std(unbiased=False)), rel=1e-6)
