"""The measure contract, the ``MEASURES`` registry and the shared computation context.

A measure compares one target :class:`~automl_chars.similarity.source.Sample` with one
:class:`~automl_chars.similarity.source.SourceView` and returns one number. It splits its work
in three so that bootstrap rounds redo only what depends on the target sample:

- :meth:`Measure.source_state`: once per source (e.g. feature statistics of the source sample);
- :meth:`Measure.target_state`: once per target sample, i.e. per bootstrap round, shared by all
  sources (e.g. the target's meta-features);
- :meth:`Measure.score`: one number for the pair.

Network outputs are computed once per (model, base sample) by :meth:`Context.outputs`; a
bootstrap resample only indexes them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from automl_chars.registry import Registry
from automl_chars.similarity.source import Sample, SourceView

#: Images per forward pass when measures run a network over a sample.
BATCH_SIZE = 256


class Measure:
    """Base class of the similarity measures; subclasses are registered with
    :func:`register_measure` and instantiated without arguments by the framework.

    Class attributes every measure sets:
        name: registry name.
        description: one line.
        higher_is_more_similar: orientation of the score (``False`` for distances).
        label_aware: whether the score depends on the labels of the target and source samples.
        uses: which networks it runs: ``"reference"`` (one reference network for every source),
            ``"source"`` (each source's own model), or ``"none"``.
        bounds: the range of the score; bootstrap intervals are clipped to it.
        slow: whether it takes many seconds per source on a CPU (``task2vec``: a gradient per
            image and likely label). Slow measures are left out of the default set
            (:data:`FAST`) and run only when asked for by name or with ``"all"``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    higher_is_more_similar: ClassVar[bool] = False
    label_aware: ClassVar[bool] = False
    uses: ClassVar[str] = "reference"
    bounds: ClassVar[tuple[float, float]] = (-np.inf, np.inf)
    slow: ClassVar[bool] = False

    def source_state(self, source: SourceView, ctx: Context) -> Any:
        """Work that depends on the source only; computed once per source."""
        return None

    def target_state(self, target: Sample, ctx: Context) -> Any:
        """Work that depends on the target sample only; computed once per (re)sample."""
        return None

    def score(self, target: Sample, tstate: Any, source: SourceView, sstate: Any,
              ctx: Context) -> float:
        raise NotImplementedError

    def extras(self, target: Sample, source: SourceView, ctx: Context) -> dict[str, float]:
        """Extra columns for the result table, on the full target sample (no interval)."""
        return {}

    def __repr__(self) -> str:
        return f"<measure {self.name}: {self.description}>"


#: Registered measure classes by name.
MEASURES: Registry[type[Measure]] = Registry("similarity measure")

#: The measure that ranks a portfolio's sources where none is named: the warm start's
#: (``WarmStart.measure``, ``automl-chars bohb --measure``), and so the transfer sweep's seeds.
#: The best measured one by ``benchmarks/transferability.py``'s weighted tau (benchmarks/
#: README.md, "transferability.py"); change it only on that benchmark's figures. ``logme``: the
#: best of both runs so far (0.49 against ``frechet``'s 0.27 on one CNN per domain; 0.81 against
#: 0.17 on the small zoo of issue 16), where ``frechet`` was the default before.
DEFAULT_MEASURE = "logme"

#: The names of measure sets (not measures): every measure but the slow ones (the default), and
#: every measure.
FAST, ALL = "fast", "all"


def fast_measures() -> list[str]:
    """Names of the registered measures that are not :attr:`Measure.slow`: the default set."""
    return [name for name in MEASURES.names() if not MEASURES.get(name).slow]


def register_measure(cls: type[Measure]) -> type[Measure]:
    """Class decorator: registers a :class:`Measure` subclass under its ``name``."""
    missing = [a for a in ("name", "description") if not getattr(cls, a)]
    if missing or cls.uses not in ("reference", "source", "none"):
        raise TypeError(f"measure {cls.__name__} must set name, description and uses "
                        f"(reference/source/none); missing {missing or ['a valid uses']}.")
    if cls.name in (FAST, ALL):
        raise TypeError(f"measure {cls.__name__}: {cls.name!r} names a set of measures; "
                        f"choose another name.")
    return MEASURES.add(cls.name, cls)


def get_measure(name: str) -> Measure:
    """An instance of the measure ``name`` (unknown names raise with the closest names)."""
    return MEASURES.get(name)()


@dataclass(frozen=True)
class Outputs:
    """A network's penultimate features and class scores (logits) on a sample, as float64."""

    features: np.ndarray
    logits: np.ndarray

    def probabilities(self) -> np.ndarray:
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)


