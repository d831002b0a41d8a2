"""Shared fixtures.

Rules of this suite:
- Ray starts once per session (``ray_session``), with ``num_cpus`` explicit; tests that need Ray
  take that fixture and are marked ``slow``.
- Data is tiny: ``make_dataset`` builds a few hundred 28x28 images in memory; nothing downloads.
- Every test that touches the data root gets its own ``data_root`` (``AUTOML_CHARS_DATA`` set to a
  temporary folder), so no test reads the user's cache.
- Two pytest-xdist workers (``-n 2`` in pyproject.toml): the tests that use the session's Ray
  (its fixtures, its runs) or are marked ``slow`` run in two groups, one per
  worker, each worker with its Ray (:data:`SECOND_RAY`: modules that share none of the session
  fixtures); the quick tests fill in (``pytest -n 0`` runs all in one process, with one Ray).
  The groups need pytest < 9.2 (pytest-xdist 3.8 marks a group by rewriting ``item._nodeid``,
  which pytest 9.2 no longer reads: pytest-dev/pytest-xdist#1386) and the hook below to run
  before xdist's (``tryfirst``); tests/test_suite_groups.py checks both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

# Helpers shared by test modules (``from support import ...``): a module of its own, since
# "conftest" names a different module in each folder that has one.
sys.path.insert(0, str(Path(__file__).parent))

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")


#: Test modules whose Ray and slow tests form the second xdist group: the benchmarks' and
#: experiments' smoke runs, the data-parallel trials and the tests that start a Ray of their
#: own. They use none of the expensive session fixtures (a finished sweep, a built portfolio),
#: which the first group computes once; most of a Ray test's time is waiting on process starts,
#: so two groups at once on 2 cores finish sooner than one after the other.
SECOND_RAY = frozenset({"test_benchmarks.py", "test_experiments.py", "test_jobs.py",
                        "test_quickstart.py", "test_data_parallel.py"})


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    """Two xdist groups for the tests of a session's Ray instance and the slow ones (see
    :data:`SECOND_RAY`), each in one worker with one Ray instance; the quick tests spread over
    both workers."""
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()) or item.get_closest_marker("slow"):
            group = "ray2" if item.path.name in SECOND_RAY else "ray"
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A fresh, empty data root, also exported as ``AUTOML_CHARS_DATA``."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("AUTOML_CHARS_DATA", str(root))
    return root


def _make_dataset(name="toy", num_classes=4, per_class=30, size=28, seed=0, test_per_class=10):
    """A learnable toy dataset: each class is a bright bar at its own position, plus noise."""
    from automl_chars.data import from_arrays

    rng = np.random.default_rng(seed)

    def draw(n):
        y = np.repeat(np.arange(num_classes), n)
        x = rng.integers(0, 60, size=(len(y), size, size)).astype(np.uint8)
        for i, c in enumerate(y):
            r = 2 + (c * (size - 6)) // max(1, num_classes - 1)
            x[i, r : r + 3, 3 : size - 3] = 230
        return x, y

    xtr, ytr = draw(per_class)
    xte, yte = draw(test_per_class)
    return from_arrays(name, xtr, ytr, xte, yte, seed=seed)


@pytest.fixture
def make_dataset():
    """Factory of small in-memory datasets: ``make_dataset(num_classes=4, per_class=30)``."""
    return _make_dataset


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole session (2 CPUs, no dashboard; the machine's GPUs,
    if any, so that the ``gpu`` tests can run fractional-GPU trials)."""
    import ray
    import torch

    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=torch.cuda.device_count(), include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_address(ray_session) -> str:
    """The session's Ray for driver subprocesses to join (``RAY_ADDRESS``): a killed-driver test
    then pays no Ray start of its own, and the driver's death is what a cluster sees when a
    user's driver dies (its trials' actors go, the cluster stays)."""
    return ray_session.get_runtime_context().gcs_address


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free local port, once per session; yields ``host:port``. Tests
    take ``bucket`` (an empty bucket on it) and ``cache`` (a fresh mirror cache); URIs of it
    come from :func:`support.s3_uri`."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request, else
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_server):
    """An empty bucket (:data:`support.BUCKET`) on the S3 server, emptied and removed after the
    test; yields its pyarrow filesystem."""
    import pyarrow.fs
    from support import BUCKET, s3_uri

    fs, _ = pyarrow.fs.FileSystem.from_uri(s3_uri(s3_server, "") + "&allow_bucket_creation=true"
                                           "&allow_bucket_deletion=true")
    fs.create_dir(BUCKET)
    yield fs
    fs.delete_dir(BUCKET)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh mirror cache of storage URIs: each test (and each "machine" of a test: call the
    fixture's value with another name) starts with none."""
    from automl_chars import uris

    def switch(name: str = "machine-1"):
        monkeypatch.setenv(uris.CACHE_ENV, str(tmp_path / name))
        return tmp_path / name
    switch()
    return switch


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (tiny convolutions on a shared 2-core machine)."""
    from support import one_thread as single

    with single():
        yield


@pytest.fixture
def needs_gpu():
    """Skips a test where torch sees no CUDA device (CI); the device machine runs them."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")



