"""Fault injection: each file the platform reads back is truncated, emptied, filled with garbage
(and, where it has one, given an unknown format version, or removed where a missing file is
damage), then read back through the public command or API. Never a raw traceback; a message
that names the file and what to do (an error, or a warning where the rest still serves); nothing
else lost (the other files byte for byte, the other store files and table parts still read).

Each file is a row of :data:`FILES`: its kind, how to make a healthy one, how to read it back.
The files are real: copies of the session's runs made through the CLI (conftest's
``finished_sweep`` and ``built_portfolio``), of the shipped package data, or written by the
platform's own writers. :func:`test_every_file_read_back_has_a_row` enumerates the files the
platform names (the ``*_FILE`` constants of every module of the package), so a new one read back
without a row fails it.
"""

from __future__ import annotations

import json
import random
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from support import BUCKET

from automl_chars import layout
from automl_chars.cli.main import main
from automl_chars.errors import AutomlCharsError
from automl_chars.runner.result import SweepResult
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


def missing(path: Path) -> None:
    """Lost (deleted by hand, not copied)."""
    path.unlink()


def newer_store_version(path: Path) -> None:
    """A store file written by a future version of the platform."""
    table = pq.read_table(path)
    meta = {**(table.schema.metadata or {}), b"automl_chars.store_version": b"99"}
    pq.write_table(table.replace_schema_metadata(meta), path)


def newer_table_format(path: Path) -> None:
    """A learning-curve table written by a future version of the platform."""
    from automl_chars.tabular.table import MANIFEST_KEY

    table = pq.read_table(path)
    manifest = {**json.loads(table.schema.metadata[MANIFEST_KEY]), "format": 99}
    meta = {**table.schema.metadata, MANIFEST_KEY: json.dumps(manifest).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)


def newer_manifest_version(path: Path) -> None:
    """A portfolio manifest written by a future version of the platform."""
    path.write_text(json.dumps({**json.loads(path.read_text()), "version": 99}))


# -- the public commands, run in-process -----------------------------------------------------


@dataclass
class Told:
    """What a command told the user: its exit status and every line it printed or warned."""

    code: int | None
    text: str


def cli(capsys, *argv: str) -> Told:
    """``automl-chars ARGV`` in-process: an exception escaping ``main`` (a raw traceback) fails
    the test here; warnings are collected as the user would see them."""
    capsys.readouterr()  # what came before (a fixture's run) is not this command's
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


def api_error(call: Callable[[], object]) -> str:
    """The message of the platform's error that ``call()`` must raise (any other exception, a
    raw traceback to the user, fails the test here)."""
    with pytest.raises(AutomlCharsError) as raised:
        call()
    return str(raised.value)


# -- healthy files ---------------------------------------------------------------------------

KEPT, LOST = "kept-dataset", "lost-dataset"


@dataclass
class Made:
    """A healthy file to damage (``target``), and the run it belongs to, copied (if any)."""

    target: Path
    run: object = None  # support.FinishedRun


def make_store(folder: Path, request) -> Made:
    """A store of two contributions, written by the store; the one to damage is ``LOST``'s."""
    store = ResultsStore(folder / "store")
    for name in (KEPT, LOST):
        path = store.write(f"sweep:{name}", rows(
            "sweep", name, "f00", "cnn",
            [{"config": {"learning_rate": 10.0 ** -(i % 3 + 1), "batch_size": 32},
              "budget": 1.0, "val_acc": 0.1 * i, "trial_id": f"{name}-{i}"} for i in range(6)],
            folder=f"/x/{name}", meta_features={"num_classes": 4.0}))
    return Made(path)


def sweep_file(pattern: str, finished: bool = True) -> Callable[[Path, object], Made]:
    """A copy of the session's finished sweep (``finished``), or of it as a sweep interrupted
    after its last trial (no ``summary.json``, ``trials.csv``: what resume reads Tune's state
    for); the file to damage is the newest matching ``pattern``."""

    def make(folder: Path, request) -> Made:
        run = request.getfixturevalue("finished_sweep").copy_to(folder / "results")
        if not finished:
            (run.path / layout.SUMMARY_FILE).unlink()
            (run.path / layout.TRIALS_FILE).unlink()
        return Made(sorted(run.path.glob(pattern))[-1], run)

    return make


def portfolio_file(relative: str, finished: bool = True) -> Callable[[Path, object], Made]:
    """A copy of the session's portfolio (and its training run, ``training/``, as if
    interrupted after its last trial unless ``finished``); the file to damage is the newest
    matching ``relative``."""

    def make(folder: Path, request) -> Made:
        run = request.getfixturevalue("built_portfolio").copy_to(folder / "results")
        if not finished:
            (run.path / "training" / layout.SUMMARY_FILE).unlink()
        return Made(sorted(run.path.glob(relative))[-1], run)

    return make


def make_table(folder: Path, request) -> Made:
    """A learning-curve table of one's own: a copy of a shipped part (a real build's file)."""
    from automl_chars.tabular.shipped import part_path

    return Made(Path(shutil.copy(part_path("glyphs-digits"), folder / "curves.parquet")))


