"""The built-in offline ``glyphs-*`` datasets: distorted character images rendered from fonts.

Every domain (digits, Latin, Greek, Cyrillic, Hebrew, Armenian, Georgian) is drawn by one
generator from the fonts matplotlib ships (DejaVu Sans/Serif/Sans Mono and STIX General), so the
family needs no download and is always available. Each sample picks a random font that covers
its domain, a random stroke thickness and a random affine plus elastic distortion, is reduced to
28x28 with antialiasing, then gets blur, occluding strokes, contrast changes and noise. The
result looks like MNIST (white strokes on black, ``uint8``), is byte-identical for the same
arguments, and is hard enough that tuning a CNN pays off.

Generated datasets are cached under ``<root>/glyphs/``; bump :data:`GENERATOR_VERSION` whenever
the generator's output changes so stale caches are not reused.
"""

from __future__ import annotations

import dataclasses
import warnings
import zlib
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from automl_chars.data.dataset import IMAGE_SIZE, Dataset
from automl_chars.data.registry import data_root, register_dataset
from automl_chars.errors import InvalidConfigError

#: Bump whenever the generator's output changes: it is part of every cache file name.
GENERATOR_VERSION = 1

# Each domain's characters, in label order. One generator serves all of them, so adding a
# script is one line here (after checking font coverage with `fonts_for`).
_DOMAIN_TABLE: dict[str, tuple[str, str]] = {
    "digits": ("0123456789", "digits 0-9"),
    "latin-upper": ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "Latin capital letters A-Z"),
    "latin-lower": ("abcdefghijklmnopqrstuvwxyz", "Latin small letters a-z"),
    "greek": ("αβγδεζηθικλμνξοπρστυφχψω", "the 24 lowercase Greek letters"),
    # Ё is left out (32 letters): at 28x28 under noise its diaeresis is barely separable from Е.
    "cyrillic": ("АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ", "uppercase Russian Cyrillic letters"),
    # The 22 base letters; the final forms are left out because several (ן/ו, ך/ד) differ from
    # their base letters only by a descender that the distortions can erase.
    "hebrew": ("אבגדהוזחטיכלמנסעפצקרשת", "the 22 Hebrew letters"),
    "armenian": ("".join(map(chr, range(0x0531, 0x0557))), "Armenian capital letters"),
    "georgian": ("".join(map(chr, range(0x10D0, 0x10F1))), "Georgian Mkhedruli letters"),
}

#: Glyph domains by registry name (``"glyphs-digits"``, ...) -> their characters in label order.
DOMAINS: dict[str, str] = {f"glyphs-{k}": chars for k, (chars, _) in _DOMAIN_TABLE.items()}

# Fonts a domain may draw from, if their cmap covers it. A whitelist on purpose: matplotlib also
# ships LastResortHE (a font made of placeholder boxes for every code point) and the BaKoMa
# Computer Modern fonts, whose cmaps claim ASCII but map it to math symbols.
_FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
)

_SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}
_CANVAS = 64  # side of the base rendering; glyphs are warped at this resolution
_WORK = 2 * IMAGE_SIZE  # warped side; a 2x2 average pool then gives antialiased 28x28
_FONT_SIZE = 46  # px; capitals come out ~34 px tall on the 64 canvas, ~15 px at 28x28
_MAX_INK = 48  # largest ink-box side on the canvas; wider/taller glyphs are scaled down
# Stroke weight choices per face: > 0 thickens by PIL's stroke_width (px on the 64 canvas), < 0
# thins by up to |w| one-pixel erosions. Regular faces are only thickened (thin serifs would
# vanish), bold ones mostly thinned (thickening them fills counters such as the holes of A, B, 8);
# both end up between ~1.5 and ~5 px wide at 28x28.
_WEIGHTS = {
    False: ((0, 1, 2, 3), (0.35, 0.3, 0.2, 0.15)),
    True: ((-2, -1, 0, 1), (0.25, 0.3, 0.3, 0.15)),
}
_MIN_INK_KEPT = 0.5  # erosion never removes more than half of a glyph's ink
_CHUNK = 2048  # samples warped per torch call: bounds memory to ~100 MB


