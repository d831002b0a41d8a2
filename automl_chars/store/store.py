"""``ResultsStore``: configuration x dataset results of every sweep and portfolio build.

An embedded store of Parquet files, one per contribution (a sweep, a portfolio build), read as
one pyarrow dataset. Each file is written to a temporary name and renamed into place, so two
sweeps finishing at once never share a file and a writer killed mid-write leaves no partial
file (its temporary file is ignored and cleaned later). A contribution's file name is derived
from what it describes (the sweep's folder), so a sweep resumed and finished twice replaces its
own rows instead of adding them again.

A file damaged all the same (a full disk, a killed copy, a hand edit: truncated, empty, garbled,
not a store file, of a newer format version) is skipped with a
:class:`~automl_chars.errors.DamagedFileWarning` naming it, and the other files are still read;
:meth:`ResultsStore.check` verifies every file and :meth:`ResultsStore.repair` moves the damaged
ones into ``damaged/`` (``automl-chars store check [--repair]``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from automl_chars import uris
from automl_chars.errors import DamagedFileWarning, StoreError
from automl_chars.layout import results_root
from automl_chars.spaces.values import config_key

#: Environment variable naming the store's folder.
STORE_ENV = "AUTOML_CHARS_STORE"
#: Columns of every row, in order; meta-features follow as ``mf_<name>``.
COLUMNS = ("kind", "dataset", "dataset_fingerprint", "trainable", "source", "config", "budget",
           "val_acc", "test_acc", "seconds", "status", "suggested_by", "trial_id", "folder",
           "added_at", "space_fingerprint")
#: Columns added by a later format version: files written before it lack them (read as "").
#: ``space_fingerprint`` (version 2): the searched space's (``SweepSpec.fingerprint``), "" where
#: unknown; a warm start takes the configurations of rows of its own space without refitting.
_SINCE = {"space_fingerprint": 2}
_SCHEMA = pa.schema([
    ("kind", pa.string()), ("dataset", pa.string()), ("dataset_fingerprint", pa.string()),
    ("trainable", pa.string()), ("source", pa.string()), ("config", pa.string()),
    ("budget", pa.float64()), ("val_acc", pa.float64()), ("test_acc", pa.float64()),
    ("seconds", pa.float64()), ("status", pa.string()), ("suggested_by", pa.string()),
    ("trial_id", pa.string()), ("folder", pa.string()), ("added_at", pa.float64()),
    ("space_fingerprint", pa.string()),
])
#: Format version of the files written now, kept in each file's metadata (none: version 1).
FORMAT_VERSION = 2
_VERSION_KEY = b"automl_chars.store_version"
#: Subfolder of the store that :meth:`ResultsStore.repair` moves damaged files into.
DAMAGED_DIR = "damaged"


def default_store_path() -> Path:
    """``$AUTOML_CHARS_STORE``, else ``store/`` beside the sweeps (``$AUTOML_CHARS_RESULTS`` or
    ``~/automl_chars_results``): on a cluster, on the storage the sweeps share."""
    if os.environ.get(STORE_ENV):
        return uris.local_path(os.environ[STORE_ENV], STORE_ENV)
    return results_root() / "store"


def store_beside(folder: str | os.PathLike) -> ResultsStore:
    """The store a sweep or portfolio in ``folder`` records into: ``$AUTOML_CHARS_STORE``, else
    ``store/`` beside ``folder`` (in the same storage root)."""
    if os.environ.get(STORE_ENV):
        return ResultsStore(os.environ[STORE_ENV])
    return ResultsStore(uris.local_path(folder, "folder").parent / "store")


@dataclass(frozen=True, order=True)
class DamagedFile:
    """A store file that cannot be read: ``path`` and ``reason``."""

    path: Path
    reason: str


@dataclass(frozen=True)
class TaskEvaluations:
    """One dataset's evaluations in the shape of Syne Tune's ``TransferLearningTaskEvaluations``:
    ``hyperparameters`` (one row per configuration), ``objectives_evaluations`` of shape
    ``(num_configs, num_seeds=1, num_fidelities, num_objectives=1)`` (NaN where a configuration
    was not evaluated at a budget), ``fidelity_values`` (the budgets) and ``objectives_names``."""

    hyperparameters: pd.DataFrame
    objectives_evaluations: np.ndarray
    fidelity_values: np.ndarray
    objectives_names: tuple[str, ...] = ("val_acc",)


class ResultsStore:
    """The store in ``path`` (default :func:`default_store_path`): a folder or a storage URI,
    whose files are then downloaded here and each new one uploaded (:mod:`automl_chars.uris`);
    ``remedy``: what the warning about a damaged file says to do (default: move it aside with
    ``store check --repair``)."""

    def __init__(self, path: str | os.PathLike | None = None, remedy: str | None = None):
        self.path = uris.pull(uris.local_path(path, "store") if path else default_store_path())
        #: The store as a user names it: its folder, or its URI (no credentials) when
        #: :attr:`path` is the local mirror of one.
        self.location = uris.shown(self.path)
        self.remedy = remedy

    # -- writing ----------------------------------------------------------------------------
    def write(self, key: str, rows: pd.DataFrame) -> Path:
        """Stores ``rows`` as the contribution ``key`` (replacing an earlier one of that key)."""
        frame = _normalise(rows)
        self.path.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:20] + ".parquet"
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the store from a team's other users
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               _VERSION_KEY: str(FORMAT_VERSION).encode()})
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, self.path / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        uris.push(self.path / name)
        return self.path / name

    # -- reading ----------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """The store's files, one per contribution (temporary files and ``damaged/`` left out);
        a store folder that cannot be listed raises :class:`~automl_chars.errors.StoreError`."""
        if not self.path.exists():
            return []
        try:
            with os.scandir(self.path) as entries:
                names = [e.name for e in entries if e.name.endswith(".parquet")
                         and not e.name.startswith(".")]
        except OSError as err:
            raise StoreError(f"Cannot read the results store {self.path} ({err}). Pass a store "
                             f"folder (--store, $AUTOML_CHARS_STORE) that this user can "
                             f"read.") from None
        return sorted(self.path / n for n in names)

    def frame(self) -> pd.DataFrame:
        """Every row of every contribution as one DataFrame (:data:`COLUMNS` and ``mf_*``); a
        damaged file is skipped with a :class:`~automl_chars.errors.DamagedFileWarning`."""
        frame, damaged = self.read()
        for d in damaged:
            warnings.warn(self.damage_message(d), DamagedFileWarning, stacklevel=2)
        return frame

    def read(self) -> tuple[pd.DataFrame, list[DamagedFile]]:
        """The rows of every readable file, and the files that could not be read (no warning):
        each file's schema is checked, then all are read as one pyarrow dataset (a file damaged
        past its footer is then found by reading them one by one)."""
        schemas, damaged = {}, []
        for f in self.files():
            try:
                schemas[f] = _file_schema(f)
            except _Damaged as err:
                damaged.append(DamagedFile(f, str(err)))
            except FileNotFoundError:  # moved aside or replaced since it was listed
                continue
        if not schemas:
            return pd.DataFrame(columns=list(COLUMNS)), damaged
        schema = _unified_schema(schemas.values())
        try:
            table = _read_table(list(schemas), schema)
        except (_Damaged, FileNotFoundError):
            tables = []
            for f in schemas:
                try:
                    tables.append(_read_table([f], schema))
                except _Damaged as err:
                    damaged.append(DamagedFile(f, str(err)))
                except FileNotFoundError:
                    continue
            table = pa.concat_tables(tables) if tables else schema.empty_table()
        frame = table.to_pandas()
        for col in _SINCE:  # files written before the column was: ""
            frame[col] = frame[col].fillna("")
        return frame, sorted(damaged)

    def check(self) -> list[DamagedFile]:
        """Every file that cannot be read in full (its schema checked, all its rows read)."""
        damaged = []
        for f in self.files():
            try:
                _read_table([f], _unified_schema([_file_schema(f)]))
            except _Damaged as err:
                damaged.append(DamagedFile(f, str(err)))
            except FileNotFoundError:
                continue
        return damaged

    def repair(self) -> list[tuple[DamagedFile, Path]]:
        """Moves every damaged file (:meth:`check`) into ``damaged/`` of the store (nothing is
        deleted); returns each with where it went. A sweep's rows come back when the sweep is
        added again (``automl-chars store import DIR``)."""
        moved = []
        for d in self.check():
            target = self.path / DAMAGED_DIR / d.path.name
            target.parent.mkdir(exist_ok=True)
            n = 1
            while target.exists():  # a file of the same contribution damaged before
                target = target.with_name(f"{d.path.stem}.{n}{d.path.suffix}")
                n += 1
            uris.move(d.path, target)  # at a URI, there too: else the next read brings it back
            moved.append((d, target))
        return moved

    def damage_message(self, damaged: DamagedFile) -> str:
        """The warning about a damaged file: which, why, and how to move it aside."""
        remedy = self.remedy or (f"Move it aside with `automl-chars store check --repair "
                                 f"--store {self.location}`.")
        return (f"Results store {self.location}: skipped the damaged file "
                f"{uris.shown(damaged.path, query=False)} "
                f"({damaged.reason}); its rows are left out, the other files are read. {remedy}")

    def configs(self) -> pd.DataFrame:
        """:meth:`frame` with each row's configuration as plain dicts in column ``config``."""
        frame = self.frame()
        # Each distinct text is parsed once (a sweep's trial repeats its configuration at every
        # budget it reached); every row still gets a dict of its own.
        parsed: dict[str, dict] = {}
        for text in frame["config"].unique():
            if isinstance(text, str):
                parsed[text] = json.loads(text)
        frame["config"] = [dict(parsed.get(c, {})) if isinstance(c, str) else {}
                           for c in frame["config"]]
        return frame

    def task_evaluations(self, trainable: str = "cnn") -> dict[str, TaskEvaluations]:
        """The store's ``trainable`` rows as configuration x task evaluations, per dataset (the
        shape Syne Tune's transfer-learning schedulers take)."""
        frame = self.configs()
        frame = frame[(frame["trainable"] == trainable) & frame["val_acc"].notna()]
        out = {}
        for dataset, rows in frame.groupby("dataset"):
            keys = [config_key(c) for c in rows["config"]]
            unique = list(dict.fromkeys(keys))
            budgets = np.array(sorted(rows["budget"].unique()))
            values = np.full((len(unique), 1, len(budgets), 1), np.nan)
            for key, budget, acc in zip(keys, rows["budget"], rows["val_acc"]):
                values[unique.index(key), 0, int(np.searchsorted(budgets, budget)), 0] = acc
            out[str(dataset)] = TaskEvaluations(
                pd.DataFrame([json.loads(k) for k in unique]), values, budgets)
        return out

    def __repr__(self) -> str:
        return f"ResultsStore({self.location!r})"


