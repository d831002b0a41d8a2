"""Ctrl-C and SIGTERM leave a sweep unfinished and resumable, never written up as finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ray.tune.callback import Callback
from support import saved_trial_statuses

from automl_chars import data, run_bohb
from automl_chars.errors import SweepInterrupted
from automl_chars.runner.interrupts import InterruptGuard
from automl_chars.runner.trials import TrialJob, run_trials
from automl_chars.spaces import cnn_space, subspace

pytestmark = pytest.mark.slow

KEEP = ["learning_rate", "batch_size"]
# Two HyperBand brackets and a third begun (budgets 1 and 3): enough trials left after the third
# ends for the interrupt to land mid-sweep, few enough that a resume finishes in seconds.
PRESET, TRIALS, MAX_BUDGET = "3_1_3_3", 8, 3


def _wait_for_lines(out: Path, proc: subprocess.Popen, n: int, prefix: str = "[") -> None:
    deadline = time.time() + 240
    while time.time() < deadline:
        lines = out.read_text().splitlines() if out.exists() else []
        if sum(line.startswith(prefix) for line in lines) >= n:
            return
        assert proc.poll() is None, f"the sweep ended before it could be interrupted:\n{lines}"
        time.sleep(0.3)
    pytest.fail(f"fewer than {n} trials ended in time")


def _interrupt(argv: list[str], sig: int, tmp_path: Path, env: dict,
               group: bool) -> tuple[int, str, str]:
    """Runs ``argv`` in its own process group and sends ``sig`` once 3 trials have ended: to the
    whole group (``group``, as a terminal's Ctrl-C does: the local Ray processes the driver
    started get it too) or to the driver alone (``kill PID``; ``ray job stop`` signals a driver
    that joined a running cluster). Returns the exit status, stdout and stderr."""
    out, err = tmp_path / f"out-{sig}.txt", tmp_path / f"err-{sig}.txt"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(argv, stdout=o, stderr=e, env=env, start_new_session=True)
        try:
            _wait_for_lines(out, proc, 3)
            (os.killpg if group else os.kill)(proc.pid, sig)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return code, out.read_text(), err.read_text()


@pytest.fixture(scope="module")
def glyph_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    data.load("glyphs-digits", root=root, samples_per_class=12)
    return root


def test_ctrl_c_leaves_the_sweep_unfinished_and_resume_completes_it(ray_session, glyph_root,
                                                                    tmp_path):
    # The command starts its own local Ray, as a new user's does, so the terminal's Ctrl-C
    # reaches Ray's processes too.
    env = {**os.environ, "AUTOML_CHARS_DATA": str(glyph_root)}
    env.pop("RAY_ADDRESS", None)
    argv = [sys.executable, "-m", "automl_chars.cli.main", "bohb", "--dataset", "glyphs-digits",
            "--preset", PRESET, "--samples-per-class", "12", "--storage", str(tmp_path),
            "--name", "ctrlc", "--no-priors"]  # the default seed trials would only add time
    code, out, err = _interrupt(argv, signal.SIGINT, tmp_path, env, group=True)
    exp = tmp_path / "ctrlc"
    assert code == 130, (out, err)
    assert not (exp / "summary.json").exists() and not (exp / "trials.csv").exists()
    assert "Test Accuracy" not in out
    resume_lines = [line for line in err.splitlines() if "--resume" in line]
    assert len(resume_lines) == 1 and str(exp) in resume_lines[0], err
    assert "Traceback" not in err
    ended_before = sum(line.startswith("[") for line in out.splitlines())

    ds = data.load("glyphs-digits", root=glyph_root, samples_per_class=12)
    result = run_bohb(ds, space=None, preset=PRESET, storage_path=tmp_path, name="ctrlc",
                      resume=True, verbose=0)
    t = result.trials
    assert len(t) == TRIALS and (t["status"] == "TERMINATED").all(), t["error"].to_dict()
    assert t["budget"].max() == MAX_BUDGET  # the resumed sweep reaches the maximum budget
    assert (exp / "summary.json").exists()
    assert ended_before >= 3


class SigintAfter(Callback):
    """SIGINT to this process alone (``kill -INT PID``) at the ``after[k]``-th trial result of
    the ``k``-th run (the first run, then each resume it is given to; later runs go on): the
    signals sent so far are counted in the file ``log``."""

    def __init__(self, log: Path, after: list[int]):
        self.log, self.after, self.seen = str(log), after, 0

    def setup(self, **info):  # each run, resumed ones too
        self.seen = 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen += 1
        log = Path(self.log)
        sent = log.read_text().splitlines() if log.exists() else []
        if len(sent) < len(self.after) and self.seen == self.after[len(sent)]:
            with log.open("a") as f:
                f.write(f"{trial.trial_id} {result['training_iteration']}\n")
            os.kill(os.getpid(), signal.SIGINT)


def _saved_decisions(exp: Path) -> dict[str, str]:
    """The decisions Tune's controller saved with its newest experiment state (trial id ->
    decision waiting for that trial's save)."""
    newest = sorted(exp.glob("experiment_state-*.json"))[-1]
    return json.loads(newest.read_text())["runner_data"]["_cached_trial_decisions"]