def font_dir() -> Path:
    """The folder holding matplotlib's bundled TrueType fonts."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _domain_key(domain: str) -> str:
    name = domain if domain.startswith("glyphs-") else f"glyphs-{domain}"
    if name not in DOMAINS:
        raise InvalidConfigError(
            f"Unknown glyph domain {domain!r}; known domains: {', '.join(DOMAINS)}."
        )
    return name


@cache
def _font_table(file: str):
    """``(cmap, glyf table)`` of a bundled font, or ``None`` if matplotlib lacks it."""
    from fontTools.ttLib import TTFont

    path = font_dir() / file
    if not path.is_file():
        return None
    tt = TTFont(str(path), lazy=True)
    return tt.getBestCmap(), (tt["glyf"] if "glyf" in tt else None)


def _covers(file: str, chars: str) -> bool:
    table = _font_table(file)
    if table is None:
        return False
    cmap, glyf = table
    for ch in chars:
        glyph = cmap.get(ord(ch))
        if glyph is None or glyph == ".notdef":
            return False
        # A cmap entry pointing at an empty outline would render a blank image, not the letter.
        if glyf is not None and glyf[glyph].numberOfContours == 0:
            return False
    return True


@cache
def fonts_for(domain: str) -> tuple[str, ...]:
    """Font files (names inside :func:`font_dir`) that contain every character of ``domain``.

    Coverage is read from each font's cmap with fontTools, so a font that lacks a glyph is never
    asked to draw it (PIL would silently draw a placeholder box).
    """
    chars = DOMAINS[_domain_key(domain)]
    return tuple(f for f in _FONT_FILES if _covers(f, chars))


@cache
def _font(file: str) -> ImageFont.FreeTypeFont:
    # Loading a FreeType face costs ~1 ms; samples reuse it.
    return ImageFont.truetype(str(font_dir() / file), _FONT_SIZE)


@lru_cache(maxsize=16384)  # ~64 MB when full (all domains, fonts and weights)
def _template(file: str, char: str, weight: int) -> np.ndarray:
    """``char`` in ``file`` at stroke ``weight``, ink box centred on a 64x64 ``uint8`` canvas.

    Cached: every sample of a (font, character, weight) triple starts from the same rendering and
    differs only by its random distortion, which keeps generation fast.
    """
    big = 2 * _CANVAS
    img = Image.new("L", (big, big), 0)
    ImageDraw.Draw(img).text((big // 2, big // 2), char, font=_font(file), fill=255,
                             anchor="mm", stroke_width=max(weight, 0), stroke_fill=255)
    # Thin by up to -weight one-pixel erosions, stopping before a step would leave less than
    # _MIN_INK_KEPT of the ink: some bold faces (STIX Bold Italic lowercase) have hairlines
    # that a fixed erosion wipes out.
    ink_px = np.count_nonzero(np.asarray(img) > 127)
    for _ in range(-weight):
        thinner = img.filter(ImageFilter.MinFilter(3))
        if np.count_nonzero(np.asarray(thinner) > 127) < _MIN_INK_KEPT * ink_px:
            break
        img = thinner
    box = img.getbbox()
    if box is None:
        raise RuntimeError(f"Font {file} rendered {char!r} (U+{ord(char):04X}) as an empty image.")
    ink = img.crop(box)
    side = max(ink.size)
    if side > _MAX_INK:
        scale = _MAX_INK / side
        ink = ink.resize((max(1, round(ink.width * scale)), max(1, round(ink.height * scale))),
                         Image.LANCZOS)
    out = Image.new("L", (_CANVAS, _CANVAS), 0)
    out.paste(ink, ((_CANVAS - ink.width) // 2, (_CANVAS - ink.height) // 2))
    return np.asarray(out, dtype=np.uint8)


def _seed_sequence(name: str, n_per_class: int, seed: int, split: str) -> np.random.SeedSequence:
    # crc32 rather than hash(): str hashes are salted per process and would break determinism.
    return np.random.SeedSequence(
        [zlib.crc32(name.encode()), n_per_class, seed, _SPLIT_STREAMS[split], GENERATOR_VERSION]
    )


def _inverse_affines(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 2, 3)`` matrices mapping output to input coordinates (``affine_grid``'s convention)."""
    rot = np.deg2rad(np.clip(rng.normal(0.0, 11.0, n), -25.0, 25.0))
    shear = rng.uniform(-0.35, 0.35, n)
    scale = np.exp(rng.normal(0.0, 0.13, n))  # overall size, ~ +-13 %
    aniso = np.exp(rng.normal(0.0, 0.14, n))  # width/height ratio
    sx, sy = scale * aniso, scale / aniso
    shift = rng.uniform(-0.14, 0.14, (n, 2))  # in [-1, 1] image units: up to ~2 px at 28x28
    c, s = np.cos(rot), np.sin(rot)
    # forward map A = R @ Shear @ diag(sx, sy); its inverse in closed form (elementwise, so the
    # same bytes on every machine and thread count, unlike batched LAPACK/BLAS calls)
    a00, a01 = c * sx, (c * shear - s) * sy
    a10, a11 = s * sx, (s * shear + c) * sy
    det = a00 * a11 - a01 * a10
    theta = np.empty((n, 2, 3))
    theta[:, 0, 0], theta[:, 0, 1] = a11 / det, -a01 / det
    theta[:, 1, 0], theta[:, 1, 1] = -a10 / det, a00 / det
    # output point p came from input A^-1 (p - shift)
    theta[:, :, 2] = -(theta[:, :, 0] * shift[:, :1] + theta[:, :, 1] * shift[:, 1:])
    return theta


