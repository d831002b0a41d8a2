"""Result folders: the names of the files every run writes beside Ray's own state, where runs go,
and the one atomic JSON write. Shared by the runner that writes them and by everything that
reads them back (reporting, the store, ``show``), none of which needs Ray.

- ``automl_chars.json`` (:data:`SETTINGS_FILE`): a run's settings, written at start, read on
  resume;
- ``trials.csv`` (:data:`TRIALS_FILE`): one row per trial;
- ``summary.json`` (:data:`SUMMARY_FILE`): what the run found, written when it finished;
- ``history.csv`` (:data:`HISTORY_FILE`): every result of every trial of ``run_trials``;
- ``warm_start.json`` (:data:`WARM_START_FILE`): a warm start's plan.

Every file is written to a temporary name and renamed into place (:func:`write_json`,
:func:`write_csv`), so a killed driver never leaves half a file; one damaged all the same (a full
disk, a killed copy, a hand edit) is read back by :func:`read_json` and :func:`read_csv` as a
:class:`~automl_chars.errors.DamagedFileError` that names it and what to do; Ray Tune's pickled
state is checked by :func:`check_pickle` before a resume hands it to Tune.

A results root may be a storage URI (``s3://bucket/path``): run folders are then local mirrors
(:mod:`automl_chars.uris`), each file written here is uploaded too, and :func:`run_folder`
downloads a run's files before they are read.
"""

from __future__ import annotations

import io
import json
import os
import pickletools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from automl_chars import uris
from automl_chars.errors import DamagedFileError, DamagedFileWarning

SETTINGS_FILE = "automl_chars.json"
TRIALS_FILE = "trials.csv"
SUMMARY_FILE = "summary.json"
HISTORY_FILE = "history.csv"
WARM_START_FILE = "warm_start.json"
#: The prefix of a trials table's configuration columns (``config/learning_rate``), as Ray
#: Tune names them in its own tables.
CONFIG_PREFIX = "config/"
#: Ray Tune's log of one trial's results, in the trial's folder.
PROGRESS_FILE = "progress.csv"
#: Ray Tune's file of a trial's configuration in its folder (``store import`` reads it for the
#: trials of a sweep that never wrote ``trials.csv``).
PARAMS_FILE = "params.json"
PROGRESS_REMEDY = ("Ray Tune writes it as the trial reports; that trial's curve is left out. "
                   "Move the file aside to silence this warning.")
#: Where runs go when neither ``storage_path`` nor ``$AUTOML_CHARS_RESULTS`` is given.
DEFAULT_STORAGE = "~/automl_chars_results"
RESULTS_ENV = "AUTOML_CHARS_RESULTS"
#: What to do about a damaged file shipped inside the package (the built-in priors, the shipped
#: learning-curve table): it is no user's data, so it is installed again, not repaired.
PACKAGE_DATA_REMEDY = ("It is package data of automl_chars: reinstall the package (pip install "
                       "--force-reinstall automl-chars; in a clone, git checkout -- that file).")

if TYPE_CHECKING:  # pandas is imported where a table is read or written (reading JSON needs none)
    import pandas as pd


def write_json(path: Path, data: dict) -> None:
    """Writes ``data`` as JSON atomically (a killed driver never leaves half a file)."""
    from automl_chars.spaces.values import plain_value

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(plain_value(data), indent=2, sort_keys=True))
    os.replace(tmp, path)
    uris.push(path)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Writes ``frame`` as CSV (no index) atomically, as :func:`write_json`."""
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
    uris.push(path)


def read_json(path: Path, remedy: str) -> dict:
    """The JSON object in ``path``; an empty, truncated or garbled file, or one that holds no
    JSON object, raises :class:`~automl_chars.errors.DamagedFileError` naming it and ``remedy``
    (what to do)."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedFileError(path, _damage(raw, err), remedy) from None
    if not isinstance(data, dict):
        raise DamagedFileError(path, f"it holds a JSON {type(data).__name__}, not an object",
                               remedy)
    return data