SHIPPED_KEPT, SHIPPED_LOST = "glyphs-digits", "glyphs-greek"


def _package_data(request, module: str, name: str, copy: Path) -> None:
    """Points the package data constant ``module.name`` at ``copy`` for the test, with fresh
    caches of the built-in priors and the shipped table's parts (the session's own caches are
    left as they were: rebuilding them costs other tests seconds)."""
    from functools import lru_cache

    from automl_chars.search import warmstart
    from automl_chars.tabular import shipped

    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(f"{module}.{name}", copy)
    monkeypatch.setattr(warmstart, "_builtin_priors",
                        lru_cache(maxsize=1)(warmstart._builtin_priors.__wrapped__))
    monkeypatch.setattr(shipped, "_joined", lru_cache(maxsize=8)(shipped._joined.__wrapped__))


def make_shipped_part(folder: Path, request) -> Made:
    """The shipped learning-curve table, two of its parts copied; ``SHIPPED_LOST``'s to damage."""
    from automl_chars.tabular.shipped import part_path

    copy = folder / "glyph-curves"
    copy.mkdir()
    for domain in (SHIPPED_KEPT, SHIPPED_LOST):
        shutil.copy(part_path(domain), copy)
    _package_data(request, "automl_chars.tabular.shipped", "SHIPPED_DIR", copy)
    return Made(part_path(SHIPPED_LOST, copy))


def make_learned_ranker(folder: Path, request) -> Made:
    """A copy of the shipped learned ranker (package data), the package pointed at it."""
    from automl_chars.similarity import learned

    copy = Path(shutil.copy(learned.SHIPPED_PATH, folder / "learned_ranker.json"))
    request.getfixturevalue("monkeypatch").setattr(learned, "SHIPPED_PATH", copy)
    return Made(copy)


def learned_ranker(r: Reading) -> str:
    """The learned measure's ranker: an error naming the file (reinstall), never a traceback."""
    from automl_chars.similarity.learned import shipped_ranker

    return api_error(shipped_ranker)


