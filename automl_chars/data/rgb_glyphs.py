"""The built-in offline ``rgb-glyphs-*`` datasets: the glyph domains in colour, 32x32 RGB.

Each image is the same-named ``glyphs-*`` image (same arguments, same glyph) painted in colour and
placed on a CIFAR-sized canvas: the 28x28 glyph is shifted by up to 4 pixels inside 32x32, its
strokes get one random colour, the background a random two-colour gradient in a random direction,
and each channel its own noise. Stroke and background colours are drawn far apart in brightness
(light strokes on a dark background or dark on light, at random), so the class is in the shape,
never in the colour: a model must look past the colours, as on photographs. Like the grayscale
family they need no download, are byte-identical for the same arguments, and are cached under
``<root>/glyphs/``; bump :data:`COLOUR_VERSION` whenever the painting changes.
"""

from __future__ import annotations

import dataclasses
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch

from automl_chars.data import glyphs
from automl_chars.data.dataset import IMAGE_SIZE, SPLITS, Dataset
from automl_chars.data.registry import data_root, register_dataset

#: Bump whenever the painting changes: it is part of every cache file name.
COLOUR_VERSION = 1
#: Side of the colour images (CIFAR's).
RGB_SIZE = 32
PREFIX = "rgb-glyphs-"
_MAX_SHIFT = RGB_SIZE - IMAGE_SIZE


def rgb_name(domain: str) -> str:
    """``"glyphs-digits"`` (or ``"digits"``) -> ``"rgb-glyphs-digits"``."""
    return PREFIX + domain.removeprefix("glyphs-")


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601


