import numpy as np
import pytest
import torch

from automl_chars.data import Dataset, from_arrays
from automl_chars.data.dataset import to_uint8_images
from automl_chars.errors import InvalidConfigError


def _arrays(n=40, size=28, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), np.arange(n) % classes


@pytest.mark.parametrize("layout", ["nhw", "n1hw", "nhw1"])
def test_layouts_are_accepted(layout):
    x, _ = _arrays()
    arr = {"nhw": x, "n1hw": x[:, None], "nhw1": x[..., None]}[layout]
    out = to_uint8_images(arr, "t", "x")
    assert out.shape == (40, 1, 28, 28) and out.dtype == torch.uint8
    assert torch.equal(out[:, 0], torch.from_numpy(x))  # 28x28 is kept as is


def test_floats_and_wide_integers_convert_to_uint8():
    x, _ = _arrays()
    assert torch.equal(to_uint8_images(x / 255.0, "t", "x"), to_uint8_images(x, "t", "x"))
    assert torch.equal(to_uint8_images(x.astype(np.int64), "t", "x"), to_uint8_images(x, "t", "x"))
    with pytest.raises(InvalidConfigError, match=r"\[0, 1\]"):
        to_uint8_images(x.astype(np.float32), "t", "x")
    with pytest.raises(InvalidConfigError, match=r"\[0, 255\]"):
        to_uint8_images(x.astype(np.int64) * 2, "t", "x")
    # Unsigned types torch has no min/max for: still checked and converted.
    assert torch.equal(to_uint8_images(x.astype(np.uint16), "t", "x"), to_uint8_images(x, "t", "x"))
    with pytest.raises(InvalidConfigError, match=r"16-bit"):
        to_uint8_images(x.astype(np.uint16) * 257, "t", "x")


def test_non_square_images_are_padded_then_resized():
    x = np.zeros((3, 20, 40), dtype=np.uint8)
    x[:, :, 18:22] = 255  # a vertical bar in the middle
    out = to_uint8_images(x, "t", "x")
    assert out.shape == (3, 1, 28, 28)
    cols = out[0, 0].float().sum(0)
    assert int(cols.argmax()) in (13, 14)  # still centred
    rows = out[0, 0].float().sum(1)
    assert rows[:4].sum() == 0 and rows[-4:].sum() == 0  # padding above and below
    chunked = torch.cat([to_uint8_images(x[i : i + 1], "t", "x") for i in range(3)])
    assert torch.equal(out, chunked)


def test_bad_shapes_and_sizes_are_explained():
    with pytest.raises(InvalidConfigError, match=r"1 to 4 channels.*\(4, 5, 28, 6\)"):
        to_uint8_images(np.zeros((4, 5, 28, 6), np.uint8), "t", "x")
    with pytest.raises(InvalidConfigError, match="shaped"):
        to_uint8_images(np.zeros((4, 28), np.uint8), "t", "x")
    with pytest.raises(InvalidConfigError, match="64x64"):
        to_uint8_images(np.zeros((4, 65, 65), np.uint8), "t", "x")
    with pytest.raises(InvalidConfigError, match="image_size"):
        to_uint8_images(np.zeros((4, 28, 28), np.uint8), "t", "x", size=0)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_colour_images_keep_their_channels(layout):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    arr = x if layout == "nchw" else x.transpose(0, 2, 3, 1)
    kept = to_uint8_images(arr, "t", "x", size=None)
    assert kept.shape == (5, 3, 32, 32) and torch.equal(kept, torch.from_numpy(x))
    small = to_uint8_images(arr, "t", "x", size=16)
    assert small.shape == (5, 3, 16, 16)
    # each channel is resized on its own: a red-only image stays red-only
    red = np.zeros((1, 3, 32, 32), np.uint8)
    red[:, 0] = 200
    out = to_uint8_images(red, "t", "x")
    assert out.shape == (1, 3, 28, 28) and out[:, 0].min() == 200 and out[:, 1:].max() == 0


def test_from_arrays_builds_rgb_datasets_of_any_size():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    ds = from_arrays("rgb", x, y, x[:8], y[:8], image_size=None)
    assert ds.image_shape == (3, 32, 32) and ds.channels == 3
    assert torch.equal(ds.x_test, torch.from_numpy(x[:8]).permute(0, 3, 1, 2))
    assert from_arrays("rgb", x, y, x[:8], y[:8]).image_shape == (3, 28, 28)
    # every split one shape: gray test images for an RGB training set are refused by name
    with pytest.raises(InvalidConfigError, match=r"x_test holds 1x32x32 .* x_train 3x32x32"):
        from_arrays("mixed", x, y, x[:8, ..., 0], y[:8], image_size=None)


def test_from_arrays_maps_labels_and_holds_out_validation():
    x, y = _arrays(n=80)
    labels = np.array(["b", "a", "d", "c"])[y]
    ds = from_arrays("mine", x, labels, x[:8], labels[:8])
    assert ds.classes == ("a", "b", "c", "d") and ds.num_classes == 4
    assert ds.sizes == {"train": 72, "val": 8, "test": 8}
    assert np.array_equal(ds.class_counts("val"), [2, 2, 2, 2])
    assert ds.y_train.dtype == torch.int64 and ds.image_shape == (1, 28, 28)


def test_from_arrays_with_validation_split_and_torch_input():
    x, y = _arrays(n=40)
    ds = from_arrays("mine", torch.from_numpy(x), torch.from_numpy(y), x[:8], y[:8], x[:4], y[:4])
    assert ds.sizes == {"train": 40, "val": 4, "test": 8}
    with pytest.raises(InvalidConfigError, match="both"):
        from_arrays("mine", x, y, x, y, x_val=x)
    with pytest.raises(InvalidConfigError, match="labels"):
        from_arrays("mine", x, y[:-1], x, y)


def test_labels_missing_from_training_warn():
    x, y = _arrays(n=40)
    with pytest.warns(UserWarning, match="never occur in y_train"):
        from_arrays("mine", x, y % 2, x[:8], y[:8])


def test_stratified_sample_and_fingerprint(tmp_path):
    x, y = _arrays(n=200)
    ds = from_arrays("mine", x, y, x[:8], y[:8])
    xs, ys = ds.stratified_sample(0.25)
    assert len(ys) == 45 and np.ptp(np.bincount(ys.numpy(), minlength=4)) <= 1
    xs2, _ = ds.stratified_sample(0.5)
    assert {tuple(r.flatten()[:8].tolist()) for r in xs} <= {tuple(r.flatten()[:8].tolist()) for r in xs2}
    again = Dataset.load_file(ds.save(tmp_path / "d.npz"), "mine")
    assert again.fingerprint() == ds.fingerprint()
    other = from_arrays("mine", x, (y + 1) % 4, x[:8], y[:8])
    assert other.fingerprint() != ds.fingerprint()
