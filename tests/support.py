"""Helpers shared by test modules (not fixtures: those live in conftest.py)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path


@contextlib.contextmanager
def one_thread():
    """Torch on one thread, restored afterwards: the tests share two cores with other jobs, and
    two threads fighting over them make small computations several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def saved_trial_statuses(exp) -> dict[str, str]:
    """Trial id -> status in the newest experiment state Tune saved in ``exp`` (a Path, or a
    storage URI); empty while none is there or it is being written. For tests that kill a
    driver mid-run."""
    import json

    import pyarrow.fs

    if isinstance(exp, str):
        fs, path = pyarrow.fs.FileSystem.from_uri(exp)
        infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
        states = sorted(i.path for i in infos if i.base_name.startswith("experiment_state"))
        read = (lambda f: fs.open_input_stream(f).read().decode()) if states else None
    else:
        states = sorted(exp.glob("experiment_state*.json"))
        read = (lambda f: f.read_text()) if states else None
    if not states:
        return {}
    try:
        trial_data = json.loads(read(states[-1]))["trial_data"]
    except (json.JSONDecodeError, KeyError):
        return {}
    return {json.loads(t)["trial_id"]: json.loads(t)["status"] for t, _ in trial_data}


def kill_driver_after(script, data_root, exp, finished: int, timeout: float = 180,
                      ray_address: str | None = None) -> set[str]:
    """Runs the Python ``script`` as a driver in its own process group (``AUTOML_CHARS_DATA`` =
    ``data_root``; ``RAY_ADDRESS`` = ``ray_address``, the test session's Ray, when given), waits
    until Tune's saved state in ``exp`` has ``finished`` TERMINATED trials, then SIGKILLs the
    whole group (no clean stop) and returns the ids of the finished trials. ``exp`` may be a
    storage URI (see :func:`saved_trial_statuses`)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "AUTOML_CHARS_DATA": str(data_root),
           **({"RAY_ADDRESS": ray_address} if ray_address else {})}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while list(saved_trial_statuses(exp).values()).count("TERMINATED") < finished:
            assert proc.poll() is None, "the driver ended before it could be killed"
            assert time.time() < deadline, f"no {finished} trials finished in {timeout} s"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if ray_address:
            wait_until_idle()
    return {t for t, s in saved_trial_statuses(exp).items() if s == "TERMINATED"}


def wait_until_idle(timeout: float = 60) -> None:
    """Waits until every CPU of this process's Ray is free again: a driver killed on a shared
    cluster leaves its trials' actors running until Ray notices the driver is gone, and one
    still writing a checkpoint would race the resumed run that restores it."""
    import time

    import ray

    deadline = time.time() + timeout
    total = ray.cluster_resources().get("CPU", 0)
    while ray.available_resources().get("CPU", 0) < total:
        assert time.time() < deadline, "the killed driver's actors did not stop"
        time.sleep(0.2)


class FakeController:
    """What HyperBandForBOHB calls on Tune's controller, recording what reaches the searcher
    (``paused``, ``fed``: (trial id, result copy)) and which trials it stopped."""

    def __init__(self, scheduler=None):
        from types import SimpleNamespace

        self.scheduler = scheduler
        self.paused, self.stopped, self.fed = [], [], []
        searcher = SimpleNamespace(on_pause=self.paused.append, on_unpause=lambda tid: None,
                                   on_trial_result=lambda tid, r: self.fed.append((tid, dict(r))))
        self.search_alg = SimpleNamespace(searcher=searcher)

    def stop_trial(self, trial):
        from ray.tune.experiment import Trial

        self.stopped.append(trial.trial_id)
        if self.scheduler is not None:  # as Tune does for PAUSED/PENDING trials
            self.scheduler.on_trial_remove(self, trial)
        trial.set_status(Trial.TERMINATED)

    def get_trials(self):
        return []


@dataclass(frozen=True)
class FinishedRun:
    """A run made once per session through the CLI (conftest's ``finished_sweep``,
    ``built_portfolio``): its results root ``storage`` (the run's folder ``name`` and the store
    beside it), the command line that made it and what it printed. Tests that change files work
    on a copy (:meth:`copy_to`)."""

    storage: Path
    name: str
    argv: tuple[str, ...]
    output: str = ""

    @property
    def path(self) -> Path:
        return self.storage / self.name

    def copy_to(self, dest: Path) -> FinishedRun:
        """A copy of the whole results root in ``dest`` (made here), its command line pointing at
        it: resuming the copy is resuming the run, moved."""
        import shutil

        shutil.copytree(self.storage, dest, symlinks=True)
        argv = tuple(a.replace(str(self.storage), str(dest)) for a in self.argv)
        return FinishedRun(dest, self.name, argv, self.output)


def run_cli(argv) -> str:
    """``automl-chars ARGV`` in-process; its output, or an AssertionError with it."""
    import contextlib
    import io

    from automl_chars.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    assert code == 0, out.getvalue()
    return out.getvalue()


#: The bucket conftest's ``bucket`` fixture makes on the session's S3 server (``s3_server``).
BUCKET = "sweeps"


def s3_uri(endpoint: str, path: str, bucket: str = BUCKET) -> str:
    """A URI of the test S3 server with fake credentials in it: Ray's worker processes (started
    before the test by the session) see no AWS_* variables, and pyarrow carries a URI's
    options and credentials to them with the filesystem."""
    return (f"s3://testing:testing@{bucket}/{path}?scheme=http&endpoint_override={endpoint}"
            f"&region=us-east-1")


def uri_of(storage: str, name: str) -> str:
    """``name`` under the storage URI ``storage`` (its query kept at the end)."""
    path, query = storage.split("?")
    return f"{path.rstrip('/')}/{name}?{query}"


def listing(fs, path: str) -> set[str]:
    """The files under ``path`` of the test bucket, relative to it."""
    import pyarrow.fs

    infos = fs.get_file_info(pyarrow.fs.FileSelector(f"{BUCKET}/{path}", recursive=True,
                                                     allow_not_found=True))
    return {i.path[len(BUCKET) + len(path) + 2:] for i in infos if i.type.name == "File"}


def upload(fs, folder, path: str) -> None:
    """Copies the local ``folder`` (a finished run, a portfolio) to ``path`` of the test bucket,
    file by file, as another machine's run would have left it there."""
    from pathlib import Path

    folder = Path(folder)
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            rel = f.relative_to(folder).as_posix()
            with fs.open_output_stream(f"{BUCKET}/{path}/{rel}") as out:
                out.write(f.read_bytes())