@cache
def _upsampler(coarse: int, fine: int) -> torch.Tensor:
    """``(fine, coarse)`` weights of 1-D bicubic upsampling (it is linear: see :func:`_lincomb`)."""
    eye = torch.eye(coarse).view(coarse, 1, 1, coarse)
    m = F.interpolate(eye, size=(1, fine), mode="bicubic", align_corners=False)
    return m.view(coarse, fine).T.contiguous()


@cache
def _pixel_centres(side: int) -> torch.Tensor:
    """Pixel-centre coordinates in [-1, 1] along one axis (``affine_grid``'s convention)."""
    return (torch.arange(side, dtype=torch.float32) * 2 + 1) / side - 1


def _lincomb(weights: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    """``sum_k weights[..., k] * x.select(dim, k)``, as separate elementwise multiplies and adds.

    Used instead of ``matmul`` on purpose: BLAS kernels may sum in a different order depending on
    the thread count (Ray workers run single-threaded, a notebook does not), which could flip a
    rounded pixel; exactly rounded elementwise arithmetic gives the same bytes everywhere.
    """
    out = weights[..., 0] * x.select(dim, 0)
    term = torch.empty_like(out)
    for k in range(1, x.shape[dim]):
        out.add_(torch.mul(weights[..., k], x.select(dim, k), out=term))
    return out


def _warp(base: np.ndarray, theta: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Affine + elastic warp and antialiased reduction to 28x28 (floats in 0..1)."""
    out = np.empty((len(base), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    up = _upsampler(field.shape[-1], _WORK)  # (WORK, coarse)
    c = _pixel_centres(_WORK)
    with torch.no_grad():
        for lo in range(0, len(base), _CHUNK):
            sl = slice(lo, lo + _CHUNK)
            x = torch.from_numpy(base[sl]).unsqueeze(1).float().div_(255.0)
            th = torch.from_numpy(theta[sl]).float()[:, :, :, None, None]  # (n, 2, 3, 1, 1)
            # sampling position of output pixel (row r, column q): th @ (c[q], c[r], 1), built by
            # broadcasting a column term against a row term
            grid = (th[:, :, 0] * c + th[:, :, 2]) + th[:, :, 1] * c[:, None]  # (n, 2, WORK, WORK)
            # A smooth random displacement field (coarse noise, bicubically upsampled) bends
            # strokes a little. Separable: first along columns, then along rows.
            f = torch.from_numpy(field[sl])  # (n, 2, c, c)
            cols = _lincomb(up[None, None, None], f[:, :, :, None, :], dim=4)  # (n, 2, c, WORK)
            disp = _lincomb(up[None, None, :, None, :], cols.unsqueeze(2), dim=3)
            grid = (grid + disp).permute(0, 2, 3, 1)
            w = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            out[sl] = F.avg_pool2d(w, 2).squeeze(1).numpy()
    return out


def _blur3(x: np.ndarray) -> np.ndarray:
    # separable [1, 2, 1] / 4 binomial blur with edge replication
    p = np.pad(x, ((0, 0), (1, 1), (0, 0)), mode="edge")
    x = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) / 4
    p = np.pad(x, ((0, 0), (0, 0), (1, 1)), mode="edge")
    return (p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]) / 4


def _occlude(x: np.ndarray, rng: np.random.Generator, prob: float) -> None:
    """Draws one random line segment (bright stroke or dark gap) over a ``prob`` share, in place."""
    hit = np.flatnonzero(rng.random(len(x)) < prob)
    k = len(hit)
    p0 = rng.uniform(2, IMAGE_SIZE - 2, (k, 2))
    length = rng.uniform(6, 20, k)
    angle = rng.uniform(0, np.pi, k)
    p1 = p0 + length[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    width = rng.uniform(1.0, 2.2, k)
    bright = rng.random(k) < 0.5
    value = np.where(bright, rng.uniform(0.6, 1.0, k), 0.0)
    if not k:
        return
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) + 0.5
    pts = np.stack([xx, yy], -1)[None]  # (1, H, W, 2)
    d = (p1 - p0)[:, None, None, :]
    rel = pts - p0[:, None, None, :]
    t = np.clip((rel * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-6), 0.0, 1.0)
    dist = np.linalg.norm(rel - t[..., None] * d, axis=-1)
    alpha = np.clip(width[:, None, None] / 2 + 0.5 - dist, 0.0, 1.0).astype(np.float32)
    x[hit] = x[hit] * (1 - alpha) + value[:, None, None].astype(np.float32) * alpha


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidConfigError(f"glyphs: {what} must be a positive integer, got {value!r}.")
    return int(value)


def _seed_int(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidConfigError(f"glyphs: seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def generate(
    domain: str, n_per_class: int, seed: int, *, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Draws ``n_per_class`` distorted images of every character of ``domain``.

    Args:
        domain: a name from :data:`DOMAINS` (``"glyphs-greek"``) or its short form (``"greek"``).
        n_per_class: images per character.
        seed: any non-negative integer; with ``domain``, ``n_per_class`` and ``split`` it fixes
            the output byte for byte.
        split: ``"train"``, ``"val"`` or ``"test"``; each draws from its own random stream, so
            splits of one seed are independent draws.

    Returns:
        ``(images, labels)``: ``uint8 (N, 28, 28)`` white-on-black images and ``int64 (N,)``
        labels (index into the domain's characters), ``N = n_per_class * num_classes``, in
        shuffled order.
    """
    name = _domain_key(domain)
    n_per_class, seed = _positive_int(n_per_class, "n_per_class"), _seed_int(seed)
    if split not in _SPLIT_STREAMS:
        raise InvalidConfigError(f"Unknown split {split!r}; use one of {tuple(_SPLIT_STREAMS)}.")
    chars, fonts = DOMAINS[name], fonts_for(name)
    if not fonts:
        raise RuntimeError(f"No bundled matplotlib font covers every character of {name!r}.")
    rng = np.random.default_rng(_seed_sequence(name, n_per_class, seed, split))
    n = n_per_class * len(chars)
    labels = rng.permutation(np.repeat(np.arange(len(chars), dtype=np.int64), n_per_class))

    # -- geometry: font, stroke weight, affine map, elastic field ---------------------------------
    font_idx = rng.integers(0, len(fonts), n)
    bold = np.array(["Bol" in f for f in fonts])[font_idx]
    u = rng.random(n)
    weight = np.empty(n, dtype=np.int64)
    for is_bold, (choices, probs) in _WEIGHTS.items():
        pick = np.minimum(np.searchsorted(np.cumsum(probs), u), len(choices) - 1)
        weight = np.where(bold == is_bold, np.asarray(choices)[pick], weight)
    base = np.empty((n, _CANVAS, _CANVAS), dtype=np.uint8)
    for i in range(n):
        base[i] = _template(fonts[font_idx[i]], chars[labels[i]], int(weight[i]))
    theta = _inverse_affines(rng, n)
    field = (rng.normal(0.0, 0.035, (n, 2, 4, 4))).astype(np.float32)
    x = _warp(base, theta, field)

    # -- appearance: blur, occlusion, contrast, noise (all vectorised over samples) ------------
    blur_amount = np.where(rng.random(n) < 0.35, rng.uniform(0.4, 1.0, n), 0.0).astype(np.float32)
    x += blur_amount[:, None, None] * (_blur3(x) - x)
    _occlude(x, rng, prob=0.35)
    peak = rng.uniform(0.55, 1.0, n).astype(np.float32)
    floor = rng.uniform(0.0, 0.12, n).astype(np.float32)
    x = floor[:, None, None] + x * (peak - floor)[:, None, None]
    sigma = rng.uniform(0.02, 0.14, n).astype(np.float32)
    x += sigma[:, None, None] * rng.standard_normal(x.shape, dtype=np.float32)
    density = rng.uniform(0.0, 0.03, n)
    u = rng.random(x.shape, dtype=np.float32)
    salt = u < (density / 2)[:, None, None]
    pepper = (u >= (density / 2)[:, None, None]) & (u < density[:, None, None])
    x[salt] = 1.0
    x[pepper] = 0.0
    images = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return images, labels


def cache_path(root: str | Path, domain: str, samples_per_class: int, val_per_class: int,
               test_per_class: int, seed: int) -> Path:
    """Where a generated dataset is cached under the data root ``root``."""
    name = _domain_key(domain)
    return (Path(root) / "glyphs"
            / f"{name}-{samples_per_class}-{val_per_class}-{test_per_class}-s{seed}"
              f"-v{GENERATOR_VERSION}.npz")


def load_domain(
    domain: str,
    root: str | Path | None = None,
    *,
    samples_per_class: int = 200,
    val_per_class: int | None = None,
    test_per_class: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Generates (or reads from the cache) one glyph domain with fixed train/val/test splits.

    Args:
        domain: a name from :data:`DOMAINS` or its short form.
        root: data root; defaults to :func:`~automl_chars.data.registry.data_root`.
        samples_per_class: training images per class.
        val_per_class: validation images per class; default ``max(5, samples_per_class // 4)``.
        test_per_class: test images per class; default ``max(5, samples_per_class // 4)``.
        seed: fixes all three splits.

    Returns:
        The dataset, named like the domain (``"glyphs-greek"``), with the characters as classes.
    """
    name = _domain_key(domain)
    n_train = _positive_int(samples_per_class, "samples_per_class")
    default_eval = max(5, n_train // 4)
    n_val = default_eval if val_per_class is None else _positive_int(val_per_class, "val_per_class")
    n_test = default_eval if test_per_class is None else _positive_int(test_per_class, "test_per_class")
    seed = _seed_int(seed)
    chars = DOMAINS[name]
    meta = {"domain": name, "samples_per_class": n_train, "val_per_class": n_val,
            "test_per_class": n_test, "seed": seed, "generator_version": GENERATOR_VERSION,
            "fonts": list(fonts_for(name))}
    path = cache_path(data_root(root), name, n_train, n_val, n_test, seed)

    if path.is_file():
        try:
            cached = Dataset.load_file(path, name)
            expected = {"train": n_train, "val": n_val, "test": n_test}
            if cached.classes != tuple(chars) or cached.sizes != {
                s: k * len(chars) for s, k in expected.items()
            }:
                raise ValueError("contents do not match its name")
            return dataclasses.replace(cached, meta=meta)
        except Exception as err:  # any unreadable cache is rebuilt, never fatal
            warnings.warn(f"Regenerating {name}: cache file {path} is unreadable ({err}).",
                          stacklevel=2)

    splits = {}
    for split, k in (("train", n_train), ("val", n_val), ("test", n_test)):
        x, y = generate(name, k, seed, split=split)
        splits[f"x_{split}"] = torch.from_numpy(x).unsqueeze(1)
        splits[f"y_{split}"] = torch.from_numpy(y)
    ds = Dataset(name=name, classes=tuple(chars), meta=meta,
                 source=f"built-in glyph generator v{GENERATOR_VERSION} (matplotlib fonts)",
                 **splits)
    return save_to_cache(ds, path)


def save_to_cache(ds: Dataset, path: Path) -> Dataset:
    """``ds``, saved at ``path`` for the next load; a read-only data root only costs the cache
    (a warning), never the dataset."""
    try:
        ds.save(path)
    except OSError as err:
        warnings.warn(f"Could not cache {ds.name} at {path}: {err}", stacklevel=3)
    return ds


def _make_loader(name: str):
    def load_glyphs(
        root: Path,
        download: bool = False,
        *,
        samples_per_class: int = 200,
        val_per_class: int | None = None,
        test_per_class: int | None = None,
        seed: int = 0,
    ) -> Dataset:
        # `download` is accepted for the common loader signature; glyphs are built offline.
        return load_domain(name, root, samples_per_class=samples_per_class,
                           val_per_class=val_per_class, test_per_class=test_per_class, seed=seed)

    load_glyphs.__doc__ = f"Loads {name!r}; see :func:`load_domain` for the options."
    load_glyphs.__qualname__ = f"load_glyphs[{name}]"
    return load_glyphs


for _name, (_chars, _what) in _DOMAIN_TABLE.items():
    register_dataset(
        f"glyphs-{_name}",
        # "can it be built offline": true whenever some bundled font covers the domain
        available=lambda root, _n=f"glyphs-{_name}": bool(fonts_for(_n)),
        description=f"Built-in: {_what} ({len(_chars)} classes) rendered from bundled fonts "
                    f"with random distortions and noise.",
        builtin=True,
    )(_make_loader(f"glyphs-{_name}"))
