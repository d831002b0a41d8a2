"""``LearningCurveTable``: per-epoch results of fixed configurations on several datasets.

One Parquet file: the rows (one per configuration, dataset and epoch) and, in the file's
key-value metadata under :data:`MANIFEST_KEY`, a JSON manifest (format version, the space's
fingerprint, the datasets with their content fingerprints and meta-features, the epochs, the
data size, the seed, the hardware and every configuration). Manifest and rows travel in one file
and are written by one rename, so they can never disagree, and a driver killed mid-write leaves
the earlier file or none, never half of one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from ConfigSpace import ConfigurationSpace

from automl_chars.errors import InvalidConfigError, TableError
from automl_chars.spaces.fingerprint import space_fingerprint
from automl_chars.spaces.values import plain_value

#: Version of the file format; a file of another version is refused with a clear error.
TABLE_FORMAT = 1
#: Key of the manifest in the Parquet file's metadata.
MANIFEST_KEY = b"automl_chars.learning_curve_table"
#: Per-epoch metrics, in order.
METRICS = ("val_acc", "val_loss", "test_acc", "test_loss", "train_acc", "train_loss",
           "epoch_seconds", "num_params")
#: Columns of :attr:`LearningCurveTable.frame`, in order.
COLUMNS = ("config_id", "dataset", "epoch", *METRICS, "status", "error")
_SCHEMA = pa.schema([("config_id", pa.int64()), ("dataset", pa.string()), ("epoch", pa.int64()),
                     *[(m, pa.float64()) for m in METRICS],
                     ("status", pa.string()), ("error", pa.string())])
#: The status of a configuration that trained to the last epoch.
FINISHED = "TERMINATED"
#: What to do about a damaged table file of one's own.
REBUILD_REMEDY = ("Copy it again from where it came from, or move it aside (rename it) and run its "
                  "build again with --resume (automl-chars table build ... --resume): the table "
                  "is written again from the build's Ray run, without training, where that run "
                  "is still there.")


@dataclass(frozen=True)
class TableManifest:
    """What a table holds and how it was made.

    Attributes:
        space_fingerprint: :func:`~automl_chars.spaces.space_fingerprint` of the space the
            configurations were drawn from; :meth:`LearningCurveTable.check_space` compares it.
        trainable: the sweep spec that trained them (``"cnn"``).
        datasets: one mapping per dataset, in order: ``name``, ``fingerprint`` (its contents),
            ``num_classes``, ``sizes`` (images per split) and ``meta_features``.
        epochs: the epochs every configuration trained for (the top budget).
        configs: config id -> configuration (plain values, active hyperparameters only).
        samples_per_class: training images per class (None: the loader's default).
        seed: drew the configurations and seeded the training.
        hardware: where it trained (``device``, ``gpus_per_trial``, ``cpus_per_trial``, ...).
        created_at: when the file was written (seconds since the epoch).
        format: :data:`TABLE_FORMAT` of the file.
    """

    space_fingerprint: str
    trainable: str
    datasets: tuple[Mapping[str, Any], ...]
    epochs: int
    configs: Mapping[int, Mapping[str, Any]]
    samples_per_class: int | None = None
    seed: int = 0
    hardware: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    format: int = TABLE_FORMAT

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise InvalidConfigError(f"A table's epochs must be a whole number >= 1, got "
                                     f"{self.epochs!r}.")
        names = [d.get("name") for d in self.datasets]
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise InvalidConfigError(f"A table needs distinct, named datasets; got {names}.")
        object.__setattr__(self, "datasets", tuple(dict(d) for d in self.datasets))
        object.__setattr__(self, "configs", {int(k): dict(v) for k, v in self.configs.items()})

    @property
    def dataset_names(self) -> list[str]:
        """The datasets' names, in build order."""
        return [d["name"] for d in self.datasets]

    def to_json(self) -> str:
        """The manifest as JSON (config ids as strings, as JSON keys must be)."""
        return json.dumps(plain_value(asdict(self)), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TableManifest:
        """Reads :meth:`to_json`'s output; raises ``ValueError``, ``KeyError``, ``TypeError`` or ``AttributeError`` if malformed."""
        data = json.loads(text)
        if data.get("format") != TABLE_FORMAT:
            raise _OtherVersion(data.get("format"))
        data["datasets"] = tuple(data["datasets"])
        data["configs"] = {int(k): v for k, v in data["configs"].items()}
        return cls(**data)


class _OtherVersion(Exception):
    """A manifest of another format version (turned into a :class:`TableError` by ``load``)."""


class LearningCurveTable:
    """Learning curves of configurations x datasets x epochs (see the module docstring).

    Args:
        frame: one row per configuration, dataset and epoch (:data:`COLUMNS`).
        manifest: what the rows are (:class:`TableManifest`).
        path: the file it was read from, if any (named in errors).
    """

    def __init__(self, frame: pd.DataFrame, manifest: TableManifest,
                 path: str | os.PathLike | None = None):
        self.manifest = manifest
        self.path = Path(path) if path is not None else None
        self._frame = _normalise(frame)
        problems = frame_problems(self._frame, manifest)
        if problems:
            raise TableError(f"Learning-curve table{self._where()} is inconsistent: "
                             + "; ".join(problems) + ".")

    # -- reading ---------------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """Every row (a copy): :data:`COLUMNS`, sorted by dataset, configuration and epoch."""
        return self._frame.copy()

    @property
    def configs(self) -> dict[int, dict]:
        """config id -> configuration (plain values; id 0 is the space's default in a built
        table)."""
        return {k: dict(v) for k, v in self.manifest.configs.items()}

    @property
    def datasets(self) -> list[str]:
        """The datasets' names."""
        return self.manifest.dataset_names

    @property
    def epochs(self) -> int:
        """The top budget: epochs every configuration trained for."""
        return self.manifest.epochs

    def curve(self, config_id: int, dataset: str) -> pd.DataFrame:
        """Configuration ``config_id``'s learning curve on ``dataset``: one row per epoch
        (index ``epoch``), :data:`METRICS` plus ``status`` and ``error``."""
        self._check_dataset(dataset)
        if config_id not in self.manifest.configs:
            ids = sorted(self.manifest.configs)
            raise InvalidConfigError(f"No configuration {config_id!r} in the table"
                                     f"{self._where()}; its ids run {ids[0]}..{ids[-1]}."
                                     if ids else f"The table{self._where()} has no configurations.")
        f = self._frame
        rows = f[(f["config_id"] == config_id) & (f["dataset"] == dataset)]
        return rows.drop(columns=["config_id", "dataset"]).set_index("epoch").sort_index()

    def best(self, dataset: str, budget: int | None = None, metric: str = "val_acc") -> pd.Series:
        """The row of the configuration with the highest ``metric`` on ``dataset`` after
        ``budget`` epochs (default: the top budget); ties go to the lowest config id. The
        reference of a replayed sweep's regret."""
        self._check_dataset(dataset)
        budget = self.epochs if budget is None else budget
        if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= self.epochs:
            raise InvalidConfigError(f"budget must be a whole number of epochs from 1 to "
                                     f"{self.epochs}, got {budget!r}.")
        if metric not in METRICS:
            raise InvalidConfigError(f"Unknown metric {metric!r}; the table has {list(METRICS)}.")
        f = self._frame
        rows = f[(f["dataset"] == dataset) & (f["epoch"] == budget)].dropna(subset=[metric])
        if rows.empty:
            raise TableError(f"No configuration has a {metric} on {dataset!r} at epoch {budget} "
                             f"in the table{self._where()}: all failed.")
        order = rows.sort_values([metric, "config_id"], ascending=[False, True])
        return order.iloc[0]

    def summary(self) -> pd.DataFrame:
        """Per dataset: configurations, how many failed, and the best validation accuracy at
        each epoch budget (``best@<epoch>``) with the test accuracy of the top budget's best."""
        out = []
        for name in self.datasets:
            rows = self._frame[self._frame["dataset"] == name]
            per_config = rows.groupby("config_id")["status"].first()
            row = {"dataset": name, "configs": int(per_config.size),
                   "failed": int((per_config != FINISHED).sum())}
            for epoch in range(1, self.epochs + 1):
                at = rows[rows["epoch"] == epoch]["val_acc"]
                row[f"best@{epoch}"] = float(at.max()) if at.notna().any() else math.nan
            try:
                row["test_acc"] = float(self.best(name)["test_acc"])
            except TableError:
                row["test_acc"] = math.nan
            out.append(row)
        return pd.DataFrame(out)

    def check_space(self, space: ConfigurationSpace) -> None:
        """Raises :class:`TableError` unless ``space`` is the space the table was built over
        (same hyperparameters, ranges, conditions), so no search runs on stale curves."""
        given = space_fingerprint(space)
        if given != self.manifest.space_fingerprint:
            raise TableError(
                f"The learning-curve table{self._where()} was built over another search space "
                f"(fingerprint {self.manifest.space_fingerprint}, this space's is {given}): the "
                f"space changed since. Rebuild the table (automl-chars table build) or search "
                f"the space it was built over.")

    def store_rows(self, datasets: Sequence[str] | None = None) -> pd.DataFrame:
        """The table's finished epochs of ``datasets`` (default: all) as results-store rows,
        as :meth:`~automl_chars.store.ResultsStore.configs` gives them (configurations as
        dicts; kind ``table``, budget = epoch, ``trial_id`` ``<dataset>/<config id>``, the
        manifest's meta-features as ``mf_*``, ``origin`` ``table``; ``seconds`` the time to train
        to that epoch, as a sweep's ``time_total_s``): what a warm start draws on."""
        from automl_chars.store.store import rows

        names = self.datasets if datasets is None else list(datasets)
        for name in names:
            self._check_dataset(name)
        frames = []
        entries = {d["name"]: d for d in self.manifest.datasets}
        frame = self._frame.sort_values(["dataset", "config_id", "epoch"])
        # seconds as the store means them: the time to reach that budget from scratch
        groups = [frame["dataset"], frame["config_id"]]
        gap = frame["epoch_seconds"].isna().groupby(groups).cummax()  # unknown from a gap on
        frame = frame.assign(seconds=frame["epoch_seconds"].fillna(0).groupby(groups).cumsum()
                             .mask(gap))
        for name in names:
            done = frame[(frame["dataset"] == name) & frame["val_acc"].notna()]
            results = [{"config": self.manifest.configs[r.config_id], "budget": float(r.epoch),
                        "val_acc": r.val_acc, "test_acc": r.test_acc, "seconds": r.seconds,
                        "status": r.status, "suggested_by": "table",
                        "trial_id": f"{name}/{r.config_id}"} for r in done.itertuples()]
            entry = entries[name]
            frames.append(rows("table", name, entry.get("fingerprint", ""), self.manifest.trainable,
                               results, str(self.path or ""), entry.get("meta_features"),
                               self.manifest.space_fingerprint))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if len(frame):
            frame["config"] = [json.loads(c) for c in frame["config"]]
        return frame.assign(origin="table")

    @classmethod
    def concat(cls, tables: Sequence[LearningCurveTable]) -> LearningCurveTable:
        """One table of several builds' datasets: the same configurations, space, epochs, data
        size and seed, distinct datasets (a table built a dataset at a time, over several
        sessions, read as one). The hardware is kept per part where the parts differ."""
        first = _one_build(tables, "concat", "configs", "parts")
        datasets = [d for t in tables for d in t.manifest.datasets]
        names = [d["name"] for d in datasets]
        if len(set(names)) != len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise TableError(f"Learning-curve tables to join repeat the datasets {repeated}.")
        hardware = [dict(t.manifest.hardware) for t in tables]
        kept = hardware[0] if all(h == hardware[0] for h in hardware) else {
            "parts": {d["name"]: h for t, h in zip(tables, hardware) for d in t.manifest.datasets}}
        manifest = replace(first, datasets=tuple(datasets), hardware=kept,
                           created_at=max(t.manifest.created_at for t in tables))
        return cls(pd.concat([t._frame for t in tables], ignore_index=True), manifest)

    def select(self, config_ids: Sequence[int]) -> LearningCurveTable:
        """The table of just ``config_ids`` (their rows and manifest entries)."""
        missing = sorted(set(config_ids) - set(self.manifest.configs))
        if missing:
            raise InvalidConfigError(f"No configurations {missing[:10]} in the table"
                                     f"{self._where()}.")
        keep = sorted(set(config_ids))
        manifest = replace(self.manifest, configs={i: self.manifest.configs[i] for i in keep})
        return type(self)(self._frame[self._frame["config_id"].isin(keep)], manifest)

    @classmethod
    def join_configs(cls, tables: Sequence[LearningCurveTable]) -> LearningCurveTable:
        """One table of several slices of one build's configurations (a build trained a slice
        at a time, each slice's file kept, so a new machine goes on where the last stopped): the
        same datasets, space, epochs, data size and seed, distinct config ids. The hardware is
        kept per slice where slices differ."""
        first = _one_build(tables, "join_configs", "datasets", "slices")
        ids = [i for t in tables for i in t.manifest.configs]
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            raise TableError(f"Learning-curve tables to join repeat the configurations "
                             f"{repeated[:10]}.")
        hardware = [dict(t.manifest.hardware) for t in tables]
        kept = hardware[0] if all(h == hardware[0] for h in hardware) else {
            "slices": [{"configs": [min(t.manifest.configs), max(t.manifest.configs)],
                        **h} for t, h in zip(tables, hardware)]}
        configs = {i: c for t in tables for i, c in t.manifest.configs.items()}
        manifest = replace(first, configs=dict(sorted(configs.items())), hardware=kept,
                           created_at=max(t.manifest.created_at for t in tables))
        return cls(pd.concat([t._frame for t in tables], ignore_index=True), manifest)

    # -- files -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Writes the table to ``path`` atomically (a temporary file beside it, then a rename)."""
        path = Path(path).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(self._frame, schema=_SCHEMA, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), MANIFEST_KEY: self.manifest.to_json().encode()})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared table from a team
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, remedy: str = REBUILD_REMEDY) -> LearningCurveTable:
        """Reads a table written by :meth:`save`; a missing, truncated, garbled, foreign or
        other-version file raises :class:`TableError` naming the file and ``remedy`` (what to
        do about a damaged one)."""
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise TableError(f"No learning-curve table at {path}"
                             f"{' (a folder)' if path.is_dir() else ''}: build one with "
                             f"`automl-chars table build ... --out {path}`.")
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as err:
            what = "it is empty" if path.stat().st_size == 0 else f"truncated, garbled or not " \
                f"Parquet: {str(err).strip().splitlines()[0] if str(err).strip() else err!r}"
            raise TableError(f"{path} cannot be read as a learning-curve table ({what}). "
                             f"{remedy}") from None
        raw = (table.schema.metadata or {}).get(MANIFEST_KEY)
        if raw is None:
            raise TableError(f"{path} is a Parquet file but not a learning-curve table (it has "
                             f"no manifest). {remedy}")
        try:
            manifest = TableManifest.from_json(raw.decode())
        except _OtherVersion as other:
            raise TableError(
                f"{path} is a learning-curve table of format {other.args[0]!r}; this version of "
                f"automl_chars reads format {TABLE_FORMAT}. Use the automl_chars that wrote it, "
                f"or: {remedy}") from None
        except (ValueError, KeyError, TypeError, AttributeError, InvalidConfigError) as err:
            raise TableError(f"{path} has a damaged manifest ({type(err).__name__}: {err}). "
                             f"{remedy}") from None
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise TableError(f"{path} lacks the columns {missing} of a learning-curve table. "
                             f"{remedy}")
        return cls(table.to_pandas(), manifest, path)

    # -- helpers ---------------------------------------------------------------------------
    def _where(self) -> str:
        return f" {self.path}" if self.path is not None else ""

    def _check_dataset(self, dataset: str) -> None:
        if dataset not in self.datasets:
            raise InvalidConfigError(f"The table{self._where()} has no dataset {dataset!r}; it "
                                     f"has {self.datasets}.")

    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        return (f"LearningCurveTable({len(self.manifest.configs)} configurations x "
                f"{len(self.datasets)} datasets x {self.epochs} epochs"
                f"{', ' + repr(str(self.path)) if self.path else ''})")