def rows(kind: str, dataset: str, fingerprint: str, trainable: str,
         results: Iterable[Mapping[str, Any]], folder: str,
         meta_features: Mapping[str, float] | None = None,
         space_fingerprint: str = "") -> pd.DataFrame:
    """Store rows from per-result mappings with ``config`` (dict), ``budget``, ``val_acc`` and
    optionally ``test_acc``, ``seconds``, ``status``, ``suggested_by``, ``trial_id``, ``source``;
    ``space_fingerprint``: the space the configurations were drawn from, when they are whole
    configurations of it ("" otherwise)."""
    now = time.time()
    out = []
    for r in results:
        config = dict(r.get("config") or {})
        out.append({
            "kind": kind, "dataset": dataset, "dataset_fingerprint": fingerprint,
            "trainable": trainable, "source": r.get("source") or config.get("source") or "",
            "config": config_key(config),
            "budget": r.get("budget"), "val_acc": r.get("val_acc"),
            "test_acc": r.get("test_acc", float("nan")), "seconds": r.get("seconds"),
            "status": r.get("status", ""), "suggested_by": r.get("suggested_by", ""),
            "trial_id": r.get("trial_id", ""), "folder": folder, "added_at": now,
            "space_fingerprint": space_fingerprint,
            **{f"mf_{k}": float(v) for k, v in (meta_features or {}).items()},
        })
    return pd.DataFrame(out)


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(**{c: "" for c in _SINCE if c not in frame})  # not known: ""
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"Store rows lack columns {missing}.")
    extra = sorted(c for c in frame if c not in COLUMNS)
    bad = [c for c in extra if not c.startswith("mf_")]
    if bad:
        raise ValueError(f"Store rows have unknown columns {bad}; meta-features go in mf_*.")
    frame = frame[list(COLUMNS) + extra].copy()
    for col in ("budget", "val_acc", "test_acc", "seconds", "added_at", *extra):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    for col in ("kind", "dataset", "dataset_fingerprint", "trainable", "source", "config",
                "status", "suggested_by", "trial_id", "folder", "space_fingerprint"):
        frame[col] = frame[col].fillna("").astype(str)
    return frame