@pytest.mark.timeout(180)  # a resumed sweep waiting on a trial paused for good fails here
def test_a_sweep_interrupted_in_process_twice_resumes_as_if_never_stopped(ray_session,
                                                                          glyph_root, tmp_path):
    """Ctrl-C to the driver alone at two awkward moments of a HyperBand sweep (3_1_3_1: three
    trials at budget 1, the best promoted to 3), then a resume that ends as an uninterrupted
    sweep does: the best trial trained to budget 3 and evaluated from that checkpoint, every
    trial TERMINATED, the summary written. Regressions:

    1. Right after the second trial reached its rung: HyperBand paused it, and Tune saved that
       PAUSE, waiting for the trial's checkpoint, with its state (a Ray bug). Restored, the
       stale PAUSE stopped the trial at its first result once promoted: the sweep never ended.
    2. In the resumed sweep, at the promoted trial's last result, while it runs alone: Tune's
       graceful stop marks it TERMINATED after saving its state, so the sweep was written up
       as finished (with the lost checkpoint, the incumbent could have none to evaluate).
    3. Resumed again, that trial had reached max_t, but its checkpoint was of budget 2: it was
       stopped there, and the incumbent was evaluated from a model of 2 budget units.
    """
    from ray.tune import ExperimentAnalysis

    from automl_chars.checkpoints import load_trial_state

    ds = data.load("glyphs-digits", root=glyph_root, samples_per_class=12)
    log, exp = tmp_path / "signals.txt", tmp_path / "sig"
    kwargs = dict(space=subspace(cnn_space(), ["learning_rate"], seed=0), preset="3_1_3_1",
                  storage_path=tmp_path, name="sig", priors=False, verbose=0)
    sigint = SigintAfter(log, [2, 4])
    with pytest.raises(SweepInterrupted) as first:
        run_bohb(ds, callbacks=[sigint], **kwargs)
    assert first.value.exit_code == 130
    # The Ray bug ray_compat.drop_stale_decisions works around: the PAUSE for the paused
    # trial's checkpoint, saved. When an upgrade of Ray no longer saves it, drop the workaround.
    stale = _saved_decisions(exp)
    assert list(stale.values()) == ["PAUSE"], stale
    with pytest.raises(SweepInterrupted) as second:
        # the third trial, then the promoted one's 3 units (a resume runs the callbacks it is given)
        run_bohb(ds, resume=True, callbacks=[sigint], **kwargs)
    assert second.value.exit_code == 130 and not (exp / "summary.json").exists()
    (promoted, units), = [line.split() for line in log.read_text().splitlines()[1:]]
    assert promoted in stale and units == "3"  # with seed 0 the best is the stale PAUSE's

    result = run_bohb(ds, resume=True, **kwargs)
    t = result.trials.set_index("trial_id")
    assert len(t) == 3 and (t["status"] == "TERMINATED").all(), t["error"].to_dict()
    assert sorted(t["budget"]) == [1, 1, 3] and t.loc[promoted, "budget"] == 3
    assert result.incumbent_trial_id == promoted
    assert 0.0 <= result.test_accuracy <= 1.0 and (exp / "summary.json").exists()
    trial = next(x for x in ExperimentAnalysis(str(exp)).trials if x.trial_id == promoted)
    assert load_trial_state(trial.checkpoint.path)["units_done"] == 3  # what was evaluated