def _one_build(tables: Sequence[LearningCurveTable], method: str, shared: str,
               what: str) -> TableManifest:
    """The first table's manifest, once every table has the same space, trainable, epochs,
    data size, seed and ``shared`` (``configs`` for parts of datasets, ``datasets`` for slices
    of configurations); else a :class:`TableError` saying they are not ``what`` of one build."""
    if not tables:
        raise InvalidConfigError(f"LearningCurveTable.{method} needs at least one table.")
    first = tables[0].manifest
    same = ("space_fingerprint", "trainable", "epochs", shared, "samples_per_class", "seed")
    for table in tables[1:]:
        differ = [k for k in same if getattr(table.manifest, k) != getattr(first, k)]
        if differ:
            raise TableError(f"Learning-curve tables{tables[0]._where()} and"
                             f"{table._where() or ' (unsaved)'} are not {what} of one build: "
                             f"their {', '.join(differ)} differ.")
    return first


def frame_problems(frame: pd.DataFrame, manifest: TableManifest) -> list[str]:
    """What is wrong with ``frame`` as the rows of ``manifest`` (empty when nothing): unknown
    datasets or configurations, epochs out of range, repeated or missing rows."""
    problems = []
    unknown = sorted(set(frame["dataset"]) - set(manifest.dataset_names))
    if unknown:
        problems.append(f"rows of datasets {unknown} the manifest does not list")
    ids = sorted(set(frame["config_id"]) - set(manifest.configs))
    if ids:
        problems.append(f"rows of configurations {ids[:10]} the manifest does not list")
    bad = frame[(frame["epoch"] < 1) | (frame["epoch"] > manifest.epochs)]
    if not bad.empty:
        problems.append(f"epochs {sorted(set(bad['epoch']))[:10]} outside 1..{manifest.epochs}")
    keys = ["config_id", "dataset", "epoch"]
    if frame.duplicated(keys).any():
        problems.append(f"{int(frame.duplicated(keys).sum())} repeated (config_id, dataset, "
                        f"epoch) rows")
    expected = len(manifest.configs) * len(manifest.datasets) * manifest.epochs
    if not problems and len(frame) != expected:
        problems.append(f"{len(frame)} rows where every configuration, dataset and epoch makes "
                        f"{expected}")
    return problems


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s :data:`COLUMNS` in order and type, sorted; raises on missing or extra ones."""
    missing = [c for c in COLUMNS if c not in frame]
    extra = [c for c in frame if c not in COLUMNS]
    if missing or extra:
        raise InvalidConfigError(f"A learning-curve frame needs exactly the columns "
                                 f"{list(COLUMNS)}; missing {missing}, unknown {extra}.")
    out = frame[list(COLUMNS)].copy()
    out["config_id"] = out["config_id"].astype("int64")
    out["epoch"] = out["epoch"].astype("int64")
    for m in METRICS:
        out[m] = pd.to_numeric(out[m], errors="coerce").astype("float64")
    for c in ("dataset", "status", "error"):
        out[c] = out[c].fillna("").astype(str)
    return out.sort_values(["dataset", "config_id", "epoch"]).reset_index(drop=True)


def manifest_for(datasets: Sequence[Mapping[str, Any]], configs: Mapping[int, Mapping[str, Any]],
                 space: ConfigurationSpace, epochs: int, *, trainable: str = "cnn",
                 **fields: Any) -> TableManifest:
    """A manifest of ``configs`` drawn from ``space`` (its fingerprint taken here); ``fields``
    are :class:`TableManifest`'s others (``samples_per_class``, ``seed``, ``hardware``, ...)."""
    return TableManifest(space_fingerprint=space_fingerprint(space), trainable=trainable,
                         datasets=tuple(datasets), epochs=epochs, configs=configs, **fields)


__all__ = ["COLUMNS", "FINISHED", "MANIFEST_KEY", "METRICS", "REBUILD_REMEDY", "TABLE_FORMAT", "LearningCurveTable",
           "TableManifest", "frame_problems", "manifest_for"]