def paint(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour images ``uint8 (n, 3, 32, 32)`` of grayscale glyphs ``uint8 (n, 28, 28)``.

    The glyph's brightness is the stroke's opacity over a gradient background; see the module
    docstring for the colours drawn from ``rng``.
    """
    n = len(masks)
    alpha = np.zeros((n, RGB_SIZE, RGB_SIZE), dtype=np.float32)
    shift = rng.integers(0, _MAX_SHIFT + 1, (n, 2))
    for i, (dy, dx) in enumerate(shift):
        alpha[i, dy : dy + IMAGE_SIZE, dx : dx + IMAGE_SIZE] = masks[i] / np.float32(255.0)
    dark = rng.random(n) < 0.5  # the background's polarity: dark (light strokes) or light
    base = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)
    bg_scale = np.where(dark, 0.45, 0.4)[:, None].astype(np.float32)
    bg_offset = np.where(dark, 0.0, 0.6)[:, None].astype(np.float32)
    bg0 = bg_offset + bg_scale * base
    bg1 = np.clip(bg0 + rng.normal(0.0, 0.1, (n, 3)), 0.0, 1.0).astype(np.float32)
    fg = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)
    # strokes at least 0.35 in luma away from the background's brighter or darker end
    fg_target = np.where(dark, rng.uniform(0.7, 1.0, n), rng.uniform(0.0, 0.3, n))
    fg = np.clip(fg + (fg_target - _luma(fg))[:, None], 0.0, 1.0)
    angle = rng.uniform(0.0, 2 * np.pi, n).astype(np.float32)
    ramp = (np.arange(RGB_SIZE, dtype=np.float32) + 0.5) / RGB_SIZE - 0.5
    t = 0.5 + np.cos(angle)[:, None, None] * ramp[None, None, :] \
        + np.sin(angle)[:, None, None] * ramp[None, :, None]  # (n, H, W) in [0, 1]
    bg = bg0[:, :, None, None] + (bg1 - bg0)[:, :, None, None] * t[:, None]
    img = bg * (1.0 - alpha[:, None]) + fg[:, :, None, None] * alpha[:, None]
    sigma = rng.uniform(0.0, 0.06, n).astype(np.float32)
    img += sigma[:, None, None, None] * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _colour_rng(name: str, sizes: tuple[int, int, int], seed: int, split: str) -> np.random.Generator:
    # crc32, not hash(): str hashes are salted per process and would break determinism.
    return np.random.default_rng(np.random.SeedSequence(
        [zlib.crc32(name.encode()), *sizes, seed, SPLITS.index(split), COLOUR_VERSION]))


def cache_path(root: str | Path, name: str, sizes: tuple[int, int, int], seed: int) -> Path:
    """Where a colour glyph set is cached under the data root ``root``."""
    n_train, n_val, n_test = sizes
    return (Path(root) / "glyphs" / f"{name}-{n_train}-{n_val}-{n_test}-s{seed}"
            f"-v{glyphs.GENERATOR_VERSION}.{COLOUR_VERSION}.npz")


def load_rgb_domain(
    domain: str,
    root: str | Path | None = None,
    *,
    samples_per_class: int = 200,
    val_per_class: int | None = None,
    test_per_class: int | None = None,
    seed: int = 0,
) -> Dataset:
    """The colour version of one glyph domain (arguments as
    :func:`~automl_chars.data.glyphs.load_domain`'s, whose images it paints).

    Returns:
        The dataset ``rgb-glyphs-<domain>``: ``uint8 (N, 3, 32, 32)``, the characters as classes.
    """
    gray = glyphs.load_domain(domain, root, samples_per_class=samples_per_class,
                              val_per_class=val_per_class, test_per_class=test_per_class,
                              seed=seed)
    name = rgb_name(gray.name)
    sizes = (gray.meta["samples_per_class"], gray.meta["val_per_class"],
             gray.meta["test_per_class"])
    meta = {**gray.meta, "domain": name, "colour_version": COLOUR_VERSION}
    path = cache_path(data_root(root), name, sizes, gray.meta["seed"])
    if path.is_file():
        try:
            cached = Dataset.load_file(path, name)
            if cached.classes != gray.classes or cached.sizes != gray.sizes:
                raise ValueError("contents do not match its name")
            return dataclasses.replace(cached, meta=meta)
        except Exception as err:  # any unreadable cache is rebuilt, never fatal
            warnings.warn(f"Regenerating {name}: cache file {path} is unreadable ({err}).",
                          stacklevel=2)
    splits = {}
    for split in SPLITS:
        x, y = gray.split(split)
        rng = _colour_rng(name, sizes, gray.meta["seed"], split)
        splits[f"x_{split}"] = torch.from_numpy(paint(x[:, 0].numpy(), rng))
        splits[f"y_{split}"] = y
    ds = Dataset(name=name, classes=gray.classes, meta=meta, **splits,
                 source=f"built-in glyph generator v{glyphs.GENERATOR_VERSION}, painted in "
                        f"colour v{COLOUR_VERSION}")
    return glyphs.save_to_cache(ds, path)


def _make_loader(domain: str):
    def load_rgb_glyphs(
        root: Path,
        download: bool = False,
        *,
        samples_per_class: int = 200,
        val_per_class: int | None = None,
        test_per_class: int | None = None,
        seed: int = 0,
    ) -> Dataset:
        # `download` is accepted for the common loader signature; glyphs are built offline.
        return load_rgb_domain(domain, root, samples_per_class=samples_per_class,
                               val_per_class=val_per_class, test_per_class=test_per_class,
                               seed=seed)

    load_rgb_glyphs.__doc__ = f"Loads {rgb_name(domain)!r}; see :func:`load_rgb_domain`."
    load_rgb_glyphs.__qualname__ = f"load_rgb_glyphs[{rgb_name(domain)}]"
    return load_rgb_glyphs


for _domain, _chars in glyphs.DOMAINS.items():
    register_dataset(
        rgb_name(_domain),
        available=lambda root, _d=_domain: bool(glyphs.fonts_for(_d)),
        description=f"Built-in: {_domain} ({len(_chars)} classes) in colour, 32x32 RGB "
                    f"(random stroke and gradient background colours).",
        builtin=True,
    )(_make_loader(_domain))