def supernet_file(name: str) -> Callable[[Path, object], Made]:
    """A sampler's folder of a supernet run, written by ``SupernetResult.save``."""

    def make(folder: Path, request) -> Made:
        import pandas as pd

        from automl_chars.supernet.result import SupernetResult

        table = pd.DataFrame({"subnet": ["(1, 1)", "(1, 2)", "(2, 1)", "(2, 2)"],
                              "supernet_acc": [0.5, 0.6, 0.55, 0.7],
                              "standalone_acc": [0.52, 0.61, 0.5, 0.72],
                              "supernet_rank": [4, 2, 3, 1], "standalone_rank": [3, 2, 4, 1],
                              "finetuned_acc": [float("nan")] * 3 + [0.73],
                              "sampled": [3, 4, 2, 5]})
        history = pd.DataFrame({"round": [i // 4 for i in range(16)],
                                "subnet": list(table["subnet"]) * 4,
                                "running_acc": [0.1 * (i % 7) for i in range(16)]})
        SupernetResult(table, history, {"sampler": "uniform", "kendall_tau": 0.67},
                       folder / "supernet" / "uniform").save()
        return Made(folder / "supernet" / "uniform" / name)

    return make


def make_mirror_record(folder: Path, request) -> Made:
    """A results store at a storage URI (the session's local S3 server), written through its
    local mirror; the file to damage is the mirror's record of its URI (``uris._BASE_FILE``),
    the URI (with its credentials and options) goes with it as ``run``."""
    from support import s3_uri

    from automl_chars import uris

    request.getfixturevalue("bucket")
    cache = request.getfixturevalue("cache")("mirror-cache")
    uri = s3_uri(request.getfixturevalue("s3_server"), "team/store")
    store = ResultsStore(uri)
    for name in (KEPT, LOST):
        store.write(f"sweep:{name}", rows("sweep", name, "f00", "cnn", [
            {"config": {"learning_rate": 0.01}, "budget": 1.0, "val_acc": 0.5}], f"/x/{name}"))
    return Made(next(cache.glob(f"*/{uris._BASE_FILE}")), uri)


def arch_weights(folder: Path, request) -> Made:
    """Two DARTS results saved under a results root by :meth:`ArchWeights.save`
    (``<root>/<experiment>/darts/arch_weights.json``); the newer one's to damage."""
    import os

    from automl_chars.supernet.darts import ArchParameters, ArchWeights
    from automl_chars.supernet.space import SupernetSpace

    space = SupernetSpace(channels=(4,), depths=(1, 2), ops=("conv3", "skip"))
    paths = [ArchWeights.of(ArchParameters(space), dataset=name).save(
        folder / "results" / name / "darts") for name in (KEPT, LOST)]
    os.utime(paths[0], (1, 1))  # the kept one older: the damaged one would come first
    return Made(paths[1])


VALLEYS = dict(minima=2, epochs=1, batch_size=16, points=2, path_samples=0)


def valley_study(name: str) -> Callable[[Path, object], Made]:
    """A finished valley study (one seed, two minima of one epoch on a toy dataset), run by
    :func:`run_valley_study`; the file to damage is ``name`` in its folder."""

    def make(folder: Path, request) -> Made:
        from automl_chars.workflows.valleys import ValleySettings, run_valley_study

        toy = request.getfixturevalue("make_dataset")(num_classes=2, per_class=8,
                                                      test_per_class=4)
        run_valley_study(ValleySettings(**VALLEYS), [0], folder / "valleys", dataset=toy,
                         log=lambda _: None)
        return Made(folder / "valleys" / name, toy)

    return make


CNN_CONFIG = {"optimizer": "adam", "learning_rate": 0.003, "batch_size": 16}


def _cnn_trainable(toy):
    from ray import tune

    from automl_chars.trainables import CNNTrainable

    return tune.with_parameters(CNNTrainable, dataset=toy, seed=0)(config=CNN_CONFIG)


def trial_checkpoint(folder: Path, request) -> Made:
    """A CNN trial's checkpoint after one epoch, saved by the Trainable as Tune saves it."""
    request.getfixturevalue("ray_session")
    toy = request.getfixturevalue("make_dataset")(per_class=8, test_per_class=4)
    trainable = _cnn_trainable(toy)
    trainable.train()
    checkpoint = Path(trainable.save(str(folder / "checkpoint_000001")).checkpoint.path)
    trainable.stop()
    return Made(checkpoint / "trial_state.pt", toy)


def _replay_trainable(table):
    from ray import tune

    from automl_chars.trainables import ReplayTrainable

    return tune.with_parameters(ReplayTrainable, table=table, dataset=SHIPPED_KEPT)(
        config={"config_id": 0})


def replay_checkpoint(folder: Path, request) -> Made:
    """A replayed trial's checkpoint after one epoch (a shipped table's curve), saved by the
    Trainable as Tune saves it."""
    from automl_chars.tabular import LearningCurveTable
    from automl_chars.tabular.shipped import part_path

    request.getfixturevalue("ray_session")
    table = LearningCurveTable.load(part_path(SHIPPED_KEPT))
    trainable = _replay_trainable(table)
    trainable.train()
    checkpoint = Path(trainable.save(str(folder / "checkpoint_000001")).checkpoint.path)
    trainable.stop()
    return Made(checkpoint / "replay.json", table)


# -- reading back ----------------------------------------------------------------------------


@dataclass
class Reading:
    """What a read-back is given: the test's folder, the damaged file, the run it belongs to,
    ``capsys`` (for commands run in-process)."""

    folder: Path
    target: Path
    run: object
    capsys: object


def store_show(r: Reading) -> str:
    told = cli(r.capsys, "store", "show", "--store", str(r.folder / "store"))
    assert told.code == 0, told.text
    assert KEPT in told.text and LOST not in told.text, told.text  # the other file still read
    assert "damaged file(s), skipped" in told.text
    return told.text


def store_check_and_repair(r: Reading) -> str:
    store, damaged = r.folder / "store", r.target
    found = cli(r.capsys, "store", "check", "--store", str(store))
    assert found.code == 1, found.text  # damage found, nothing repaired: a script notices
    assert damaged.exists()
    repaired = cli(r.capsys, "store", "check", "--repair", "--store", str(store))
    assert repaired.code == 0 and str(damaged) in repaired.text, repaired.text
    assert not damaged.exists() and (store / "damaged" / damaged.name).exists()  # not deleted
    again = cli(r.capsys, "store", "check", "--store", str(store))
    assert again.code == 0 and "0 damaged" in again.text, again.text
    frame, told = api(ResultsStore(store).frame)
    assert set(frame["dataset"]) == {KEPT} and not told  # the rest as before, no warning left
    damaged.write_bytes((store / "damaged" / damaged.name).read_bytes())  # as it was, for the
    (store / "damaged" / damaged.name).unlink()  # test's check that nothing else changed
    return found.text


def store_frame(r: Reading) -> str:
    frame, told = api(ResultsStore(r.folder / "store").frame)
    assert set(frame["dataset"]) == {KEPT} and len(frame) == 6
    return told


def warm_start_priors(r: Reading) -> str:
    """What a default sweep's priors are drawn from (``gather_evidence``; planning from it is
    tested in tests/store/test_builtin.py): the built-in priors and the store's other files."""
    from automl_chars.search.warmstart import DEFAULT_PRIORS, gather_evidence

    evidence, told = api(lambda: gather_evidence(None, DEFAULT_PRIORS,
                                                 ResultsStore(r.folder / "store")))
    datasets = set(evidence.results["dataset"])
    assert KEPT in datasets and LOST not in datasets
    assert (evidence.results["origin"] == "built-in priors").any()
    return told


def show(r: Reading) -> str:
    told = cli(r.capsys, "show", str(r.run.path))
    assert told.code == 2, told.text  # the platform's error, one line
    assert told.text.startswith("error: ") and "JSONDecodeError" not in told.text, told.text
    return told.text


def resume(r: Reading) -> str:
    """The command that made the run again with ``--resume``: an error before Ray starts."""
    told = cli(r.capsys, *r.run.argv, "--resume")
    assert told.code == 2 and told.text.startswith("error: "), told.text
    return told.text


def not_read_back(r: Reading) -> str:
    """A record for people: the commands that read the folder do not read it (they succeed
    with it damaged), so it has nothing to name."""
    for argv in (("show", str(r.run.path)), (*r.run.argv, "--resume")):
        told = cli(r.capsys, *argv)
        assert told.code == 0 and "Incumbent:" in told.text, told.text
    return ""


def store_import(r: Reading) -> str:
    """``store import`` skips the folder with the damaged file, with a warning naming it."""
    told = cli(r.capsys, "store", "import", str(r.run.storage), "--store",
               str(r.folder / "imported"))
    assert told.code == 0 and "Imported 0 folders" in told.text, told.text
    return told.text


def _trial_id(progress: Path) -> str:
    return progress.parent.name.rsplit("_", 1)[-1]


def report_curves(r: Reading) -> str:
    """``automl-chars report`` writes the page without the damaged trial's curve, with a
    warning naming the file; every other trial's curve is read."""
    from automl_chars.reporting.plots import learning_curves

    page = r.folder / "page.html"
    told = cli(r.capsys, "report", str(r.run.path), "--out", str(page))
    assert told.code == 0 and page.exists(), told.text
    page.unlink()  # not one of the run's files
    curves, _ = api(lambda: learning_curves(r.run.path))
    others = {_trial_id(p) for p in r.run.path.glob(f"*/{layout.PROGRESS_FILE}")} - {
        _trial_id(r.target)}
    assert set(curves["trial_id"]) == others and others, curves
    return told.text


def store_import_curves(r: Reading) -> str:
    """``store import`` imports the sweep; the damaged trial keeps its final row (trials.csv),
    the other trials their rows at every budget, and a warning names the file."""
    store = r.folder / "imported"
    told = cli(r.capsys, "store", "import", str(r.run.storage), "--store", str(store))
    assert told.code == 0 and "Imported 1 folders" in told.text, told.text
    frame = ResultsStore(store).frame()
    assert _trial_id(r.target) in set(frame["trial_id"]), frame
    assert frame.groupby("trial_id")["budget"].nunique().max() > 1, frame  # curves of others
    shutil.rmtree(store)  # not one of the run's files
    return told.text


def portfolio_show(r: Reading) -> str:
    told = cli(r.capsys, "portfolio", "show", str(r.run.path))
    assert told.code == 2 and told.text.startswith("error: "), told.text
    return told.text


def portfolio_model(r: Reading) -> str:
    from automl_chars.portfolio import Portfolio

    return api_error(lambda: Portfolio.load(r.run.path).model("glyphs-digits"))


def portfolio_sample(r: Reading) -> str:
    from automl_chars.portfolio import Portfolio

    return api_error(lambda: Portfolio.load(r.run.path).sample("glyphs-digits"))


def trials_result(r: Reading) -> str:
    from automl_chars.runner.trials import TrialsResult

    return api_error(lambda: TrialsResult.load(r.run.path / "training"))


def table_show(r: Reading) -> str:
    told = cli(r.capsys, "table", "show", str(r.target))
    assert told.code == 2 and told.text.startswith("error: "), told.text
    return told.text


def shipped_priors(r: Reading) -> str:
    """The built-in priors go on without the damaged part: the other domain's curves."""
    from automl_chars.search.warmstart import builtin_priors

    priors, told = api(builtin_priors)
    from_table = set(priors.loc[priors["kind"] == "table", "dataset"])
    assert from_table == {SHIPPED_KEPT} == set(priors["dataset"]), from_table
    return told


def supernet_result(r: Reading) -> str:
    from automl_chars.supernet.result import SupernetResult

    return api_error(lambda: SupernetResult.load(r.target.parent))


def mirror_store_show(r: Reading) -> str:
    """``store show --store URI``: the store is read as before, and the record of the URI
    written again from the URI given (with a warning naming it)."""
    from automl_chars import uris

    told = cli(r.capsys, "store", "show", "--store", r.run)
    assert told.code == 0 and KEPT in told.text and LOST in told.text, told.text
    assert uris.remote_for(r.target.parent / BUCKET) is not None  # a mirror again
    return told.text


def mirror_read_as_folder(r: Reading) -> str:
    """The mirror given as a local folder: an error naming the record, not a folder read as a
    local one (whose writes would never reach the URI)."""
    told = cli(r.capsys, "store", "show", "--store", str(r.target.parent / BUCKET / "team/store"))
    assert told.code == 2 and told.text.startswith("error: "), told.text
    return told.text


def arch_weights_load(r: Reading) -> str:
    from automl_chars.supernet.darts import ArchWeights

    return api_error(lambda: ArchWeights.load(r.target.parent))


def arch_weights_saved(r: Reading) -> str:
    """What a warm-started DARTS search starts from: the other result, a warning naming the
    damaged one."""
    from automl_chars.errors import DamagedFileWarning
    from automl_chars.supernet.darts import saved_arch_weights

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = saved_arch_weights(r.folder / "results")
    assert [w.dataset for w in saved] == [KEPT]
    assert all(issubclass(w.category, DamagedFileWarning) for w in caught), caught
    return "".join(f"\nwarning: {w.message}" for w in caught)


def valley_cache(name: str) -> Callable[[Path, object], Made]:
    """A valley study stopped after training its minima (no table written yet), run by
    :func:`run_valley_study`; the file to damage is ``name`` in its seed's folder."""

    def make(folder: Path, request) -> Made:
        from automl_chars.workflows.valleys import SUMMARY_FILE, TABLE_FILE, TABLES

        made = valley_study(name)(folder, request)
        for where in (folder / "valleys", folder / "valleys" / "seed-0"):
            for table in TABLES:
                (where / TABLE_FILE.format(name=table)).unlink()
        (folder / "valleys" / SUMMARY_FILE).unlink()
        return Made(folder / "valleys" / "seed-0" / name, made.run)

    return make


def valley_retrained(r: Reading) -> str:
    """The study run again trains the damaged minimum again, with a warning naming it."""
    from automl_chars.workflows.valleys import ValleySettings, run_valley_study

    result, told = api(lambda: run_valley_study(ValleySettings(**VALLEYS), [0],
                                                _study_root(r.target), dataset=r.run,
                                                log=lambda _: None))
    assert len(result.minima) and "trained again" in told, told
    return told


def valley_load(r: Reading) -> str:
    from automl_chars.workflows.valleys import load_valley_study

    return api_error(lambda: load_valley_study(r.target.parent))


def valley_rerun(r: Reading) -> str:
    """The study run again (to add a seed, or after an interruption): refused before any
    training, naming the settings file."""
    from automl_chars.workflows.valleys import ValleySettings, run_valley_study

    return api_error(lambda: run_valley_study(ValleySettings(**VALLEYS), [0, 1],
                                              _study_root(r.target), dataset=r.run,
                                              log=lambda _: None))


def _study_root(path: Path) -> Path:
    """The valley study's folder holding ``path`` (its own or a seed's file)."""
    from automl_chars.workflows.valleys import SETTINGS_FILE

    return next(p for p in path.parents if (p / SETTINGS_FILE).exists())


def trial_restore(r: Reading) -> str:
    """Tune restoring the trial from its checkpoint (``Trainable.restore``): an error naming
    the file, not torch's unpickling error."""
    from automl_chars.checkpoints import load_trial_state

    trainable = _cnn_trainable(r.run)
    try:
        told = api_error(lambda: trainable.restore(str(r.target.parent)))
    finally:
        trainable.stop()
    # under Tune, the Trainable gives its trial's name
    named = api_error(lambda: load_trial_state(r.target.parent, trial="CNNTrainable_0a1b2_00003"))
    assert "Trial CNNTrainable_0a1b2_00003 cannot resume from it" in named, named
    return told


def replay_restore(r: Reading) -> str:
    """Tune restoring a replayed trial from its checkpoint."""
    trainable = _replay_trainable(r.run)
    try:
        return api_error(lambda: trainable.restore(str(r.target.parent)))
    finally:
        trainable.stop()


def replay_evaluate(r: Reading) -> str:
    from automl_chars.trainables import ReplayTrainable

    return api_error(lambda: ReplayTrainable.evaluate_checkpoint(r.target.parent, None, "test"))


def trial_evaluate(r: Reading) -> str:
    from automl_chars.trainables import evaluate_checkpoint

    return api_error(lambda: evaluate_checkpoint(r.target.parent, r.run))


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCase:
    """One file the platform reads back.

    Attributes:
        kind: the file (its name or pattern), then who reads it back.
        make: makes a healthy one (and what surrounds it) under a folder.
        read: reads it back, damaged, through a public command or API and asserts the rest
            still serves; returns what the user was told.
        remedy: words of the remedy that message must hold ("" for a file not read back).
        damages: extra damages of this kind of file (an unknown format version, lost).
        slow: it needs the session's Ray runs (or Ray).
        module: the module whose ``*_FILE`` constant names the file (two modules may name
            different files alike: a supernet run's ``summary.json`` is not a sweep's); ""
            for a kind of file that no constant names (a store file, a table).
    """

    kind: str
    make: Callable[[Path, object], Made]
    read: Callable[[Reading], str]
    remedy: str
    damages: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    slow: bool = False
    module: str = ""


STORE_DAMAGES = {"newer version": newer_store_version}
#: The files of a run's folder that Ray Tune reads on resume (runner/core.py TUNE_STATE).
SWEEP_TUNE_STATE = ("experiment_state-*.json", "searcher-state-*.pkl", "callback-states-*.pkl",
                    "search_gen_state-*.json", "tuner.pkl")
#: The modules that name the files of the rows (their ``*_FILE`` constants).
LAYOUT, TUNE, ENTRY, SUPERNET = ("automl_chars.layout", "automl_chars.runner.core",
                                 "automl_chars.portfolio.entry", "automl_chars.supernet.result")
URIS, DARTS, VALLEYS_MODULE, CHECKPOINTS = ("automl_chars.uris", "automl_chars.supernet.darts",
                                            "automl_chars.workflows.valleys",
                                            "automl_chars.checkpoints")
FILES = [
    FileCase("results-store file, store show", make_store, store_show,
             "store check --repair", STORE_DAMAGES),
    FileCase("results-store file, store check", make_store, store_check_and_repair,
             "store check --repair", STORE_DAMAGES),
    FileCase("results-store file, ResultsStore.frame", make_store, store_frame,
             "store check --repair", STORE_DAMAGES),
    FileCase("results-store file, default priors", make_store, warm_start_priors,
             "store check --repair"),
    FileCase("summary.json, show", sweep_file(layout.SUMMARY_FILE), show, "--resume",
             slow=True, module=LAYOUT),
    FileCase("summary.json, bohb --resume", sweep_file(layout.SUMMARY_FILE), resume, "--resume",
             slow=True, module=LAYOUT),
    FileCase("trials.csv, show", sweep_file(layout.TRIALS_FILE), show, "--resume",
             {"missing": missing}, slow=True, module=LAYOUT),
    FileCase("automl_chars.json, bohb --resume", sweep_file(layout.SETTINGS_FILE), resume,
             "--resume", slow=True, module=LAYOUT),
    FileCase("automl_chars.json, store import", sweep_file(layout.SETTINGS_FILE), store_import,
             "store import", slow=True, module=LAYOUT),
    *[FileCase(f"{pattern}, bohb --resume", sweep_file(pattern, finished=False), resume,
               "--name", slow=True, module=TUNE) for pattern in SWEEP_TUNE_STATE],
    FileCase("progress.csv, report", sweep_file(f"*/{layout.PROGRESS_FILE}"), report_curves,
             "Move the file aside", slow=True, module=LAYOUT),
    FileCase("params.json, store import (an unfinished sweep)",
             sweep_file(f"*/{layout.PARAMS_FILE}", finished=False), store_import,
             "store import", slow=True, module=LAYOUT),
    FileCase("progress.csv, store import", sweep_file(f"*/{layout.PROGRESS_FILE}"),
             store_import_curves, "Move the file aside", slow=True, module=LAYOUT),
    FileCase("warm_start.json, not read back (show, bohb --resume)",
             sweep_file(layout.WARM_START_FILE), not_read_back, "", slow=True, module=LAYOUT),
    FileCase("manifest.json, portfolio show", portfolio_file("manifest.json"), portfolio_show,
             "--resume", {"newer version": newer_manifest_version}, slow=True, module=ENTRY),
    FileCase("weights.pt, Portfolio.model", portfolio_file("glyphs-digits/weights.pt"),
             portfolio_model, "--resume", {"missing": missing}, slow=True, module=ENTRY),
    FileCase("sample.npz, Portfolio.sample", portfolio_file("glyphs-digits/sample.npz"),
             portfolio_sample, "--resume", slow=True, module=ENTRY),
    FileCase("trials.csv, portfolio build --resume (run_trials)",
             portfolio_file("training/trials.csv"), resume, "--resume", {"missing": missing},
             slow=True, module=LAYOUT),
    FileCase("history.csv, portfolio build --resume (run_trials)",
             portfolio_file("training/history.csv"), resume, "--resume", {"missing": missing},
             slow=True, module=LAYOUT),
    FileCase("summary.json, TrialsResult.load", portfolio_file("training/summary.json"),
             trials_result, "resume=True", slow=True, module=LAYOUT),
    FileCase("basic-variant-state-*.json, portfolio build --resume (run_trials)",
             portfolio_file("training/basic-variant-state-*.json", finished=False), resume,
             "--name", slow=True, module=TUNE),
    FileCase("learning-curve table, table show", make_table, table_show, "--resume",
             {"newer version": newer_table_format}),
    FileCase("shipped learning-curve table part, built-in priors", make_shipped_part,
             shipped_priors, "reinstall", {"newer version": newer_table_format}),
    FileCase("learned ranker, the learned measure", make_learned_ranker, learned_ranker,
             "reinstall"),
    *[FileCase(f"{name} (supernet), SupernetResult.load", supernet_file(name), supernet_result,
               "resume=True", module=SUPERNET)
      for name in ("table.csv", "history.csv", "summary.json")],
    FileCase(".uri (a storage URI's mirror), store show --store URI", make_mirror_record,
             mirror_store_show, "written again", module=URIS),
    FileCase(".uri (a storage URI's mirror), store show --store MIRROR", make_mirror_record,
             mirror_read_as_folder, "give any command that storage URI", module=URIS),
    FileCase("arch_weights.json, ArchWeights.load", arch_weights, arch_weights_load,
             "Run the DARTS search again", module=DARTS),
    FileCase("arch_weights.json, a warm-started DARTS search (saved_arch_weights)",
             arch_weights, arch_weights_saved, "Run the DARTS search again", module=DARTS),
    FileCase("valleys.json, load_valley_study", valley_study("valleys.json"), valley_load,
             "rerun the study", module=VALLEYS_MODULE),
    FileCase("valleys.json, run_valley_study (a rerun)", valley_study("valleys.json"),
             valley_rerun, "rerun the study", module=VALLEYS_MODULE),
    FileCase("{name}.csv (a valley study's tables), load_valley_study",
             valley_study("minima.csv"), valley_load, "rerun the study", module=VALLEYS_MODULE),
    FileCase("{name}.csv (a seed's tables), run_valley_study (a rerun)",
             valley_study("seed-0/pairs.csv"), valley_rerun, "rerun the study",
             module=VALLEYS_MODULE),
    FileCase("{arm}-{k}.pt (a valley study's saved minimum), run_valley_study (a rerun)",
             valley_cache("merged-1.pt"), valley_retrained, "trained again",
             module=VALLEYS_MODULE),
    FileCase("summary.csv, load_valley_study", valley_study("summary.csv"), valley_load,
             "rerun the study", module=VALLEYS_MODULE),
    FileCase("trial_state.pt, Trainable.restore (Tune restoring a trial)", trial_checkpoint,
             trial_restore, "restart_errored=True", slow=True, module=CHECKPOINTS),
    FileCase("trial_state.pt, evaluate_checkpoint", trial_checkpoint, trial_evaluate,
             "restart_errored=True", slow=True, module=CHECKPOINTS),
    FileCase("replay.json, Trainable.restore (Tune restoring a replayed trial)",
             replay_checkpoint, replay_restore, "run the replayed sweep again", slow=True,
             module="automl_chars.trainables.replay"),
    FileCase("replay.json, ReplayTrainable.evaluate_checkpoint", replay_checkpoint,
             replay_evaluate, "run the replayed sweep again", slow=True,
             module="automl_chars.trainables.replay"),
]

CASES = [pytest.param(case, name, damage, id=f"{case.kind}-{name}",
                      marks=[pytest.mark.slow] if case.slow else [])
         for case in FILES for name, damage in {**DAMAGES, **case.damages}.items()]


@pytest.mark.parametrize("case, name, damage", CASES)
def test_a_damaged_file_is_named_with_its_remedy_and_nothing_else_is_lost(case, name, damage,
                                                                          tmp_path, capsys,
                                                                          request):
    made = case.make(tmp_path, request)
    target = made.target
    others = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != target}
    damage(target)
    told = case.read(Reading(tmp_path, target, made.run, capsys))
    assert "Traceback" not in told, told
    if case.remedy:
        assert str(target) in told, f"the message does not name {target}:\n{told}"
        assert case.remedy in told, told
    assert {p: p.read_bytes() for p in others} == others  # every other file as it was


