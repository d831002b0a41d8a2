"""Seed 003's valley study: do restarts pushed away from earlier minima by the distance
regularizer find distinct minima, and is their ensemble better than independent restarts at the
same compute?

For each seed, ``minima`` networks of one architecture are trained in four arms, every minimum
with the same ``epochs`` of SGD under a cosine schedule (so the first ``j`` minima of any arm cost
``j * epochs`` epochs):

- ``independent``: ``minima`` runs from different random initialisations and data orders;
- ``restarts``: a chain that starts at the first independent minimum and restarts training from
  the minimum before (warm restarts, SGDR: the schedule starts again, nothing else changes);
- ``distance``: the same chain with the distance regularizer
  (:class:`~automl_chars.training.regularizers.DistanceRegularizer`) over every minimum of the
  chain so far;
- ``merged``: the same with the regularizer over their mean.

The chains share their first minimum with ``independent`` and, restart by restart, their data
order, so they differ only in the regularizer. Then per arm: each minimum's train loss and
validation and test accuracy; the distance in weight space between every pair of minima and the
training loss along the straight path between them (BatchNorm statistics recomputed at each
point: :func:`~automl_chars.training.landscape.loss_path`) and its barrier, and how often their
test predictions disagree; the test accuracy of
the averaged-softmax ensemble of the first ``j`` minima, ``j`` = 1 .. ``minima``.

Plain PyTorch in one process (no Ray: every run needs the one before). Resumable: each minimum
is saved in ``<out>/seed-<s>/`` when trained and each seed's tables when it is done, so a rerun
with the same settings trains and evaluates only what is missing.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from automl_chars.data import Dataset, load
from automl_chars.errors import (
    DamagedFileWarning,
    ExperimentStateError,
    InvalidConfigError,
    first_line,
)
from automl_chars.layout import read_csv, read_json, write_csv, write_json
from automl_chars.models import CNNSpec, ConvLayerSpec, FCLayerSpec, build_model
from automl_chars.training.ensemble import disagreement, ensemble_accuracies, predict_proba
from automl_chars.training.landscape import barrier, loss_path, pairwise_distances
from automl_chars.training.loop import DeviceData, EpochStats, evaluate, train_epoch
from automl_chars.training.regularizers import (
    DistanceRegularizer,
    DistanceSettings,
    flat_parameters,
)
from automl_chars.training.settings import OptimizerSettings

#: The arms of the study (see the module); the last two use the distance regularizer.
ARMS = ("independent", "restarts", "distance", "merged")
#: A small CNN with BatchNorm (so the paths exercise the recomputed statistics).
DEFAULT_ARCH = CNNSpec(
    conv=(ConvLayerSpec(16, 3, 1, 1, True, 0.0, 2), ConvLayerSpec(32, 3, 1, 1, True, 0.0, 2)),
    fc=(FCLayerSpec(64, True, 0.0),))
SETTINGS_FILE = "valleys.json"
#: The tables of a study, each written per seed and for all seeds together.
TABLES = ("minima", "pairs", "path", "ensembles")
#: A table's file (``name`` one of :data:`TABLES`), in the study's and each seed's folder.
TABLE_FILE = "{name}.csv"
SUMMARY_FILE = "summary.csv"
#: A trained minimum, in its seed's folder (``arm`` one of :data:`ARMS`, ``k`` from 0): the
#: study's cache, read instead of training it again.
MINIMUM_FILE = "{arm}-{k}.pt"
#: Batches of every evaluation: on a CPU the small CNN is twice as fast as in batches of 2048.
MEASURE_BATCH = 256
REMEDY = "Delete it (the minima saved beside it are kept) and rerun the study with --out."


@dataclass(frozen=True)
class ValleySettings:
    """What a study trains and measures; a folder holds one study (a rerun with other settings
    is refused), to which seeds may be added.

    ``epochs`` is the training of every minimum (an independent run or one restart), at
    ``learning_rate`` under a cosine schedule; ``strength`` and ``width`` are the distance
    regularizer's; ``points`` the points of each path (ends included), evaluated on
    ``path_samples`` training images (0: all).
    """

    dataset: str = "glyphs-latin-upper"
    samples_per_class: int | None = 100
    minima: int = 4
    epochs: int = 8
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-3
    batch_size: int = 128
    strength: float = 10.0
    width: float = 5.0
    points: int = 11
    path_samples: int = 1000
    arch: CNNSpec = field(default=DEFAULT_ARCH)

    def __post_init__(self) -> None:
        problems = []
        if self.minima < 2:
            problems.append(f"minima must be >= 2 (a study compares minima), got {self.minima}")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.points < 2:
            problems.append(f"points must be >= 2 (a path's two ends), got {self.points}")
        if self.path_samples < 0:
            problems.append(f"path_samples must be >= 0 (0: every training image), got "
                            f"{self.path_samples}")
        if self.samples_per_class is not None and self.samples_per_class < 1:
            problems.append(f"samples_per_class must be >= 1, got {self.samples_per_class}")
        if not self.strength > 0:
            problems.append(f"strength must be > 0 (the distance arms need the regularizer), "
                            f"got {self.strength}")
        if problems:
            raise InvalidConfigError("; ".join(problems) + ".")
        self.optimizer  # noqa: B018 - validates learning rate, momentum, weight decay, batch
        self.distance(merge=False)

    @property
    def optimizer(self) -> OptimizerSettings:
        """The optimizer and schedule of every minimum's training."""
        return OptimizerSettings("sgd", self.learning_rate, self.momentum, self.weight_decay,
                                 self.batch_size, "cosine")

    def distance(self, merge: bool) -> DistanceSettings:
        return DistanceSettings(self.strength, self.width, merge)

    def to_dict(self) -> dict:
        return {**asdict(self), "arch": self.arch.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> ValleySettings:
        return cls(**{**data, "arch": CNNSpec.from_dict(data["arch"])})


@dataclass
class ValleyResult:
    """A study's tables over its seeds (see :data:`TABLES`) and its :func:`summarize` table."""

    path: Path
    settings: ValleySettings
    seeds: list[int]
    minima: pd.DataFrame
    pairs: pd.DataFrame
    path_losses: pd.DataFrame
    ensembles: pd.DataFrame
    summary: pd.DataFrame


@dataclass(frozen=True)
class _Data:
    train: DeviceData
    val: DeviceData
    test: DeviceData
    path: DeviceData  # the training images the paths are evaluated on
    num_classes: int
    image_shape: tuple[int, int, int]


def run_valley_study(settings: ValleySettings, seeds: Sequence[int], out: str | os.PathLike,
                     dataset: Dataset | None = None, data_root: str | os.PathLike | None = None,
                     log: Callable[[str], None] = print, threads: int | None = 1) -> ValleyResult:
    """Runs (or resumes, or reads back) the study of ``settings`` for every seed in ``seeds``.

    Args:
        settings: what to train and measure.
        seeds: one study per seed; the tables hold each and :func:`summarize` their mean.
        out: the study's folder (created; a folder of another study's settings is refused).
        dataset: the data, loaded already (default: ``settings.dataset`` from ``data_root``).
        log: where progress lines go.
        threads: torch's CPU threads while the study runs (restored after; None: as they
            are). Small models train fastest on one: on a busy machine two threads were 20x
            slower.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InvalidConfigError(f"seeds must be distinct and at least one, got {seeds}.")
    if threads is not None and threads < 1:
        raise InvalidConfigError(f"threads must be >= 1 (or None), got {threads}.")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(settings, seeds, Path(out), dataset, data_root, log)
    finally:
        torch.set_num_threads(before)


def _run(settings, seeds, out, dataset, data_root, log) -> ValleyResult:
    _claim(out, settings)
    if dataset is None:
        options = {} if settings.samples_per_class is None else {
            "samples_per_class": settings.samples_per_class}
        dataset = load(settings.dataset, root=data_root, **options)
    data = _device_data(dataset, settings)
    log(f"Valley study of {dataset.name} in {out}: {settings.minima} minima x {settings.epochs} "
        f"epochs per arm, seeds {seeds} ({torch.get_num_threads()} torch thread(s))")
    tables = {name: [] for name in TABLES}
    for seed in seeds:
        for name, frame in study_seed(settings, data, seed, out / f"seed-{seed}", log).items():
            tables[name].append(frame)
    frames = {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items()}
    for name, frame in frames.items():
        write_csv(out / TABLE_FILE.format(name=name), frame)
    summary = summarize(frames["minima"], frames["pairs"], frames["ensembles"])
    write_csv(out / SUMMARY_FILE, summary)
    return ValleyResult(out, settings, seeds, frames["minima"], frames["pairs"], frames["path"],
                        frames["ensembles"], summary)


def load_valley_study(out: str | os.PathLike) -> ValleyResult:
    """A finished study's tables, read back from its folder."""
    out = Path(out)
    if not (out / SETTINGS_FILE).exists() or not (out / SUMMARY_FILE).exists():
        raise ExperimentStateError(f"{out} holds no finished valley study (no {SETTINGS_FILE} "
                                   f"and {SUMMARY_FILE}); run it with --out {out}.")
    settings = ValleySettings.from_dict(read_json(out / SETTINGS_FILE, REMEDY))
    frames = {name: read_csv(out / TABLE_FILE.format(name=name), REMEDY)
              for name in (*TABLES, "summary")}
    seeds = sorted(int(s) for s in frames["minima"]["seed"].unique())
    return ValleyResult(out, settings, seeds, frames["minima"], frames["pairs"], frames["path"],
                        frames["ensembles"], frames["summary"])


def _claim(out: Path, settings: ValleySettings) -> None:
    """Writes the settings into a new folder; refuses a folder of other settings."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / SETTINGS_FILE
    if path.exists():
        saved = _plain(read_json(path, REMEDY))
        new = _plain(settings.to_dict())
        differ = sorted(k for k in set(saved) | set(new) if saved.get(k) != new.get(k))
        if differ:
            raise ExperimentStateError(
                f"{out} holds a valley study of other settings ({', '.join(differ)}: "
                f"{ {k: saved.get(k) for k in differ} }); pass another --out, or the same "
                f"settings to resume it.")
        return
    write_json(path, settings.to_dict())


def _plain(value):
    """JSON's view of a value (tuples are lists), to compare saved and current settings."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _device_data(dataset: Dataset, settings: ValleySettings) -> _Data:
    device = torch.device("cpu")
    train = DeviceData.create(dataset.x_train, dataset.y_train, device)
    val = DeviceData.create(dataset.x_val, dataset.y_val, device, train.mean, train.std)
    test = DeviceData.create(dataset.x_test, dataset.y_test, device, train.mean, train.std)
    n = settings.path_samples
    path = train if n == 0 or n >= len(train) else train.subset(
        torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n])
    return _Data(train, val, test, path, dataset.num_classes, dataset.image_shape)