def read_csv(path: Path, remedy: str, columns: Iterable[str] = (),
             dtype: dict | None = None) -> pd.DataFrame:
    """The table in the CSV file ``path`` (as written by :func:`write_csv`); an empty, truncated
    (its last line cut short) or garbled file, or one that lacks ``columns``, raises
    :class:`~automl_chars.errors.DamagedFileError` naming it and ``remedy``."""
    import pandas as pd

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        if text.strip() and not text.endswith("\n"):
            raise DamagedFileError(path, "truncated: its last line is cut short", remedy)
        frame = pd.read_csv(io.StringIO(text), dtype=dtype)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DamagedFileError(path, _damage(raw, err), remedy) from None
    missing = [c for c in columns if c not in frame]
    if missing:
        raise DamagedFileError(path, f"garbled: it lacks the columns {missing}", remedy)
    return frame


def config_columns(config: Mapping) -> dict:
    """A configuration as a trials table's columns, ``config/<name>``, sorted by name."""
    return {f"{CONFIG_PREFIX}{k}": v for k, v in sorted(config.items())}


def config_of(row: Mapping) -> dict:
    """The configuration in a trials table's row: its ``config/<name>`` columns, without the
    missing values (None, NaN: a hyperparameter inactive in that trial)."""
    return {k[len(CONFIG_PREFIX):]: (v.item() if hasattr(v, "item") else v)
            for k, v in row.items()
            if k.startswith(CONFIG_PREFIX) and v is not None and v == v}


def read_progress(path: Path) -> pd.DataFrame:
    """A trial's ``progress.csv`` (Tune creates it with its first result, header and row at
    once); an empty, truncated or garbled one is left out with a
    :class:`~automl_chars.errors.DamagedFileWarning` naming it, so that one trial's damaged log
    costs its curve, not the whole report or import."""
    import warnings

    import pandas as pd

    try:
        return read_csv(path, PROGRESS_REMEDY)
    except DamagedFileError as err:
        warnings.warn(str(err), DamagedFileWarning, stacklevel=2)
        return pd.DataFrame()


def check_pickle(path: Path, remedy: str) -> None:
    """Raises :class:`~automl_chars.errors.DamagedFileError` naming ``path`` and ``remedy`` if
    the pickle in it is empty, truncated or garbled. Its opcodes are walked, nothing is
    unpickled: no code runs and nothing is imported, so the state of a run can be checked
    before Ray starts."""
    raw = path.read_bytes()
    try:
        for _ in pickletools.genops(io.BytesIO(raw)):
            pass
    except Exception as err:  # ValueError mostly; any opcode that cannot be read is damage
        problem = "it is empty" if not raw.strip() else f"truncated or garbled: {err}"
        raise DamagedFileError(path, problem, remedy) from None


def _damage(raw: bytes, err: Exception) -> str:
    """What is wrong with a file that did not parse, in a user's words."""
    if not raw.strip():
        return "it is empty"
    if isinstance(err, UnicodeDecodeError):
        return "garbled: it is not text"
    return f"truncated or garbled: {str(err).splitlines()[0]}"


def results_root(storage_path: str | os.PathLike | None = None) -> Path:
    """``storage_path``, else ``$AUTOML_CHARS_RESULTS``, else ``~/automl_chars_results``.

    On a multi-node cluster, use a URI (``s3://bucket/path``, ``gs://...``) or a folder every
    node mounts (NFS, EFS): Ray rejects a path local to the head node. A URI stands for its
    local mirror (:func:`automl_chars.uris.local_path`), checked reachable first.
    """
    return uris.local_path(storage_path or os.environ.get(RESULTS_ENV) or DEFAULT_STORAGE)


def experiment_dir(storage_path: str | os.PathLike | None, name: str) -> Path:
    """``<results root>/<name>`` (see :func:`results_root`), its files downloaded first when the
    root is a URI."""
    return uris.pull(results_root(storage_path) / name)


def run_folder(location: str | os.PathLike, option: str = "path", recursive: bool = False,
               ) -> Path:
    """The local folder of a result (a run, a portfolio, a supernet run) given as a path or a
    URI, its files downloaded first (with its subfolders' when ``recursive``, e.g. each trial's
    ``progress.csv``; never checkpoints, which are read through Ray). A URI that cannot be used
    raises :class:`~automl_chars.errors.InvalidConfigError` naming ``option``."""
    return uris.pull(uris.local_path(location, option), recursive=recursive)