@pytest.mark.slow
def test_following_the_remedies_a_sweep_resumes_and_keeps_every_trial(finished_sweep, tmp_path,
                                                                      capsys):
    """A damaged ``summary.json`` and ``automl_chars.json``, both moved aside as their messages
    say: the same command with ``--resume`` restores the (moved) sweep from Ray Tune's state,
    keeps every finished trial and writes both files again. The incumbent's checkpoints are
    damaged too: a warning names the file and the next best trial is evaluated instead."""
    run = finished_sweep.copy_to(tmp_path / "results")
    trials = set(pd.read_csv(run.path / layout.TRIALS_FILE, dtype={"trial_id": str})["trial_id"])
    first = SweepResult.load(run.path).incumbent_trial_id
    damaged = sorted(run.path.glob(f"*_{first}/checkpoint_*/trial_state.pt"))
    assert damaged
    for path in damaged:
        truncate(path)
    settings = json.loads((run.path / layout.SETTINGS_FILE).read_text())
    for name in (layout.SUMMARY_FILE, layout.SETTINGS_FILE):
        truncate(run.path / name)
    told = cli(capsys, *run.argv, "--resume")
    assert told.code == 2 and layout.SETTINGS_FILE in told.text, told.text
    for name in (layout.SUMMARY_FILE, layout.SETTINGS_FILE):
        (run.path / name).rename(run.path / f"{name}.damaged")
    told = cli(capsys, *run.argv, "--resume")
    assert told.code == 0 and "Incumbent:" in told.text, told.text
    assert f"{damaged[-1]} is damaged" in told.text and "the next best trial is" in told.text
    resumed = SweepResult.load(run.path)
    assert resumed.incumbent_trial_id != first and 0 <= resumed.test_accuracy <= 1
    assert set(resumed.trials["trial_id"]) == trials  # every trial kept, none run again
    assert (resumed.trials["status"] == "TERMINATED").all()
    saved = json.loads((run.path / layout.SETTINGS_FILE).read_text())
    defining = ("dataset_fingerprint", "space_fingerprint", "preset", "num_samples", "seed")
    assert {k: saved[k] for k in defining} == {k: settings[k] for k in defining}