def train_minimum(model: nn.Module, data: DeviceData, settings: ValleySettings, seed: int,
                  penalty: DistanceRegularizer | None = None) -> EpochStats:
    """Trains ``model`` for ``settings.epochs`` from where it is, with a fresh optimizer and
    cosine schedule and data order drawn from ``seed``; the last epoch's statistics."""
    optimizer = settings.optimizer.make(model)
    schedule = settings.optimizer.make_schedule(optimizer, settings.epochs)
    generator = torch.Generator(device=data.x.device).manual_seed(seed)
    stats = None
    for _ in range(settings.epochs):
        stats = train_epoch(model, optimizer, data, settings.batch_size, generator,
                            penalty=penalty)
        schedule.step()
    return stats


def study_seed(settings: ValleySettings, data: _Data, seed: int, folder: Path,
               log: Callable[[str], None] = print) -> dict[str, pd.DataFrame]:
    """One seed's study (see the module): its tables, read back when it was done before."""
    folder.mkdir(parents=True, exist_ok=True)
    if all((folder / TABLE_FILE.format(name=name)).exists() for name in TABLES):
        log(f"seed {seed}: done before, read back from {folder}")
        return {name: read_csv(folder / TABLE_FILE.format(name=name), REMEDY) for name in TABLES}
    model = build_model("cnn", settings.arch, data.num_classes, data.image_shape)
    states, seconds = _train_arms(model, settings, data, seed, folder, log)
    tables = _measure(model, settings, data, seed, states, seconds, log)
    for name, frame in tables.items():
        write_csv(folder / TABLE_FILE.format(name=name), frame)
    return tables