#: glyphs-digits at this many training images per class: the session's CLI runs.
RUN_PER_CLASS = 12


@pytest.fixture(scope="session")
def glyph_run_root(tmp_path_factory) -> Path:
    """A data root holding glyphs-digits at :data:`RUN_PER_CLASS` images per class."""
    from automl_chars import data

    root = tmp_path_factory.mktemp("run-data")
    data.load("glyphs-digits", root=root, samples_per_class=RUN_PER_CLASS)
    return root


@pytest.fixture(scope="session")
def finished_sweep(ray_session, glyph_run_root, tmp_path_factory):
    """A default BOHB sweep finished through the CLI, once per session (``automl-chars bohb``:
    the built-in priors' warm start, its seed trials, then BOHB; preset 2_1_2_1 on glyphs-digits):
    a :class:`support.FinishedRun`. Copy it (``copy_to``) before changing its files."""
    from support import FinishedRun, run_cli

    storage = tmp_path_factory.mktemp("finished-sweep")
    argv = ("bohb", "--dataset", "glyphs-digits", "--preset", "2_1_2_1", "--samples-per-class",
            str(RUN_PER_CLASS), "--root", str(glyph_run_root), "--storage", str(storage),
            "--name", "sweep", "--verbose", "0")
    return FinishedRun(storage, "sweep", argv, run_cli(argv))


@pytest.fixture(scope="session")
def built_portfolio(ray_session, glyph_run_root, tmp_path_factory):
    """A one-entry portfolio built through the CLI, once per session (``automl-chars portfolio
    build``: a small CNN trained one epoch on glyphs-digits by ``run_trials``, its run in
    ``training/``): a :class:`support.FinishedRun`. Copy it (``copy_to``) before changing it."""
    from support import FinishedRun, run_cli

    storage = tmp_path_factory.mktemp("built-portfolio")
    config = '{"conv1_channels": 8, "learning_rate": 0.01, "batch_size": 32}'
    argv = ("portfolio", "build", "--sources", "glyphs-digits", "--model", "cnn", "--config",
            config, "--epochs", "1", "--samples-per-class", str(RUN_PER_CLASS), "--root",
            str(glyph_run_root), "--out", str(storage / "pf"), "--verbose", "0")
    return FinishedRun(storage, "pf", argv, run_cli(argv))


@pytest.fixture(scope="session")
def finished_sweeps(ray_session, tmp_path_factory) -> dict:
    """Two real, finished BOHB sweeps of the CNN space on glyphs-digits (preset 3_1_9_1, 9
    trials), replayed from the shipped learning-curve table (seconds, no training): ``"cold"``
    (``priors=False``) and ``"warm"`` (the default priors: it has a ``warm_start.json``).
    Name -> folder. Shared by the session: read them, never write into them."""
    from automl_chars import data, run_bohb
    from automl_chars.search.spec import replay_spec
    from automl_chars.tabular.shipped import glyph_curves

    root = tmp_path_factory.mktemp("sweeps")
    table = glyph_curves(["glyphs-digits"])
    ds = data.load("glyphs-digits", root=root / "data", samples_per_class=6)
    return {name: run_bohb(ds, spec=replay_spec(table, seed=0, parallelism=None),
                           preset="3_1_9_1", storage_path=root, name=name, priors=priors,
                           verbose=0).path
            for name, priors in (("cold", False), ("warm", True))}