@pytest.mark.slow
def test_following_the_remedies_a_portfolio_gets_its_entry_and_manifest_back(built_portfolio,
                                                                             tmp_path, capsys):
    """A damaged weight file (the entry removed) and then a damaged manifest (moved aside): the
    build's command with ``--resume`` adds the entries back from the training run, without
    training."""
    import torch

    from automl_chars.portfolio import Portfolio

    run = built_portfolio.copy_to(tmp_path / "results")
    x = torch.rand(2, 1, 28, 28)
    before = Portfolio.load(run.path).model("glyphs-digits")(x)
    garbage(run.path / "glyphs-digits" / "weights.pt")
    Portfolio.load(run.path).remove("glyphs-digits")
    told = cli(capsys, *run.argv, "--resume")
    assert told.code == 0 and "Traceback" not in told.text, told.text
    assert torch.allclose(Portfolio.load(run.path).model("glyphs-digits")(x), before)
    truncate(run.path / "manifest.json")
    (run.path / "manifest.json").rename(run.path / "manifest.json.damaged")
    told = cli(capsys, *run.argv, "--resume")
    assert told.code == 0 and Portfolio.load(run.path).names() == ["glyphs-digits"], told.text


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
    damaged = make_store(tmp_path, None).target
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


#: Files the platform writes and never reads back (checked by grepping their names and
#: constants): a record for people or a benchmark, so no damage of theirs can reach a command.
WRITTEN_ONLY = {
    ("report.html", "automl_chars.reporting.page"),  # the report page, opened in a browser
    # plots, opened by people; `report` of a benchmark's figures folder embeds its *.png byte
    # for byte (base64, never decoded): a damaged one is a broken image, nothing else
    ("pareto.png", "automl_chars.reporting.pareto"),
    ("dynamics.png", "automl_chars.reporting.supernet"),
    ("sampling_counts.png", "automl_chars.reporting.supernet"),
    ("supernet_vs_standalone.png", "automl_chars.reporting.supernet"),
    # a replayed sweep's released results and its clock's final state, read by
    # benchmarks/warm_start_table.py from the run it has just made
    ("simulated_time.csv", "automl_chars.trainables.simclock"),
    ("simulated_clock.json", "automl_chars.trainables.simclock"),
    # transfer_table's result, returned to its caller; a resume reads its runs, not this
    ("transfer_table.csv", "automl_chars.workflows.transfer_table"),
}
#: Kinds of files no ``*_FILE`` constant names, each with rows.
UNNAMED = {"results-store file", "learning-curve table", "shipped learning-curve table part",
           "learned ranker"}


