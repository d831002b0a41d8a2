"""``ResultsStore``: configuration x dataset results of every sweep and portfolio build.

An embedded store of Parquet files, one per contribution (a sweep, a portfolio build), read as
one pyarrow dataset. Each file is written to a temporary name and renamed into place, so two
sweeps finishing at once never share a file and a writer killed mid-write leaves no partial
file (its temporary file is ignored and cleaned later). A contribution's file name is derived
from what it describes (the sweep's folder), so a sweep resumed and finished twice replaces its
own rows instead of adding them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from automl_chars.layout import results_root

#: Environment variable naming the store's folder.
STORE_ENV = "AUTOML_CHARS_STORE"
#: Columns of every row, in order; meta-features follow as ``mf_<name>``.
COLUMNS = ("kind", "dataset", "dataset_fingerprint", "trainable", "source", "config", "budget",
           "val_acc", "test_acc", "seconds", "status", "suggested_by", "trial_id", "folder",
           "added_at")
_SCHEMA = pa.schema([
    ("kind", pa.string()), ("dataset", pa.string()), ("dataset_fingerprint", pa.string()),
    ("trainable", pa.string()), ("source", pa.string()), ("config", pa.string()),
    ("budget", pa.float64()), ("val_acc", pa.float64()), ("test_acc", pa.float64()),
    ("seconds", pa.float64()), ("status", pa.string()), ("suggested_by", pa.string()),
    ("trial_id", pa.string()), ("folder", pa.string()), ("added_at", pa.float64()),
])


def default_store_path() -> Path:
    """``$AUTOML_CHARS_STORE``, else ``store/`` beside the sweeps (``$AUTOML_CHARS_RESULTS`` or
    ``~/automl_chars_results``): on a cluster, on the storage the sweeps share."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser().resolve()
    return results_root() / "store"


def store_beside(folder: str | os.PathLike) -> ResultsStore:
    """The store a sweep or portfolio in ``folder`` records into: ``$AUTOML_CHARS_STORE``, else
    ``store/`` beside ``folder`` (in the same storage root)."""
    if os.environ.get(STORE_ENV):
        return ResultsStore(os.environ[STORE_ENV])
    return ResultsStore(Path(folder).expanduser().resolve().parent / "store")


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
    """The store in ``path`` (default :func:`default_store_path`)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser().resolve() if path else default_store_path()

    # -- writing ----------------------------------------------------------------------------
    def write(self, key: str, rows: pd.DataFrame) -> Path:
        """Stores ``rows`` as the contribution ``key`` (replacing an earlier one of that key)."""
        frame = _normalise(rows)
        self.path.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:20] + ".parquet"
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the store from a team's other users
        try:
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
            os.replace(tmp, self.path / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path / name

    # -- reading ----------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """Every row of every contribution as one DataFrame (:data:`COLUMNS` and ``mf_*``)."""
        files = sorted(self.path.glob("*.parquet")) if self.path.exists() else []
        if not files:
            return pd.DataFrame(columns=list(COLUMNS))
        dataset = pads.dataset([str(f) for f in files], format="parquet",
                               schema=_unified_schema(files))
        return dataset.to_table().to_pandas()

    def configs(self) -> pd.DataFrame:
        """:meth:`frame` with each row's configuration as plain dicts in column ``config``."""
        frame = self.frame()
        frame["config"] = [json.loads(c) if isinstance(c, str) else {} for c in frame["config"]]
        return frame

    def task_evaluations(self, trainable: str = "cnn") -> dict[str, TaskEvaluations]:
        """The store's ``trainable`` rows as configuration x task evaluations, per dataset (the
        shape Syne Tune's transfer-learning schedulers take)."""
        frame = self.configs()
        frame = frame[(frame["trainable"] == trainable) & frame["val_acc"].notna()]
        out = {}
        for dataset, rows in frame.groupby("dataset"):
            keys = [json.dumps(c, sort_keys=True) for c in rows["config"]]
            unique = list(dict.fromkeys(keys))
            budgets = np.array(sorted(rows["budget"].unique()))
            values = np.full((len(unique), 1, len(budgets), 1), np.nan)
            for key, budget, acc in zip(keys, rows["budget"], rows["val_acc"]):
                values[unique.index(key), 0, int(np.searchsorted(budgets, budget)), 0] = acc
            out[str(dataset)] = TaskEvaluations(
                pd.DataFrame([json.loads(k) for k in unique]), values, budgets)
        return out

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"


def rows(kind: str, dataset: str, fingerprint: str, trainable: str,
         results: Iterable[Mapping[str, Any]], folder: str,
         meta_features: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Store rows from per-result mappings with ``config`` (dict), ``budget``, ``val_acc`` and
    optionally ``test_acc``, ``seconds``, ``status``, ``suggested_by``, ``trial_id``, ``source``."""
    now = time.time()
    out = []
    for r in results:
        config = dict(r.get("config") or {})
        out.append({
            "kind": kind, "dataset": dataset, "dataset_fingerprint": fingerprint,
            "trainable": trainable, "source": r.get("source") or config.get("source") or "",
            "config": json.dumps(config, sort_keys=True, default=str),
            "budget": r.get("budget"), "val_acc": r.get("val_acc"),
            "test_acc": r.get("test_acc", float("nan")), "seconds": r.get("seconds"),
            "status": r.get("status", ""), "suggested_by": r.get("suggested_by", ""),
            "trial_id": r.get("trial_id", ""), "folder": folder, "added_at": now,
            **{f"mf_{k}": float(v) for k, v in (meta_features or {}).items()},
        })
    return pd.DataFrame(out)


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
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
                "status", "suggested_by", "trial_id", "folder"):
        frame[col] = frame[col].fillna("").astype(str)
    return frame


def _unified_schema(files: list[Path]) -> pa.Schema:
    """The fixed columns plus every ``mf_*`` column any file has (others read as null)."""
    extra: dict[str, pa.DataType] = {}
    for f in files:
        for field in pq.read_schema(f):
            if field.name not in _SCHEMA.names:
                extra.setdefault(field.name, pa.float64())
    return pa.schema(list(_SCHEMA) + [pa.field(n, t) for n, t in sorted(extra.items())])
