"""The built-in ``glyphs-*`` datasets: registration, shapes, determinism, cache, difficulty."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl_chars.data import Dataset, glyphs, load, names, spec
from automl_chars.errors import InvalidConfigError

SMALL = {"samples_per_class": 6, "val_per_class": 3, "test_per_class": 4}
GLYPH_NAMES = sorted(glyphs.DOMAINS)


def test_at_least_five_domains_registered_as_builtin():
    registered = [n for n in names() if n.startswith("glyphs-")]
    assert sorted(registered) == GLYPH_NAMES
    assert len(registered) >= 5
    for required in ("glyphs-digits", "glyphs-latin-upper", "glyphs-latin-lower", "glyphs-greek",
                     "glyphs-cyrillic"):
        assert required in registered
        assert spec(required).builtin


@pytest.mark.parametrize("name", GLYPH_NAMES)
def test_every_domain_loads_with_disjoint_split_sizes(name, data_root):
    assert spec(name).available(data_root)
    ds = load(name, **SMALL)
    c = len(glyphs.DOMAINS[name])
    assert ds.name == name
    assert ds.classes == tuple(glyphs.DOMAINS[name])
    assert ds.num_classes == c
    assert c == 10 if name == "glyphs-digits" else c >= 10
    assert ds.sizes == {"train": 6 * c, "val": 3 * c, "test": 4 * c}
    for split, k in (("train", 6), ("val", 3), ("test", 4)):
        x, y = ds.split(split)
        assert x.dtype == torch.uint8 and tuple(x.shape[1:]) == (1, 28, 28)
        assert y.dtype == torch.int64
        assert (ds.class_counts(split) == k).all()
    # the splits are separate draws: no image appears in two of them
    seen = [{bytes(img) for img in ds.split(s)[0].numpy()} for s in ("train", "val", "test")]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert ds.meta["fonts"] and set(ds.meta["fonts"]) <= set(glyphs.fonts_for(name))


def test_domain_fonts_really_contain_the_characters():
    from fontTools.ttLib import TTFont

    for name in GLYPH_NAMES:
        fonts = glyphs.fonts_for(name)
        assert fonts, name
        assert not any(f.startswith(("LastResort", "cm")) for f in fonts)
        for f in fonts:
            cmap = TTFont(str(glyphs.font_dir() / f), lazy=True).getBestCmap()
            assert all(ord(ch) in cmap for ch in glyphs.DOMAINS[name]), (name, f)
    # Hebrew is only in DejaVu Sans; the serif and mono faces must not be used for it
    assert all(f.startswith("DejaVuSans-") or f == "DejaVuSans.ttf"
               for f in glyphs.fonts_for("glyphs-hebrew"))


def test_generate_is_deterministic_and_seed_dependent():
    x1, y1 = glyphs.generate("glyphs-greek", 5, seed=3)
    x2, y2 = glyphs.generate("greek", 5, seed=3)
    assert x1.dtype == np.uint8 and x1.shape == (5 * 24, 28, 28)
    assert y1.dtype == np.int64 and np.bincount(y1).tolist() == [5] * 24
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    x3, _ = glyphs.generate("glyphs-greek", 5, seed=4)
    assert not np.array_equal(x1, x3)
    xv, _ = glyphs.generate("glyphs-greek", 5, seed=3, split="val")
    assert not np.array_equal(x1, xv)


def test_load_is_deterministic_across_cache_folders(tmp_path):
    a = load("glyphs-digits", root=tmp_path / "a", seed=1, **SMALL)
    b = load("glyphs-digits", root=tmp_path / "b", seed=1, **SMALL)
    c = load("glyphs-digits", root=tmp_path / "c", seed=2, **SMALL)
    for s in ("train", "val", "test"):
        assert np.array_equal(a.split(s)[0].numpy(), b.split(s)[0].numpy())
        assert np.array_equal(a.split(s)[1].numpy(), b.split(s)[1].numpy())
    assert not np.array_equal(a.x_train.numpy(), c.x_train.numpy())


def test_images_are_not_blank_and_vary_within_a_class():
    x, y = glyphs.generate("glyphs-latin-upper", 8, seed=0)
    flat = x.reshape(len(x), -1).astype(np.int64)
    assert (flat.max(1) >= 128).all()  # something bright in every image
    assert (flat.std(1) > 10).all()  # not a flat field
    for c in range(26):
        members = flat[y == c]
        assert len({m.tobytes() for m in members}) == len(members)
        assert np.abs(members[0] - members[1]).mean() > 5
    # strokes are white on a dark background, like MNIST
    assert np.median(flat) < 60


def test_cache_is_written_then_reused(data_root, monkeypatch):
    ds = load("glyphs-digits", seed=5, **SMALL)
    path = glyphs.cache_path(data_root, "glyphs-digits", 6, 3, 4, 5)
    assert path.is_file()
    assert path.name == f"glyphs-digits-6-3-4-s5-v{glyphs.GENERATOR_VERSION}.npz"

    def boom(*args, **kwargs):
        raise AssertionError("generate() called although the cache exists")

    monkeypatch.setattr(glyphs, "generate", boom)
    again = load("glyphs-digits", seed=5, **SMALL)
    assert np.array_equal(again.x_test.numpy(), ds.x_test.numpy())
    assert again.classes == ds.classes and again.meta["seed"] == 5


def test_corrupt_cache_is_regenerated(data_root):
    ds = load("glyphs-digits", **SMALL)
    path = glyphs.cache_path(data_root, "glyphs-digits", 6, 3, 4, 0)
    path.write_bytes(b"not an npz file")
    with pytest.warns(UserWarning, match="Regenerating"):
        again = load("glyphs-digits", **SMALL)
    assert np.array_equal(again.x_train.numpy(), ds.x_train.numpy())
    # ... and the cache is repaired
    assert np.array_equal(Dataset.load_file(path, "x").x_train.numpy(), ds.x_train.numpy())


def test_default_eval_split_sizes(data_root):
    ds = load("glyphs-digits", samples_per_class=8)
    assert ds.sizes == {"train": 80, "val": 50, "test": 50}  # at least 5 per class


def test_unknown_option_and_bad_values_raise_clearly(data_root):
    with pytest.raises(InvalidConfigError, match="bogus"):
        load("glyphs-digits", bogus=1)
    with pytest.raises(InvalidConfigError, match="samples_per_class"):
        load("glyphs-digits", samples_per_class=0)
    with pytest.raises(InvalidConfigError, match="seed"):
        load("glyphs-digits", samples_per_class=5, seed=-1)
    with pytest.raises(InvalidConfigError, match="glyph domain"):
        glyphs.generate("glyphs-klingon", 2, 0)


def test_download_flag_is_accepted(data_root):
    ds = load("glyphs-digits", download=True, **SMALL)
    assert ds.num_classes == 10
