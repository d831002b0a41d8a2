"""The in-memory dataset object every part of the platform accepts wherever a name is."""

from __future__ import annotations

import os
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from automl_chars.data.sampling import stratified_split, stratified_subset
from automl_chars.errors import InvalidConfigError

#: Side length :func:`from_arrays` brings images to by default (the character datasets' size).
IMAGE_SIZE = 28
#: Largest side accepted by :func:`from_arrays`.
MAX_INPUT_SIZE = 64
#: Most channels :func:`from_arrays` reads (gray 1, RGB 3, RGBA 4); more would be ambiguous with
#: a channels-last layout's width.
MAX_CHANNELS = 4
#: Share of the training set held out for validation when a dataset has no validation split.
VALIDATION_FRACTION = 0.1
SPLITS = ("train", "val", "test")
_RESIZE_CHUNK = 4096


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images held as tensors, with fixed train/validation/test splits.

    Images are ``uint8`` tensors of shape ``(N, C, H, W)``, one shape for every split: the
    character datasets are ``(N, 1, 28, 28)`` (white strokes on black), CIFAR-10 and the
    ``rgb-glyphs-*`` sets ``(N, 3, 32, 32)``. Labels are ``int64`` in ``[0, num_classes)``.
    Trials move the tensors to their device once and slice batches from them; models are built
    for :attr:`image_shape`.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    source: str = ""
    #: Loader-specific facts (e.g. generation settings); not stored by :meth:`save`.
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in SPLITS:
            x, y = self.split(split)
            if x.dtype != torch.uint8 or x.ndim != 4 or min(x.shape[1:]) < 1:
                raise InvalidConfigError(
                    f"Dataset {self.name!r}: x_{split} must be uint8 of shape (N, C, H, W), "
                    f"got {tuple(x.shape)} {x.dtype}."
                )
            if x.shape[1:] != self.x_train.shape[1:]:
                raise InvalidConfigError(
                    f"Dataset {self.name!r}: x_{split} holds {_shape_text(x.shape[1:])} images, "
                    f"x_train {_shape_text(self.x_train.shape[1:])} (channels x height x width); "
                    f"every split must have one image shape: give them the same channels "
                    f"(from_arrays(..., image_size=...) brings their sizes to one)."
                )
            if y.dtype != torch.int64 or y.ndim != 1 or len(y) != len(x):
                raise InvalidConfigError(
                    f"Dataset {self.name!r}: y_{split} must be int64 of shape ({len(x)},), "
                    f"got {tuple(y.shape)} {y.dtype}."
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
                raise InvalidConfigError(
                    f"Dataset {self.name!r}: y_{split} has labels outside [0, {len(self.classes)})."
                )
        if len(self.y_train) == 0:
            raise InvalidConfigError(f"Dataset {self.name!r} has an empty training split.")

    # -- description -------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of every image (what models are built for)."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def sizes(self) -> dict[str, int]:
        return {s: len(self.split(s)[1]) for s in SPLITS}

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(x, y)`` of the split ``name`` (train, val or test)."""
        if name not in SPLITS:
            raise InvalidConfigError(f"Unknown split {name!r}; use one of {SPLITS}.")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def class_counts(self, split: str = "train") -> np.ndarray:
        return np.bincount(self.split(split)[1].numpy(), minlength=self.num_classes)

    def describe(self) -> dict:
        """A plain-dict summary: name, classes, sizes, shape, source."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "image_shape": list(self.image_shape),
            **{f"n_{k}": v for k, v in self.sizes.items()},
            "source": self.source,
        }

    def fingerprint(self) -> str:
        """A short id of the contents (sizes, labels, a sample of pixels); resume checks it."""
        h = zlib.crc32(repr((self.name, self.classes, self.sizes)).encode())
        for split in SPLITS:
            x, y = self.split(split)
            h = zlib.crc32(y.numpy().tobytes(), h)
            h = zlib.crc32(x[:: max(1, len(x) // 64)].numpy().tobytes(), h)
        return f"{h:08x}"

    def stratified_sample(
        self, fraction: float, split: str = "train", seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A stratified ``fraction`` of a split, as ``(x, y)``; nested across fractions."""
        x, y = self.split(split)
        idx = torch.from_numpy(stratified_subset(y.numpy(), fraction, seed))
        return x[idx], y[idx]

    def save(self, path: str | Path) -> Path:
        """Writes the dataset to one ``.npz`` file (atomically), e.g. as a processed cache."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{k}_{s}": getattr(self, f"{k}_{s}").numpy() for s in SPLITS for k in "xy"}
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)  # unique: parallel writers
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, classes=np.array(self.classes), source=np.array(self.source), **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load_file(cls, path: str | Path, name: str) -> Dataset:
        """Reads a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            tensors = {k: torch.from_numpy(z[k].copy()) for k in z.files if k[:2] in ("x_", "y_")}
            return cls(name=name, classes=tuple(str(c) for c in z["classes"]),
                       source=str(z["source"]), **tensors)

    def __repr__(self) -> str:
        s = self.sizes
        return (
            f"Dataset({self.name!r}, classes={self.num_classes}, train={s['train']}, "
            f"val={s['val']}, test={s['test']})"
        )


def _shape_text(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def _channels_first(t: torch.Tensor, name: str, what: str) -> torch.Tensor:
    """``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)`` as ``(N, C, H, W)``."""
    if t.ndim == 3:
        return t.unsqueeze(1)
    if t.ndim == 4 and t.shape[1] <= MAX_CHANNELS:
        return t
    if t.ndim == 4 and t.shape[-1] <= MAX_CHANNELS:
        return t.permute(0, 3, 1, 2)
    raise InvalidConfigError(
        f"{name}: {what} must be images shaped (N, H, W), (N, C, H, W) or (N, H, W, C) with 1 "
        f"to {MAX_CHANNELS} channels (gray 1, RGB 3); got shape {tuple(t.shape)}."
    )


def to_uint8_images(x: np.ndarray | torch.Tensor, name: str, what: str,
                    size: int | None = IMAGE_SIZE) -> torch.Tensor:
    """Brings images of any supported layout to ``uint8 (N, C, size, size)``.

    Accepts ``(N, H, W)`` (gray), ``(N, C, H, W)`` or ``(N, H, W, C)`` with up to
    :data:`MAX_CHANNELS` channels (kept as they are: RGB stays RGB) and ``H, W <= 64``, as
    integers in 0..255 or floats in ``[0, 1]``, numpy or torch (any device). Non-square images are
    zero-padded to a square (centred), then resized to ``size`` with antialiased bilinear
    interpolation; images already ``size`` x ``size`` are untouched, and ``size=None`` keeps
    every image as it is.
    """
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = _channels_first(t, name, what)
    h, w = t.shape[-2:]
    if max(h, w) > MAX_INPUT_SIZE:
        raise InvalidConfigError(
            f"{name}: {what} images are {h}x{w}; the largest supported size is "
            f"{MAX_INPUT_SIZE}x{MAX_INPUT_SIZE}. Downscale them first."
        )
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                             or not 1 <= size <= MAX_INPUT_SIZE):
        raise InvalidConfigError(f"{name}: image_size must be a whole number in 1.."
                                 f"{MAX_INPUT_SIZE}, or None to keep the images' size; got "
                                 f"{size!r}.")
    if t.dtype == torch.uint8:
        f = t
    elif t.dtype != torch.bool and not t.is_floating_point() and not t.is_complex():
        wide = t.to(torch.int64)  # torch has no min/max for uint16/32/64
        lo, hi = (int(wide.min()), int(wide.max())) if len(t) else (0, 0)
        if lo < 0 or hi > 255:
            raise InvalidConfigError(
                f"{name}: integer {what} must lie in [0, 255]; got [{lo}, {hi}]. Scale them "
                f"(e.g. 16-bit images: x // 257), or pass floats in [0, 1]."
            )
        f = t.to(torch.uint8)
    elif t.is_floating_point():
        if len(t) and (float(t.min()) < 0.0 or float(t.max()) > 1.0):
            raise InvalidConfigError(
                f"{name}: float {what} must lie in [0, 1]; got [{float(t.min()):.3g}, "
                f"{float(t.max()):.3g}]. Scale them, or pass uint8 images."
            )
        f = (t * 255).round().to(torch.uint8)
    else:
        raise InvalidConfigError(f"{name}: {what} must be uint8 or float, got {t.dtype}.")
    if size is None or (h, w) == (size, size):
        return f.contiguous()
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    out = torch.empty((len(f), f.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, len(f), _RESIZE_CHUNK):  # chunks: never the whole set as float at once
        part = F.pad(f[i : i + _RESIZE_CHUNK].float(), (left, side - w - left, top, side - h - top))
        part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True,
                             align_corners=False)
        out[i : i + _RESIZE_CHUNK] = part.round().clamp(0, 255).to(torch.uint8)
    return out


def _labels(y: np.ndarray | torch.Tensor, name: str, what: str, n: int) -> np.ndarray:
    arr = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if arr.ndim != 1 or len(arr) != n:
        raise InvalidConfigError(f"{name}: {what} must be 1-D with {n} labels (one per image), got shape {arr.shape}.")
    return arr


def from_arrays(
    name: str,
    x_train,
    y_train,
    x_test,
    y_test,
    x_val=None,
    y_val=None,
    *,
    val_fraction: float = VALIDATION_FRACTION,
    seed: int = 0,
    image_size: int | None = IMAGE_SIZE,
) -> Dataset:
    """Wraps your own images (gray or colour) and labels as a :class:`Dataset`.

    Images up to 64x64 are padded to a square and resized to ``image_size`` (28 by default; None
    keeps their size, which must then be one for every split); channels are kept, so RGB input
    gives an RGB dataset (see :func:`to_uint8_images`). Labels may be any sortable values; they are mapped to ``0..C-1`` in sorted order and the
    originals kept as class names. Without a validation split, a stratified ``val_fraction`` of
    the training set is held out (fixed by ``seed``).
    """
    if (x_val is None) != (y_val is None):
        raise InvalidConfigError(f"{name}: pass both x_val and y_val, or neither.")
    xs = {"train": to_uint8_images(x_train, name, "x_train", image_size),
          "test": to_uint8_images(x_test, name, "x_test", image_size)}
    ys = {"train": _labels(y_train, name, "y_train", len(xs["train"])),
          "test": _labels(y_test, name, "y_test", len(xs["test"]))}
    if x_val is not None:
        xs["val"] = to_uint8_images(x_val, name, "x_val", image_size)
        ys["val"] = _labels(y_val, name, "y_val", len(xs["val"]))
    classes = np.unique(np.concatenate([ys[k] for k in ys]))
    unseen = sorted(set(classes.tolist()) - set(np.unique(ys["train"]).tolist()))
    if unseen:
        warnings.warn(f"{name}: labels {unseen[:10]} never occur in y_train; those classes "
                      f"cannot be learned.", stacklevel=2)
    lookup = {v: i for i, v in enumerate(classes.tolist())}
    yt = {k: torch.tensor([lookup[v] for v in ys[k].tolist()], dtype=torch.int64) for k in ys}
    if x_val is None:
        keep, held = stratified_split(yt["train"].numpy(), val_fraction, seed)
        xs["val"], yt["val"] = xs["train"][held], yt["train"][held]
        xs["train"], yt["train"] = xs["train"][keep], yt["train"][keep]
    return Dataset(
        name=name,
        x_train=xs["train"], y_train=yt["train"],
        x_val=xs["val"], y_val=yt["val"],
        x_test=xs["test"], y_test=yt["test"],
        classes=tuple(str(c) for c in classes.tolist()),
        source="arrays",
    )
