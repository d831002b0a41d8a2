"""Fault injection: each file the platform reads back is truncated, emptied, filled with garbage
(and, where it has one, given an unknown format version), then read back through the public
command or API. Never a raw traceback; a message that names the file and what to do; nothing
else lost (the other files byte for byte, the other store files still read).

Each file is a row of :data:`FILES`: its kind, how to make a healthy one, how to read it back.
A file the platform reads back that has no row yet is listed in :data:`PENDING` (issue 20's
remaining work), so that a new file name in ``layout.py`` without either fails
:func:`test_every_file_read_back_has_a_row_or_is_pending`.
"""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from automl_chars import layout
from automl_chars.cli.main import main
from automl_chars.store import ResultsStore
from automl_chars.store.store import rows

# -- damages ---------------------------------------------------------------------------------


def truncate(path: Path) -> None:
    """A killed copy or a full disk: the first half of the file."""
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    """Random bytes of the same length (a fixed seed: the same garbage every run)."""
    path.write_bytes(random.Random(20).randbytes(max(64, path.stat().st_size)))


DAMAGES: dict[str, Callable[[Path], None]] = {"truncated": truncate, "empty": empty,
                                              "garbage": garbage}


def newer_store_version(path: Path) -> None:
    """A store file written by a future version of the platform."""
    table = pq.read_table(path)
    meta = {**(table.schema.metadata or {}), b"automl_chars.store_version": b"99"}
    pq.write_table(table.replace_schema_metadata(meta), path)


# -- the public commands, run in-process -----------------------------------------------------


@dataclass
class Told:
    """What a command told the user: its exit status and every line it printed or warned."""

    code: int | None
    text: str


