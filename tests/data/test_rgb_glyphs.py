"""The built-in colour glyph sets (``rgb-glyphs-*``): the grayscale glyphs painted at 32x32 RGB."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl_chars import data
from automl_chars.data import glyphs, rgb_glyphs
from automl_chars.errors import InvalidConfigError


def test_every_glyph_domain_has_a_builtin_colour_set():
    expected = {rgb_glyphs.rgb_name(d) for d in glyphs.DOMAINS}
    assert expected == {n for n in data.names() if n.startswith(rgb_glyphs.PREFIX)}
    assert all(data.spec(n).builtin and data.is_available(n) for n in expected)


def test_a_colour_set_is_its_grayscale_set_painted(data_root):
    ds = data.load("rgb-glyphs-digits", samples_per_class=3, test_per_class=2)
    gray = data.load("glyphs-digits", samples_per_class=3, test_per_class=2)
    assert ds.image_shape == (3, 32, 32) and ds.classes == gray.classes
    assert ds.sizes == gray.sizes == {"train": 30, "val": 50, "test": 20}
    for split in ("train", "val", "test"):
        assert torch.equal(ds.split(split)[1], gray.split(split)[1])
    # the painted glyph is the grayscale one: the colour image's brightness, at the best of its
    # few shifts, follows the glyph's (up to the polarity, which is drawn per image)
    x, g = ds.x_test.float(), gray.x_test[:, 0].float()
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for i in range(len(g)):
        best = max(abs(np.corrcoef(luma[i, dy:dy + 28, dx:dx + 28].flatten(), g[i].flatten())[0, 1])
                   for dy in range(5) for dx in range(5))
        assert best > 0.8, i


def test_the_same_arguments_give_the_same_bytes_and_the_cache_is_used(tmp_path):
    a = data.load("rgb-glyphs-greek", root=tmp_path / "a", samples_per_class=2, seed=3)
    b = data.load("rgb-glyphs-greek", root=tmp_path / "b", samples_per_class=2, seed=3)
    assert a.fingerprint() == b.fingerprint() and torch.equal(a.x_train, b.x_train)
    cached = list((tmp_path / "a" / "glyphs").glob("rgb-glyphs-greek-*.npz"))
    assert len(cached) == 1
    again = data.load("rgb-glyphs-greek", root=tmp_path / "a", samples_per_class=2, seed=3)
    assert torch.equal(again.x_test, a.x_test) and again.meta["colour_version"] == 1
    other = data.load("rgb-glyphs-greek", root=tmp_path / "a", samples_per_class=2, seed=4)
    assert not torch.equal(other.x_train, a.x_train)
    cached[0].write_bytes(b"broken")
    with pytest.warns(UserWarning, match="Regenerating rgb-glyphs-greek"):
        rebuilt = data.load("rgb-glyphs-greek", root=tmp_path / "a", samples_per_class=2, seed=3)
    assert torch.equal(rebuilt.x_train, a.x_train)


def test_strokes_stand_out_and_colours_carry_no_class():
    masks = np.zeros((400, 28, 28), np.uint8)
    masks[:, 8:20, 10:20] = 255  # one block, every image: a glyph without a class
    img = rgb_glyphs.paint(masks, np.random.default_rng(0)).astype(np.float32) / 255
    assert img.shape == (400, 3, 32, 32)
    luma = 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]
    inside = (slice(None), slice(12, 20), slice(14, 20))  # covered at every shift (0..4 px)
    stroke = luma[inside].reshape(len(img), -1).mean(1)
    corner = luma[:, :3, :3].reshape(len(img), -1).mean(1)
    assert np.abs(stroke - corner).min() > 0.15  # always visible
    assert 0.3 < (stroke > corner).mean() < 0.7  # light on dark and dark on light
    colours = img[:, :, 12:20, 14:20].reshape(len(img), 3, -1).mean(2)
    assert colours.std(0).min() > 0.15  # strokes of every colour


def test_bad_arguments_are_refused_by_name(data_root):
    with pytest.raises(InvalidConfigError, match="samples_per_class"):
        data.load("rgb-glyphs-digits", samples_per_class=0)
    with pytest.raises(InvalidConfigError, match="does not take"):
        data.load("rgb-glyphs-digits", colour="red")
