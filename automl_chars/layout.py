"""Result folders: the names of the files every run writes beside Ray's own state, where runs go,
and the one atomic JSON write. Shared by the runner that writes them and by everything that
reads them back (reporting, the store, ``show``), none of which needs Ray.

- ``automl_chars.json`` (:data:`SETTINGS_FILE`): a run's settings, written at start, read on
  resume;
- ``trials.csv`` (:data:`TRIALS_FILE`): one row per trial;
- ``summary.json`` (:data:`SUMMARY_FILE`): what the run found, written when it finished;
- ``history.csv`` (:data:`HISTORY_FILE`): every result of every trial of ``run_trials``;
- ``warm_start.json`` (:data:`WARM_START_FILE`): a warm start's plan.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from automl_chars.errors import InvalidConfigError

SETTINGS_FILE = "automl_chars.json"
TRIALS_FILE = "trials.csv"
SUMMARY_FILE = "summary.json"
HISTORY_FILE = "history.csv"
WARM_START_FILE = "warm_start.json"
#: Where runs go when neither ``storage_path`` nor ``$AUTOML_CHARS_RESULTS`` is given.
DEFAULT_STORAGE = "~/automl_chars_results"
RESULTS_ENV = "AUTOML_CHARS_RESULTS"


def write_json(path: Path, data: dict) -> None:
    """Writes ``data`` as JSON atomically (a killed driver never leaves half a file)."""
    from automl_chars.spaces.values import plain_value

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(plain_value(data), indent=2, sort_keys=True))
    os.replace(tmp, path)


def results_root(storage_path: str | os.PathLike | None = None) -> Path:
    """``storage_path``, else ``$AUTOML_CHARS_RESULTS``, else ``~/automl_chars_results``.

    On a multi-node cluster, use a folder every node mounts (NFS, EFS): Ray rejects a path
    local to the head node. Cloud URIs (``s3://``) are not supported yet.
    """
    raw = str(storage_path or os.environ.get(RESULTS_ENV) or DEFAULT_STORAGE)
    if "://" in raw:
        raise InvalidConfigError(
            f"storage_path {raw!r}: cloud URIs are not supported yet; use a folder on a "
            f"filesystem every node mounts (e.g. NFS or EFS)."
        )
    return Path(raw).expanduser().resolve()


def experiment_dir(storage_path: str | os.PathLike | None, name: str) -> Path:
    """``<results root>/<name>`` (see :func:`results_root`)."""
    return results_root(storage_path) / name