def cli(capsys, *argv: str) -> Told:
    """``automl-chars ARGV`` in-process: an exception escaping ``main`` (a raw traceback) fails
    the test here; warnings are collected as the user would see them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(list(argv))
    out = capsys.readouterr()
    return Told(code, out.out + out.err + "".join(f"\nwarning: {w.message}" for w in caught))


def api(call: Callable[[], object]) -> tuple[object, str]:
    """``call()`` with its warnings collected (their text as the user would see them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = call()
    return value, "".join(f"\nwarning: {w.message}" for w in caught)


# -- healthy files ---------------------------------------------------------------------------

KEPT, LOST = "kept-dataset", "lost-dataset"


def make_store(folder: Path) -> Path:
    """A store of two contributions; returns the file of the one to damage (``LOST``'s)."""
    store = ResultsStore(folder / "store")
    for name in (KEPT, LOST):
        path = store.write(f"sweep:{name}", rows(
            "sweep", name, "f00", "cnn",
            [{"config": {"learning_rate": 10.0 ** -(i % 3 + 1), "batch_size": 32},
              "budget": 1.0, "val_acc": 0.1 * i, "trial_id": f"{name}-{i}"} for i in range(6)],
            folder=f"/x/{name}", meta_features={"num_classes": 4.0}))
    return path


def make_sweep(folder: Path, damaged: str) -> Path:
    """A finished sweep's folder as ``show`` reads it (no Ray, no training); returns
    ``damaged``, one of its files."""
    sweep = folder / "sweep"
    sweep.mkdir()
    trials = "".join(f"a{i},TERMINATED,random,3,0.{i + 1},0.9,100,{20 + i}.0\n" for i in range(4))
    (sweep / layout.TRIALS_FILE).write_text(
        "trial_id,status,suggested_by,budget,val_acc,train_acc,num_params,timestamp\n" + trials)
    (sweep / layout.SUMMARY_FILE).write_text(json.dumps({
        "incumbent": {"learning_rate": 0.01}, "incumbent_trial_id": "a3", "test_accuracy": 0.85,
        "n_trials": 4, "settings": {"dataset": "glyphs-digits", "preset": "3_1_3_1",
                                    "started_at": 10.0}}))
    (sweep / layout.SETTINGS_FILE).write_text(json.dumps({"dataset": "glyphs-digits"}))
    return sweep / damaged


# -- reading back ----------------------------------------------------------------------------


def store_show(folder: Path, damaged: Path, capsys) -> str:
    told = cli(capsys, "store", "show", "--store", str(folder / "store"))
    assert told.code == 0, told.text
    assert KEPT in told.text and LOST not in told.text, told.text  # the other file still read
    assert "damaged file(s), skipped" in told.text
    return told.text


def store_check_and_repair(folder: Path, damaged: Path, capsys) -> str:
    store = folder / "store"
    found = cli(capsys, "store", "check", "--store", str(store))
    assert found.code == 1, found.text  # damage found, nothing repaired: a script notices
    assert damaged.exists()
    repaired = cli(capsys, "store", "check", "--repair", "--store", str(store))
    assert repaired.code == 0 and str(damaged) in repaired.text, repaired.text
    assert not damaged.exists() and (store / "damaged" / damaged.name).exists()  # not deleted
    again = cli(capsys, "store", "check", "--store", str(store))
    assert again.code == 0 and "0 damaged" in again.text, again.text
    frame, told = api(ResultsStore(store).frame)
    assert set(frame["dataset"]) == {KEPT} and not told  # the rest as before, no warning left
    return found.text


def store_frame(folder: Path, damaged: Path, capsys) -> str:
    frame, told = api(ResultsStore(folder / "store").frame)
    assert set(frame["dataset"]) == {KEPT} and len(frame) == 6
    return told


def warm_start_priors(folder: Path, damaged: Path, capsys) -> str:
    """What a default sweep's priors are drawn from (``gather_evidence``; planning from it is
    tested in tests/store/test_builtin.py): the built-in priors and the store's other files."""
    from automl_chars.search.warmstart import DEFAULT_PRIORS, gather_evidence

    evidence, told = api(lambda: gather_evidence(None, DEFAULT_PRIORS,
                                                 ResultsStore(folder / "store")))
    datasets = set(evidence.results["dataset"])
    assert KEPT in datasets and LOST not in datasets
    assert (evidence.results["origin"] == "built-in priors").any()
    return told


def show_sweep(folder: Path, damaged: Path, capsys) -> str:
    told = cli(capsys, "show", str(folder / "sweep"))
    assert told.code == 2, told.text  # the platform's error, one line
    assert told.text.startswith("error: ") and "JSONDecodeError" not in told.text, told.text
    return told.text


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCase:
    """One file the platform reads back.

    Attributes:
        kind: what the file is (and who reads it back, where several do).
        make: writes a healthy one (and what surrounds it) under a folder; returns the file.
        read: reads it back, damaged, through a public command or API and asserts the rest
            still serves; returns what the user was told.
        remedy: words of the remedy that message must hold.
        damages: extra damages of this kind of file (an unknown format version).
    """

    kind: str
    make: Callable[[Path], Path]
    read: Callable[[Path, Path, object], str]
    remedy: str
    damages: dict[str, Callable[[Path], None]] = field(default_factory=dict)


STORE_DAMAGES = {"newer version": newer_store_version}
FILES = [
    FileCase("results-store file, store show", make_store, store_show,
             "store check --repair", STORE_DAMAGES),
    FileCase("results-store file, store check", make_store, store_check_and_repair,
             "store check --repair", STORE_DAMAGES),
    FileCase("results-store file, ResultsStore.frame", make_store, store_frame,
             "store check --repair", STORE_DAMAGES),
    FileCase("results-store file, default priors", make_store, warm_start_priors,
             "store check --repair"),
    FileCase("summary.json, show", lambda f: make_sweep(f, layout.SUMMARY_FILE), show_sweep,
             "--resume"),
    FileCase("trials.csv, show", lambda f: make_sweep(f, layout.TRIALS_FILE), show_sweep,
             "--resume"),
]
#: Files the platform reads back that have no row yet, and where they are read (issue 20).
PENDING = {
    layout.SETTINGS_FILE: "runner/core.py check_same_run, runner/sweep.py, store/ingest.py",
    layout.HISTORY_FILE: "runner/trials.py TrialsResult.load (read_csv names it; no row yet)",
    layout.WARM_START_FILE: "written by runner/sweep.py; read by people and reports",
    "searcher-state-*.pkl, callback-states-*.pkl": "Ray Tune's restore (search/, ray_compat)",
    "experiment_state-*.json": "runner/core.py check_experiment_state",
    "manifest.json, weights.pt": "portfolio/entry.py (handled there, not yet a row here)",
    "learning-curve table": "tabular/ (TableError, not yet a row here)",
    "shipped package data": "store/builtin/*.parquet, the shipped table",
}

CASES = [pytest.param(case, name, damage, id=f"{case.kind}-{name}")
         for case in FILES for name, damage in {**DAMAGES, **case.damages}.items()]


@pytest.mark.parametrize("case, name, damage", CASES)
def test_a_damaged_file_is_named_with_its_remedy_and_nothing_else_is_lost(case, name, damage,
                                                                          tmp_path, capsys):
    target = case.make(tmp_path)
    others = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != target}
    damage(target)
    told = case.read(tmp_path, target, capsys)
    assert "Traceback" not in told, told
    assert str(target) in told, f"the message does not name {target}:\n{told}"
    assert case.remedy in told, told
    assert {p: p.read_bytes() for p in others} == others  # every other file as it was