def test_jobs_interrupted_while_all_of_them_run_resume_to_their_last_epoch(ray_session,
                                                                          glyph_root, tmp_path):
    """Ctrl-C while every unfinished trial runs (here the one job, after its first epoch): Tune
    saves it RUNNING, then its graceful stop marks it TERMINATED. The run was written up as
    finished at epoch 1 of 2 (and a resume read that back); it must be an interrupted run that
    resume trains to the end."""
    ds = data.load("glyphs-digits", root=glyph_root, samples_per_class=12)
    jobs = [TrialJob("only", ds, {"learning_rate": 0.01})]
    kwargs = dict(name="jobs", storage_path=tmp_path, verbose=0)
    with pytest.raises(SweepInterrupted) as err:
        run_trials(jobs, "cnn", 2, callbacks=[SigintAfter(tmp_path / "signals.txt", [1])],
                   **kwargs)
    assert err.value.exit_code == 130 and not (tmp_path / "jobs" / "summary.json").exists()
    assert list(saved_trial_statuses(tmp_path / "jobs").values()) == ["RUNNING"]
    run = run_trials(jobs, "cnn", 2, resume=True, **kwargs)
    assert list(run.table["status"]) == ["TERMINATED"] and list(run.table["epochs"]) == [2]
    assert list(run.history["training_iteration"]) == [1, 2]


DRIVER = textwrap.dedent("""
    import ray
    ray.init(log_to_driver=False)  # joins RAY_ADDRESS: the test session's Ray
    from automl_chars import data, run_bohb
    from automl_chars.errors import SweepInterrupted
    from automl_chars.spaces import cnn_space, subspace
    ds = data.load("glyphs-digits", samples_per_class=12)
    try:
        run_bohb(ds, space=subspace(cnn_space(), {keep!r}, seed=0), preset={preset!r},
                 storage_path={storage!r}, name="term")
    except SweepInterrupted as err:
        print("SweepInterrupted", err.exit_code, err)
        raise SystemExit(err.exit_code)
""")


def test_sigterm_to_a_python_driver_raises_sweep_interrupted(ray_session, ray_address, glyph_root, tmp_path):
    """What ``ray job stop`` or ``kill`` does to a script that calls the Python API."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(keep=KEEP, preset=PRESET, storage=str(tmp_path)))
    env = {**os.environ, "AUTOML_CHARS_DATA": str(glyph_root), "RAY_ADDRESS": ray_address}
    code, out, err = _interrupt([sys.executable, str(script)], signal.SIGTERM, tmp_path, env,
                                group=False)
    assert code == 143, (out, err)
    assert "SweepInterrupted 143" in out and "SIGTERM" in out and "resume=True" in out
    assert not (tmp_path / "term" / "summary.json").exists()
    # Resumable: Tune saved its state on the way out.
    assert list((tmp_path / "term").glob("experiment_state*.json"))


def test_guard_turns_a_signal_into_tunes_graceful_stop_and_a_second_into_an_abort():
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda s, f: received.append(s))
    # What the guard must put back: Python's default handler, or SIG_IGN where the test runs as a
    # shell's background job (which starts with SIGINT ignored).
    sigint_before = signal.getsignal(signal.SIGINT)
    try:
        with InterruptGuard() as guard:
            signal.signal(signal.SIGUSR1, lambda s, f: received.append(s))  # as Tune installs
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
            assert guard.signal == signal.SIGTERM and received == [signal.SIGUSR1]
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)
        assert guard.exit_code == 143 and guard.description == "SIGTERM"
        assert signal.getsignal(signal.SIGINT) is sigint_before  # restored
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_signal_before_tune_started_aborts_at_once():
    with pytest.raises(KeyboardInterrupt), InterruptGuard() as guard:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
    assert guard.exit_code == 130


def test_sweep_interrupted_is_a_clear_platform_error():
    err = SweepInterrupted("/x/sweep", "SIGINT", 130, "--resume")
    assert err.exit_code == 130 and "nothing was written up as finished" in str(err)