def _seed_of(seed: int, arm: str, index: int) -> int:
    """The seed of minimum ``index`` of ``arm``: every chain draws the same data order at the
    same restart, so the chains differ only in the regularizer."""
    return seed * 1000 + (index if arm == "independent" else 500 + index)


def _train_arms(model, settings, data, seed, folder, log):
    states: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    seconds: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for j in range(settings.minima):
        def fresh(j=j):
            torch.manual_seed(_seed_of(seed, "independent", j))
            return build_model("cnn", settings.arch, data.num_classes, data.image_shape)
        state, s = _minimum(folder / MINIMUM_FILE.format(arm="independent", k=j), fresh,
                            settings, data,
                            _seed_of(seed, "independent", j), None, log, f"seed {seed} independent {j}")
        states["independent"].append(state)
        seconds["independent"].append(s)
    for arm in ARMS[1:]:
        states[arm].append(states["independent"][0])  # the chains start at the first minimum
        seconds[arm].append(seconds["independent"][0])
        for j in range(1, settings.minima):
            previous = states[arm][-1]
            penalty = None
            if arm != "restarts":
                penalty = DistanceRegularizer.for_model(model, states[arm],
                                                        settings.distance(arm == "merged"))

            def start(previous=previous):
                net = copy.deepcopy(model)
                net.load_state_dict(previous)
                return net
            state, s = _minimum(folder / MINIMUM_FILE.format(arm=arm, k=j), start, settings, data,
                                _seed_of(seed, arm, j), penalty, log, f"seed {seed} {arm} {j}")
            states[arm].append(state)
            seconds[arm].append(s)
    return states, seconds


