"""``run_darts``: a DARTS search over a supernet space as one Ray trial, cold or warm-started,
and where its result is saved.

A search's folder sits where :func:`~automl_chars.supernet.run_supernet` puts a sampler's, with
the ``darts`` (cold) or ``darts-warm`` (warm-started) name:

```
<storage>/<name>/darts/supernet/            run_trials folder: the DARTS trial
<storage>/<name>/darts/arch_weights.json    the final architecture logits, the derived
                                            architecture, the dataset, per-epoch history
<storage>/<name>/darts-warm/...             the same for a warm-started search, plus
<storage>/<name>/darts-warm/warm_start.json which neighbour's weights it started from
```

A **warm start** (:class:`DartsWarmStart`) ranks a portfolio's entries by similarity to the
target (:func:`~automl_chars.similarity.similarity`, :func:`~automl_chars.similarity.rank_sources`)
and starts the architecture logits from the saved DARTS result
(:func:`~automl_chars.supernet.darts.saved_arch_weights`, any ``<experiment>/<folder>/
arch_weights.json`` under a results root) of the most similar entry's dataset that has one over
the same choices (blocks, depths, operations); the target's own dataset never counts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from automl_chars.data import Dataset, load
from automl_chars.errors import InvalidConfigError
from automl_chars.layout import WARM_START_FILE, experiment_dir, read_json, write_json
from automl_chars.runner.trials import TrialJob, TrialsResult
from automl_chars.similarity.base import DEFAULT_MEASURE
from automl_chars.supernet.darts import ArchWeights, saved_arch_weights
from automl_chars.supernet.space import SupernetSpace
from automl_chars.trainables.base import load_trial_state
from automl_chars.trainables.darts import checkpoint_arch_weights, darts_settings

#: The sampler name that runs DARTS in :func:`~automl_chars.supernet.run_supernet`, and the
#: folder of a cold search.
DARTS = "darts"
#: The folder of a warm-started search.
DARTS_WARM = "darts-warm"
DARTS_LABEL = "darts"


@dataclass(frozen=True)
class DartsWarmStart:
    """Where a warm-started DARTS finds its starting architecture weights.

    Attributes:
        portfolio: a :class:`~automl_chars.portfolio.Portfolio` or its folder: its entries are
            the candidate neighbours, ranked by similarity to the target.
        results: the results root holding earlier DARTS searches (default: the root the run
            itself is stored under).
        measure: the similarity measure that ranks the entries (a name in
            :data:`~automl_chars.similarity.MEASURES`).
        sample_size: target images the measure compares.
    """

    portfolio: Any
    results: str | os.PathLike | None = None
    measure: str = DEFAULT_MEASURE
    sample_size: int = 200

    def __post_init__(self) -> None:
        from automl_chars.similarity import MEASURES

        MEASURES.get(self.measure)  # an unknown name raises with the closest ones
        if self.portfolio is None:
            raise InvalidConfigError("A DARTS warm start needs a portfolio (its entries are the "
                                     "neighbours ranked by similarity).")
        if int(self.sample_size) < 2:
            raise InvalidConfigError(f"sample_size must be >= 2, got {self.sample_size!r}.")


@dataclass(frozen=True)
class Neighbour:
    """The portfolio entry a warm start takes its weights from, and why."""

    entry: str
    dataset: str
    rank: int
    score: float
    measure: str
    weights: ArchWeights

    def to_dict(self) -> dict:
        return {"entry": self.entry, "dataset": self.dataset, "rank": self.rank,
                "score": self.score, "measure": self.measure, "path": str(self.weights.path),
                "derived": self.weights.derived_name, "epochs": self.weights.epochs}


def nearest_arch_weights(target: Dataset, space: SupernetSpace, warm: DartsWarmStart,
                         root: str | os.PathLike, seed: int = 0) -> Neighbour:
    """The saved DARTS result of the most similar portfolio dataset, over ``space``'s choices.

    Entries are ranked by ``warm.measure``; the first whose dataset has a result under ``root``
    wins (the newest of them, one of the same contents first). Raises
    :class:`InvalidConfigError` when none has one, naming the entries and how to make one;
    the similarity is computed only when ``root`` holds some result over these choices."""
    from automl_chars.portfolio import Portfolio
    from automl_chars.similarity import rank_sources, similarity

    root = Path(root).expanduser()
    portfolio = warm.portfolio if isinstance(warm.portfolio, Portfolio) else \
        Portfolio.load(warm.portfolio)
    fingerprint = target.fingerprint()
    entries = [e for e in portfolio if e.dataset != target.name and e.fingerprint != fingerprint]
    if not entries:
        raise InvalidConfigError(
            f"The portfolio {portfolio.path} has no entry of a dataset other than {target.name}: "
            f"a DARTS warm start needs a neighbour. Add entries (automl-chars portfolio build).")
    saved = [w for w in saved_arch_weights(root) if w.fits(space)]
    by_dataset = {e.dataset for e in entries}
    if not any(w.dataset in by_dataset for w in saved):
        raise InvalidConfigError(_no_neighbour(target, space, root, [e.dataset for e in entries]))
    portfolio.check_fits(target.image_shape)
    frame = similarity(target, portfolio, warm.measure, sample_size=warm.sample_size, seed=seed,
                       bootstrap=0, on_error="raise")
    names = {e.name for e in entries}
    order = [n for n in rank_sources(frame, warm.measure) if n in names]
    for rank, name in enumerate(order, 1):
        entry = portfolio.entry(name)
        matches = [w for w in saved if w.dataset == entry.dataset]
        if matches:
            exact = [w for w in matches if w.fingerprint == entry.fingerprint]
            return Neighbour(name, entry.dataset, rank, float(frame.loc[name, warm.measure]),
                             warm.measure, (exact or matches)[0])
    raise InvalidConfigError(_no_neighbour(target, space, root, order))  # pragma: no cover


def _no_neighbour(target: Dataset, space: SupernetSpace, root: Path, datasets: list[str]) -> str:
    first = datasets[0]
    return (
        f"No portfolio neighbour of {target.name} has a DARTS result over this space (depths "
        f"{list(space.depths)}, ops {list(space.ops)}, {space.num_blocks} blocks) under {root}; "
        f"neighbours: {', '.join(datasets)}. Run DARTS on one first, e.g. `automl-chars "
        f"supernet --sampler darts --dataset {first} --storage {root}` with the same "
        f"--channels/--depths/--ops, or point --darts-results (DartsWarmStart.results) at the "
        f"results root that holds one.")


@dataclass
class DartsRun:
    """What :func:`run_darts` found.

    Attributes:
        weights: the final architecture weights (``weights.derived``: the architecture found;
            ``weights.history``: per epoch the derived architecture and its validation top-1).
        path: the search's folder (``darts`` or ``darts-warm``).
        trials: the run of the DARTS trial (its ``history``: every epoch's result).
        neighbour: for a warm start, where its weights came from (:meth:`Neighbour.to_dict`).
    """

    weights: ArchWeights
    path: Path
    trials: TrialsResult
    neighbour: dict | None = None

    @property
    def derived(self) -> str:
        return self.weights.derived_name

    @property
    def history(self) -> pd.DataFrame:
        """``epoch``, ``derived``, ``val_acc`` of each epoch."""
        return pd.DataFrame(list(self.weights.history), columns=["epoch", "derived", "val_acc"])

    @property
    def epochs_to_final(self) -> int:
        """The first epoch from which the derived architecture stayed the final one."""
        return epochs_to_final([h["derived"] for h in self.weights.history])


def epochs_to_final(derived: list[str]) -> int:
    """The first epoch (1-based) from which ``derived`` (one name per epoch) stays at its last
    value; 0 for an empty list."""
    if not derived:
        return 0
    k = len(derived)
    while k > 1 and derived[k - 2] == derived[-1]:
        k -= 1
    return k


def darts_config(config: Mapping | None, space: SupernetSpace) -> dict:
    """``config`` for DARTS over ``space``: the supernet samplers' settings (``epsilon``,
    ``warmup``, ...; one config may serve every sampler) are left out; anything unknown to
    both raises in :func:`darts_settings`."""
    from automl_chars.spaces.supernet import (
        DARTS_FIXED,
        SUPERNET_FIXED,
        darts_space,
        supernet_space,
    )

    theirs = (set(supernet_space()) | set(SUPERNET_FIXED)) - set(darts_space()) - set(DARTS_FIXED)
    out = {k: v for k, v in dict(config or {}).items() if k not in theirs}
    out["supernet"] = space.to_dict()
    darts_settings(out)  # an unknown name or a value out of range raises here
    return out


def run_darts(
    dataset: str | Dataset,
    epochs: int = 3,
    storage_path: str | os.PathLike | None = None,
    seed: int = 0,
    gpus_per_trial: float = 0.0,
    *,
    space: SupernetSpace | Mapping | None = None,
    config: Mapping | None = None,
    warm_start: DartsWarmStart | None = None,
    name: str | None = None,
    resume: bool = False,
    restart_errored: bool = False,
    cpus_per_trial: float = 1.0,
    max_failures: int = 2,
    data_root: str | os.PathLike | None = None,
    address: str | None = None,
    verbose: int = 1,
) -> DartsRun:
    """A DARTS search on ``dataset`` for ``epochs`` (a :class:`DartsTrainable` trial), its
    result saved as ``<storage>/<name>/darts[-warm]/arch_weights.json``.

    Args:
        space: the supernet space (default seed 002's 9 subnets).
        config: training hyperparameters of the weights and ``arch_learning_rate``,
            ``arch_weight_decay`` (:func:`~automl_chars.spaces.supernet.darts_space`).
        warm_start: start the architecture logits from the nearest portfolio dataset's saved
            search (:func:`nearest_arch_weights`); None: uniform (cold).
        name: experiment folder (default ``supernet-<dataset>``, beside the samplers').
        resume: continue an interrupted search (a warm start keeps the neighbour it chose).
        restart_errored: with ``resume``, an errored search trains again from scratch.

    Other arguments as :func:`~automl_chars.supernet.run_supernet`'s.
    """
    from automl_chars.workflows.supernet import _finished_checkpoint, _phase

    arch_space = SupernetSpace.from_dict(space)
    cfg = darts_config(config, arch_space)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise InvalidConfigError(f"run_darts: epochs must be a whole number >= 1, got {epochs!r}.")
    if warm_start is not None and not isinstance(warm_start, DartsWarmStart):
        raise InvalidConfigError(f"warm_start must be a DartsWarmStart, got {warm_start!r}.")
    ds = load(dataset, root=data_root)
    root = experiment_dir(storage_path, name or f"supernet-{ds.name}")
    folder = root / (DARTS_WARM if warm_start is not None else DARTS)
    neighbour = None
    if warm_start is not None:
        neighbour = _neighbour(ds, arch_space, warm_start, root, folder, resume, seed)
        cfg["init_arch_weights"] = neighbour["path"]
    common = {"seed": seed, "gpus_per_trial": gpus_per_trial, "cpus_per_trial": cpus_per_trial,
              "max_failures": max_failures, "address": address, "verbose": verbose,
              "restart_errored": restart_errored}
    how = f"warm-started from {neighbour['dataset']}" if neighbour else "cold"
    trials = _phase([TrialJob(DARTS_LABEL, ds, cfg, description=f"DARTS, {how}")], DARTS,
                    epochs, folder / "supernet", resume, **common)
    state = load_trial_state(_finished_checkpoint(trials, DARTS_LABEL))
    found = checkpoint_arch_weights(state)
    weights = ArchWeights(found.space, found.depth, found.ops, found.dataset, found.fingerprint,
                          found.epochs, found.history,
                          {**found.meta, "run": str(trials.path), "neighbour": neighbour})
    weights = ArchWeights.load(weights.save(folder))
    return DartsRun(weights, folder, trials, neighbour)


def _neighbour(ds: Dataset, space: SupernetSpace, warm: DartsWarmStart, root: Path,
               folder: Path, resume: bool, seed: int) -> dict:
    """The neighbour a warm start starts from: the one a resumed search chose before (its
    ``warm_start.json``), else the nearest one now, recorded."""
    record = folder / WARM_START_FILE
    if resume and record.exists():
        return read_json(record, "Remove it and run the search again without --resume.")
    results = Path(warm.results).expanduser() if warm.results is not None else root.parent
    neighbour = nearest_arch_weights(ds, space, warm, results, seed).to_dict()
    folder.mkdir(parents=True, exist_ok=True)
    write_json(record, neighbour)
    return neighbour


__all__ = ["DARTS", "DARTS_WARM", "DartsRun", "DartsWarmStart", "Neighbour", "darts_config",
           "epochs_to_final", "nearest_arch_weights", "run_darts"]
