"""The search space of a weight-sharing supernet, and one architecture (subnet) in it.

A supernet is a stem, ``len(channels)`` NAS blocks with a shared stride-2 reduction between
consecutive blocks, global average pooling and a linear head. A NAS block holds up to
``max(depths)`` sub-blocks, and each sub-block position holds one module per operation in
``ops`` (:data:`OPS`: ``conv3``, ``conv5``, ``conv7``, ``skip``, or your own). A subnet
(:data:`Arch`) picks, for every block, how many sub-blocks it runs (a value in ``depths``) and
which operation each of them is. Seed 002's space is the default: two blocks, depths 1 to 3, one
operation: 9 subnets named ``(d1, d2)``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from torch import nn

from automl_chars.errors import InvalidConfigError
from automl_chars.registry import Registry

#: One subnet: for each NAS block, the operations of the sub-blocks it runs (their count is the
#: block's depth), e.g. ``(("conv3",), ("conv3", "conv3", "conv3"))`` = seed 002's ``(1, 3)``.
Arch = tuple[tuple[str, ...], ...]

#: Sub-block operations by name: ``builder(channels) -> nn.Module`` that must keep the shape
#: ``(channels, h, w)`` of its input (checked when a supernet is built).
OPS: Registry[Callable[[int], nn.Module]] = Registry("sub-block operation")
#: Spaces larger than this are not enumerated (each subnet keeps statistics in the samplers).
MAX_ARCHS = 200_000


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Convolution (padding ``kernel // 2``), batch norm, ReLU: every layer of the supernet."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


for _k in (3, 5, 7):
    OPS.add(f"conv{_k}", lambda c, _k=_k: conv_bn_relu(c, c, _k))
OPS.add("skip", lambda c: nn.Identity())


def _positive_ints(values: Sequence, what: str) -> tuple[int, ...]:
    out = tuple(values)
    if not out or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in out):
        raise InvalidConfigError(f"{what} must be a non-empty list of whole numbers >= 1, got "
                                 f"{list(out)!r}.")
    return out


@dataclass(frozen=True)
class SupernetSpace:
    """The supernet's architecture space.

    Attributes:
        channels: channels of each NAS block; their number is the number of NAS blocks. A
            stride-2 convolution shared by every subnet goes from one block's to the next's.
        depths: the sub-block counts a block may run (seed 002: 1, 2 or 3).
        ops: the operations a sub-block may be (names in :data:`OPS`); one op means that only
            the depths vary, and subnets are named by their depths, ``(1, 3)``.
        stem_stride: stride of the stem convolution (2: the first block works at half the
            resolution, 14x14 on 28x28 images, about 8x cheaper on a CPU).
    """

    channels: tuple[int, ...] = (16, 32)
    depths: tuple[int, ...] = (1, 2, 3)
    ops: tuple[str, ...] = ("conv3",)
    stem_stride: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", _positive_ints(self.channels, "channels"))
        depths = _positive_ints(self.depths, "depths")
        object.__setattr__(self, "depths", tuple(sorted(set(depths))))
        ops = tuple(str(o) for o in self.ops)
        if not ops or len(set(ops)) != len(ops):
            raise InvalidConfigError(f"ops must be a non-empty list of distinct operation names, "
                                     f"got {list(ops)!r}.")
        for op in ops:
            OPS.get(op)  # unknown names raise with the closest ones
        object.__setattr__(self, "ops", ops)
        if self.stem_stride not in (1, 2):
            raise InvalidConfigError(f"stem_stride must be 1 or 2, got {self.stem_stride!r}.")
        if self.size > MAX_ARCHS:
            raise InvalidConfigError(
                f"The space has {self.size} subnets, more than {MAX_ARCHS} (every subnet keeps "
                f"statistics); use fewer blocks, depths or operations."
            )

    # -- size and enumeration --------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return len(self.channels)

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    @property
    def size(self) -> int:
        """Number of subnets."""
        per_block = sum(len(self.ops) ** d for d in self.depths)
        return per_block ** self.num_blocks

    def block_choices(self) -> list[tuple[str, ...]]:
        """Every way to fill one block: each depth, each operation per sub-block."""
        return [ops for d in self.depths for ops in itertools.product(self.ops, repeat=d)]

    @cached_property
    def archs(self) -> tuple[Arch, ...]:
        """Every subnet, in a fixed order (the samplers' statistics follow it)."""
        return tuple(itertools.product(self.block_choices(), repeat=self.num_blocks))

    @cached_property
    def _index(self) -> dict[Arch, int]:
        return {a: i for i, a in enumerate(self.archs)}

    def index(self, arch: Arch | str | Sequence) -> int:
        """Position of ``arch`` in :attr:`archs`."""
        return self._index[self.check(arch)]

    @property
    def largest(self) -> Arch:
        """The deepest subnet with the first operation everywhere (used when none is given)."""
        return tuple((self.ops[0],) * self.max_depth for _ in self.channels)

    def __iter__(self) -> Iterator[Arch]:
        return iter(self.archs)

    # -- names and validation -----------------------------------------------------------------
    def name(self, arch: Arch | str | Sequence) -> str:
        """``(1, 3)`` when the space has one operation, else ``(conv3+conv5, skip)``."""
        arch = self.check(arch)
        if len(self.ops) == 1:
            return "(" + ", ".join(str(len(b)) for b in arch) + ")"
        return "(" + ", ".join("+".join(b) for b in arch) + ")"

    def check(self, arch: Arch | str | Sequence) -> Arch:
        """``arch`` as an :data:`Arch` of this space: a name (``"(1, 3)"``), depths (``(1, 3)``,
        one-op spaces only) or operations per block. Anything outside the space raises
        :class:`InvalidConfigError` naming the valid choices."""
        if isinstance(arch, str):
            arch = self._parse(arch)
        blocks = list(arch)
        if len(blocks) != self.num_blocks:
            raise InvalidConfigError(
                f"Subnet {arch!r} has {len(blocks)} blocks; this space has {self.num_blocks} NAS "
                f"blocks (channels {list(self.channels)}): give one entry per block."
            )
        out = []
        for b, block in enumerate(blocks, start=1):
            if isinstance(block, int) and not isinstance(block, bool):
                if len(self.ops) != 1:
                    raise InvalidConfigError(
                        f"Subnet {arch!r}: block {b} is given as a depth ({block}), but this "
                        f"space has several operations {list(self.ops)}; give each block's "
                        f"operations, e.g. {self.name(self.largest)!r}."
                    )
                block = (self.ops[0],) * block
            block = tuple(str(op) for op in block)
            if len(block) not in self.depths:
                raise InvalidConfigError(
                    f"Subnet {arch!r}: block {b} has {len(block)} sub-blocks; valid depths are "
                    f"{list(self.depths)}."
                )
            bad = [op for op in block if op not in self.ops]
            if bad:
                raise InvalidConfigError(
                    f"Subnet {arch!r}: block {b} uses {bad}; valid operations are "
                    f"{list(self.ops)}."
                )
            out.append(block)
        return tuple(out)

    def _parse(self, text: str) -> list:
        inner = text.strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise InvalidConfigError(
                f"Subnet name {text!r}: write it as {self.name(self.largest)!r} (one entry per "
                f"NAS block)."
            )
        parts = [p.strip() for p in inner[1:-1].split(",") if p.strip()]
        return [int(p) if re.fullmatch(r"\d+", p) else tuple(p.split("+")) for p in parts]

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain values (checkpoints and configurations store them); :meth:`from_dict` reads them."""
        return {"channels": list(self.channels), "depths": list(self.depths),
                "ops": list(self.ops), "stem_stride": self.stem_stride}

    @classmethod
    def from_dict(cls, data: SupernetSpace | Mapping[str, Any] | None) -> SupernetSpace:
        """A space from :meth:`to_dict`'s form (or a space, returned as is; None: the default)."""
        if data is None:
            return cls()
        if isinstance(data, SupernetSpace):
            return data
        unknown = sorted(set(data) - {"channels", "depths", "ops", "stem_stride"})
        if unknown:
            raise InvalidConfigError(f"Unknown supernet space option(s) {unknown}; a space has "
                                     f"channels, depths, ops and stem_stride.")
        return cls(**{k: v if k == "stem_stride" else tuple(v) for k, v in data.items()})


def arch_to_list(arch: Arch) -> list[list[str]]:
    """An :data:`Arch` as nested lists (JSON, checkpoints)."""
    return [list(b) for b in arch]