class Context:
    """What one call of :func:`~automl_chars.similarity.similarity` shares between measures:
    the reference source, the random seed, and caches of network outputs and source states."""

    def __init__(self, reference: SourceView, seed: int = 0):
        self.reference = reference
        self.seed = int(seed)
        #: The full target sample and the sources of the current comparison (set by the caller).
        self.target: Sample | None = None
        self.sources: list[SourceView] = []
        self._outputs: dict[tuple, Outputs] = {}
        self._bases: dict[str, Sample] = {}
        self._cache: dict[Any, Any] = {}

    def register(self, sample: Sample) -> None:
        """Makes ``sample`` (a base sample, rows ``0..n-1``) the one its key refers to."""
        if sample.key in self._bases and self._bases[sample.key] is not sample:
            if not torch.equal(self._bases[sample.key].x, sample.x):
                raise ValueError(f"two different samples share the key {sample.key!r}")
            return
        self._bases[sample.key] = sample

    def base(self, sample: Sample) -> Sample:
        """The base sample that ``sample`` (possibly a resample) was drawn from."""
        if sample.key not in self._bases:
            if not np.array_equal(sample.rows, np.arange(len(sample.rows))):
                raise ValueError(f"sample {sample.key!r} is a resample of a base sample that "
                                 f"was never registered with the context")
            self.register(sample)
        return self._bases[sample.key]

    def outputs(self, source: SourceView, sample: Sample) -> Outputs:
        """``source.model``'s features and logits on ``sample``, the images normalised with the
        model's own pixel mean/std; computed once on the base sample and indexed by its rows."""
        base = self.base(sample)
        key = (id(source.model), source.mean, source.std, sample.key)
        if key not in self._outputs:
            self._outputs[key] = network_outputs(source.model, base.x, source.mean, source.std)
        out = self._outputs[key]
        return Outputs(out.features[sample.rows], out.logits[sample.rows])

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key`` for the life of this context."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def rng(self, *salt: Any) -> np.random.Generator:
        """A generator fixed by the context's seed and ``salt`` (e.g. a measure and a source)."""
        return np.random.default_rng([self.seed, zlib.crc32(repr(salt).encode())])


@torch.no_grad()
def network_outputs(model: nn.Module, x: torch.Tensor, mean: float, std: float,
                    batch_size: int = BATCH_SIZE) -> Outputs:
    """Features and logits of ``model`` (evaluation mode) on ``uint8`` images ``x`` fed as
    ``(x / 255 - mean) / std``, the training loop's normalisation."""
    was_training = model.training
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    feats, logits = [], []
    try:
        for i in range(0, len(x), batch_size):
            xb = normalise(x[i : i + batch_size], mean, std).to(device)
            f = model.features(xb)
            feats.append(f.double().cpu())
            logits.append(model.head(f).double().cpu())
    finally:
        model.train(was_training)
    return Outputs(torch.cat(feats).flatten(1).numpy(), torch.cat(logits).numpy())


def normalise(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """``uint8`` images as the models see them: ``(x / 255 - mean) / std`` in float32."""
    return (x.float() / 255.0 - mean) / std