def named_files() -> set[tuple[str, str]]:
    """``(file name, module)`` of every module-level ``*_FILE`` string constant in the whole
    package, with the module that assigns it (another module importing the constant names the
    same file; two modules assigning the same name name two files)."""
    import ast
    import importlib
    import inspect
    import pkgutil

    import automl_chars

    found = set()
    for info in pkgutil.walk_packages(automl_chars.__path__, f"{automl_chars.__name__}."):
        module = importlib.import_module(info.name)
        assigned = set()
        for node in ast.parse(inspect.getsource(module)).body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            for target in targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                assigned |= {n.id for n in names if isinstance(n, ast.Name)}
        found |= {(value, info.name) for name, value in vars(module).items()
                  if name.endswith("_FILE") and name in assigned and isinstance(value, str)}
    return found


def test_every_file_read_back_has_a_row():
    """Every file the platform reads back has a row in FILES (named first in its kind, and by
    the module that names it): every ``*_FILE`` constant of every module of the package, Ray
    Tune's state a resume reads (``runner/core.py``), store files, tables and the package's
    own data; only the files in WRITTEN_ONLY are never read back. A new file name anywhere in
    the package without a row fails here."""
    from automl_chars.runner.core import TUNE_STATE

    named = named_files()
    assert WRITTEN_ONLY <= named, f"no longer named in the package: {WRITTEN_ONLY - named}"
    files = (named - WRITTEN_ONLY) | {(p, TUNE) for p in TUNE_STATE} | {(k, "") for k in UNNAMED}
    covered = {(c.kind.split(",")[0].split(" (")[0], c.module) for c in FILES}
    assert files <= covered, f"files read back without a row in FILES: {files - covered}"
    assert not covered & WRITTEN_ONLY, "a file with a row is read back: not WRITTEN_ONLY"
    assert covered <= files, f"rows of files the package does not name: {covered - files}"