def test_a_store_that_cannot_be_read_at_all_leaves_the_builtin_priors(tmp_path, capsys):
    """The store's folder is a file: the command says so; a sweep's priors warn and stay."""
    from automl_chars.search.warmstart import DEFAULT_PRIORS, gather_evidence

    (tmp_path / "store").write_text("not a folder")
    told = cli(capsys, "store", "show", "--store", str(tmp_path / "store"))
    assert told.code == 2 and told.text.startswith("error: Cannot read the results store")
    evidence, warned = api(lambda: gather_evidence(None, DEFAULT_PRIORS,
                                                   ResultsStore(tmp_path / "store")))
    assert (evidence.results["origin"] == "built-in priors").all() and len(evidence.results)
    assert str(tmp_path / "store") in warned and "built-in priors are used" in warned


def test_damage_past_the_footer_is_found_and_the_other_files_still_read(tmp_path):
    """Garbled data pages with an intact footer: the files are read one by one to find it."""
    damaged = make_store(tmp_path)
    raw = bytearray(damaged.read_bytes())
    raw[4:60] = b"\xff" * 56  # the first column's pages
    damaged.write_bytes(bytes(raw))
    store = ResultsStore(tmp_path / "store")
    frame, told = api(store.frame)
    assert set(frame["dataset"]) == {KEPT} and str(damaged) in told
    assert [d.path for d in store.check()] == [damaged]


def test_writes_are_atomic_a_write_cut_short_leaves_the_old_file(tmp_path, monkeypatch):
    """summary.json and trials.csv go to a temporary name first: a write cut short (a full
    disk) leaves the previous file whole."""
    import pandas as pd

    csv, summary = tmp_path / layout.TRIALS_FILE, tmp_path / layout.SUMMARY_FILE
    layout.write_csv(csv, pd.DataFrame({"trial_id": ["a"], "val_acc": [0.5]}))
    layout.write_json(summary, {"n_trials": 1})
    before = csv.read_bytes(), summary.read_bytes()

    def full_disk(where):  # half a file, then the disk is full
        Path(where).open("w").write('{"n_tri')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, path, **kw: full_disk(path))
    monkeypatch.setattr(Path, "write_text", lambda self, text, **kw: full_disk(self))
    for write in (lambda: layout.write_csv(csv, pd.DataFrame({"x": [1]})),
                  lambda: layout.write_json(summary, {"n_trials": 2})):
        with pytest.raises(OSError):
            write()
    assert (csv.read_bytes(), summary.read_bytes()) == before


def test_every_file_read_back_has_a_row_or_is_pending():
    """A new file in the layout needs a row in FILES (or, until it has one, a PENDING line)."""
    names = {v for k, v in vars(layout).items() if k.endswith("_FILE") and isinstance(v, str)}
    covered = {layout.SUMMARY_FILE, layout.TRIALS_FILE}
    assert {c.kind.split(",")[0] for c in FILES} >= {"results-store file", *covered}
    assert names <= covered | set(PENDING), names - covered - set(PENDING)