class _Damaged(Exception):
    """A store file that cannot be read (its reason in words)."""


def _file_schema(path: Path) -> pa.Schema:
    """``path``'s schema (its footer), or :class:`_Damaged` when the file is empty, truncated,
    not Parquet, not a store file or of a newer format version (a file gone since it was
    listed raises ``FileNotFoundError``)."""
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as err:
        raise _Damaged(_reason(path, err)) from None
    raw = (schema.metadata or {}).get(_VERSION_KEY, b"1")
    try:
        version = int(raw)
    except ValueError:
        raise _Damaged(f"unknown store format version {raw!r}") from None
    if version > FORMAT_VERSION:
        raise _Damaged(f"store format version {version}, written by a newer automl_chars; this "
                       f"one reads version {FORMAT_VERSION}: upgrade to read it")
    missing = [c for c in COLUMNS if c not in schema.names and _SINCE.get(c, 1) <= version]
    if missing:
        raise _Damaged(f"not a results-store file: it lacks the columns {missing}")
    for field in schema:
        expected = _SCHEMA.field(field.name).type if field.name in _SCHEMA.names else (
            pa.float64())
        if not _fits(field.type, expected):
            raise _Damaged(f"its column {field.name!r} holds {field.type}, not {expected}")
    return schema


def _fits(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_null(actual) or actual == expected:
        return True
    if pa.types.is_floating(expected):
        return pa.types.is_integer(actual) or pa.types.is_floating(actual)
    return pa.types.is_string(expected) and pa.types.is_large_string(actual)


def _read_table(files: list[Path], schema: pa.Schema) -> pa.Table:
    """The rows of ``files`` in ``schema`` (one pyarrow dataset), or :class:`_Damaged`."""
    try:
        return pads.dataset([str(f) for f in files], format="parquet",
                            schema=schema).to_table()
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as err:
        raise _Damaged(_reason(files[0] if len(files) == 1 else None, err)) from None


def _reason(path: Path | None, err: Exception) -> str:
    """Why pyarrow could not read a file, in a user's words."""
    try:
        if path is not None and path.stat().st_size == 0:
            return "it is empty (0 bytes)"
    except OSError:
        pass
    detail = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"truncated, garbled or not Parquet: {detail}"


def _unified_schema(schemas: Iterable[pa.Schema]) -> pa.Schema:
    """The fixed columns plus every ``mf_*`` column any file has (others read as null)."""
    extra: dict[str, pa.DataType] = {}
    for schema in schemas:
        for field in schema:
            if field.name not in _SCHEMA.names:
                extra.setdefault(field.name, pa.float64())
    return pa.schema(list(_SCHEMA) + [pa.field(n, t) for n, t in sorted(extra.items())])