@pytest.mark.slow
def test_following_the_remedy_a_damaged_table_is_written_again_from_its_run(
        ray_session, glyph_run_root, tmp_path, capsys):
    """A table of one's own, damaged: ``table show`` says to move it aside and run its build
    again with ``--resume``. Done literally (the file renamed, the build's command with
    ``--resume``), the table is written again from the build's Ray run, without training: the
    same rows, every epoch's seconds included."""
    from automl_chars.tabular import LearningCurveTable
    from automl_chars.tabular.table import REBUILD_REMEDY

    out = tmp_path / "curves.parquet"
    argv = ["table", "build", "--datasets", "glyphs-digits", "--configs", "0", "--epochs", "1",
            "--samples-per-class", "4", "--root", str(glyph_run_root), "--out", str(out),
            "--storage", str(tmp_path / "runs"), "--verbose", "0"]
    told = cli(capsys, *argv)
    assert told.code == 0, told.text
    before = LearningCurveTable.load(out).frame
    truncate(out)
    told = table_show(Reading(tmp_path, out, None, capsys))
    assert REBUILD_REMEDY in told and "move it aside (rename it)" in told
    out.rename(out.with_name(f"{out.name}.damaged"))  # as it says
    told = cli(capsys, *argv, "--resume")
    assert told.code == 0 and "Traceback" not in told.text, told.text
    assert cli(capsys, "table", "show", str(out)).code == 0
    pd.testing.assert_frame_equal(LearningCurveTable.load(out).frame, before)  # not retrained