def _minimum(path: Path, start: Callable[[], nn.Module], settings, data, seed, penalty, log,
             label: str) -> tuple[dict, float]:
    """The state of a trained minimum and its training seconds: read from ``path``, or trained
    from ``start()`` and saved there (atomically). A damaged file (truncated, garbled, not a
    minimum) is trained again, with a warning naming it: it is the study's cache."""
    if path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            return saved["state_dict"], float(saved["seconds"])
        except Exception as err:  # torch raises several kinds for a damaged file
            warnings.warn(f"{path} is damaged ({type(err).__name__}: {first_line(err)}); that "
                          f"minimum is trained again.", DamagedFileWarning, stacklevel=2)
    net = start()
    began = time.perf_counter()
    stats = train_minimum(net, data.train, settings, seed, penalty)
    seconds = time.perf_counter() - began
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save({"state_dict": state, "seconds": seconds}, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    extra = ""
    if penalty is not None:
        extra = f", distance to the nearest earlier minimum {penalty.report(net)['distance_min']:.2f}"
    log(f"{label}: train loss {stats.loss:.4f} ({seconds:.1f}s{extra})")
    return state, seconds


def _measure(model, settings, data, seed, states, seconds, log) -> dict[str, pd.DataFrame]:
    began = time.perf_counter()
    minima, pairs, path, ensembles = [], [], [], []
    for arm in ARMS:
        vectors, probabilities = [], []
        for j, state in enumerate(states[arm]):
            model.load_state_dict(state)
            vectors.append(flat_parameters(model).detach().clone())
            train_loss, train_acc = evaluate(model, data.train, MEASURE_BATCH)
            val_acc = evaluate(model, data.val, MEASURE_BATCH)[1]
            test_acc = evaluate(model, data.test, MEASURE_BATCH)[1]
            probabilities.append(predict_proba(model, data.test, MEASURE_BATCH))
            minima.append({"seed": seed, "arm": arm, "index": j,
                           "epochs": (j + 1) * settings.epochs, "train_loss": train_loss,
                           "train_acc": train_acc, "val_acc": val_acc, "test_acc": test_acc,
                           "norm": float(vectors[-1].double().norm()),
                           "train_s": seconds[arm][j]})
        distances = pairwise_distances(vectors)
        for j in range(1, len(vectors)):
            minima[-len(vectors) + j]["dist_prev"] = float(distances[j, j - 1])
        for i in range(len(vectors)):
            for j in range(i + 1, len(vectors)):
                points = loss_path(model, states[arm][i], states[arm][j], data.path,
                                   settings.points, batch_size=MEASURE_BATCH)
                pairs.append({"seed": seed, "arm": arm, "i": i, "j": j,
                              "distance": float(distances[i, j]), "barrier": barrier(points),
                              "max_loss": max(p.loss for p in points),
                              "disagreement": disagreement(probabilities[i],
                                                           probabilities[j])})
                path += [{"seed": seed, "arm": arm, "i": i, "j": j, "alpha": p.alpha,
                          "train_loss": p.loss, "train_acc": p.accuracy} for p in points]
        accuracies = ensemble_accuracies(torch.stack(probabilities), data.test.y)
        ensembles += [{"seed": seed, "arm": arm, "members": m + 1,
                       "epochs": (m + 1) * settings.epochs, "test_acc": acc}
                      for m, acc in enumerate(accuracies)]
    log(f"seed {seed}: distances, {len(pairs)} paths and ensembles measured "
        f"({time.perf_counter() - began:.1f}s)")
    return {"minima": pd.DataFrame(minima), "pairs": pd.DataFrame(pairs),
            "path": pd.DataFrame(path), "ensembles": pd.DataFrame(ensembles)}


#: The columns of :func:`summarize`'s table, one row per seed and arm, then each arm's mean.
SUMMARY_COLUMNS = ("seed", "arm", "distance", "distance_to_first", "norm_ratio", "barrier",
                   "barrier_max", "disagreement", "minimum_acc", "ensemble_acc",
                   "ensemble_gain", "vs_independent")


def summarize(minima: pd.DataFrame, pairs: pd.DataFrame,
              ensembles: pd.DataFrame) -> pd.DataFrame:
    """One row per seed and arm, then per arm the mean over seeds (``seed`` "mean"):

    ``distance``, ``barrier`` and ``disagreement`` (of test predictions): means over every pair
    of the arm's minima (``barrier_max`` the largest barrier); ``distance_to_first``: mean
    distance of the later minima to the first; ``norm_ratio``: the last minimum's weight norm
    over the first's (with BatchNorm, growing weights move far without changing the function);
    ``minimum_acc``: mean test accuracy of single minima; ``ensemble_acc``: test accuracy of
    the ensemble of all of them, ``ensemble_gain`` its gain over the first minimum alone and
    ``vs_independent`` its difference to the independent ensemble of as many members (the same
    epochs) of the same seed.
    """
    rows = []
    last = ensembles[ensembles["members"] == ensembles["members"].max()]
    for (seed, arm), group in pairs.groupby(["seed", "arm"], sort=False):
        of_arm = minima[(minima["seed"] == seed) & (minima["arm"] == arm)]
        ensemble = last[(last["seed"] == seed) & (last["arm"] == arm)]["test_acc"].iloc[0]
        independent = last[(last["seed"] == seed) & (last["arm"] == "independent")]
        first = of_arm[of_arm["index"] == 0]["test_acc"].iloc[0]
        rows.append({"seed": str(seed), "arm": arm, "distance": group["distance"].mean(),
                     "distance_to_first": group[group["i"] == 0]["distance"].mean(),
                     "norm_ratio": (of_arm.sort_values("index")["norm"].iloc[-1]
                                    / of_arm.sort_values("index")["norm"].iloc[0]),
                     "barrier": group["barrier"].mean(), "barrier_max": group["barrier"].max(),
                     "disagreement": group["disagreement"].mean(),
                     "minimum_acc": of_arm["test_acc"].mean(), "ensemble_acc": ensemble,
                     "ensemble_gain": ensemble - first,
                     "vs_independent": ensemble - independent["test_acc"].iloc[0]})
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    means = table.drop(columns="seed").groupby("arm", sort=False).mean().reset_index()
    return pd.concat([table, means.assign(seed="mean")[list(SUMMARY_COLUMNS)]],
                     ignore_index=True)


__all__ = ["ARMS", "DEFAULT_ARCH", "TABLES", "ValleyResult", "ValleySettings",
           "load_valley_study", "run_valley_study", "study_seed", "summarize", "train_minimum"]
