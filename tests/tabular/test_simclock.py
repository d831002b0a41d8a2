"""The simulated clock: replayed results reach Tune in the order of simulated time, at the
times an event simulation of the same schedule gives, one trial or several at a time."""

from __future__ import annotations

import heapq

import pandas as pd
import pytest
import ray
from ray import tune

from automl_chars.errors import InvalidConfigError
from automl_chars.spaces import cnn_space
from automl_chars.tabular import LearningCurveTable, manifest_for
from automl_chars.trainables import ReplayTrainable
from automl_chars.trainables.simclock import (
    EVENTS_FILE,
    ClockCallback,
    DriverView,
    SimulatedClock,
    clock_name,
    write_events,
)

#: Seconds of each configuration's epochs: a trial's epochs all take the same time.
SECONDS = [1.0, 5.0, 2.0, 7.0, 3.0, 4.0]
EPOCHS = 3


def timed_table() -> LearningCurveTable:
    rows = [{"config_id": c, "dataset": "a", "epoch": e, "val_acc": 0.1 * c + 0.01 * e,
             "val_loss": 1.0, "test_acc": 0.5, "test_loss": 1.0, "train_acc": 0.5,
             "train_loss": 1.0, "epoch_seconds": s, "num_params": 10.0, "status": "TERMINATED",
             "error": ""} for c, s in enumerate(SECONDS) for e in range(1, EPOCHS + 1)]
    configs = {c: {"learning_rate": 10.0 ** -(c + 1)} for c in range(len(SECONDS))}
    manifest = manifest_for([{"name": "a", "fingerprint": "fp"}], configs, cnn_space(), EPOCHS)
    return LearningCurveTable(pd.DataFrame(rows), manifest)


def simulate(parallelism: int) -> list[tuple[float, int]]:
    """(time, config) of every epoch's end when the configurations start in order as slots
    free up, ties to the lower config: what the replay must reproduce."""
    events, order, queue = [], [], list(range(len(SECONDS)))
    for _ in range(parallelism):
        c = queue.pop(0)
        heapq.heappush(events, (SECONDS[c], c, 1))
    while events:
        t, c, epoch = heapq.heappop(events)
        order.append((t, c))
        if epoch < EPOCHS:
            heapq.heappush(events, (t + SECONDS[c], c, epoch + 1))
        elif queue:
            n = queue.pop(0)
            heapq.heappush(events, (t + SECONDS[n], n, 1))
    return order


@pytest.mark.slow
def test_results_arrive_in_simulated_time_order(ray_session, tmp_path, monkeypatch):
    """Two at a time (one at a time: test_replay's BOHB sweep), with Tune creating one trial
    at a time, as it does for BOHB's searcher: a trial that starts when a slot frees starts at
    that simulated time, not one release later."""
    monkeypatch.setenv("TUNE_MAX_PENDING_TRIALS_PG", "1")
    parallelism = 2
    name = clock_name(str(tmp_path))
    trainable = tune.with_resources(
        tune.with_parameters(ReplayTrainable, table=timed_table(), dataset="a", clock=name),
        {"cpu": 2 / parallelism})
    clock = ClockCallback(name, parallelism)
    tuner = tune.Tuner(
        trainable, param_space={"config_id": tune.grid_search(list(range(len(SECONDS))))},
        run_config=tune.RunConfig(name="clocked", storage_path=str(tmp_path), verbose=0,
                                  stop={"training_iteration": EPOCHS}, callbacks=[clock]),
    )
    grid = tuner.fit()
    assert not grid.errors
    events = pd.read_csv(tmp_path / "clocked" / EVENTS_FILE)
    expected = simulate(parallelism)
    assert list(events["config_id"]) == [c for _, c in expected]
    assert events["sim_time"].tolist() == pytest.approx([t for t, _ in expected])
    assert events["sim_time"].is_monotonic_increasing
    assert clock.forced == 0  # every release came from the driver's view, none by timeout


@pytest.mark.slow
def test_a_silent_driver_only_delays_releases(ray_session):
    """Without driver reports nothing is released until the patience runs out; then the
    earliest event goes first."""
    clock = SimulatedClock.remote(0.5)
    late, early = clock.tick.remote("t2", 5.0), clock.tick.remote("t1", 2.0)
    ready, _ = ray.wait([late, early], timeout=0.3)
    assert ready == []
    assert ray.get(early) == 2.0
    clock.report.remote(DriverView(("t2",), processed={"t1": 1}, settled=True))
    assert ray.get(late) == 5.0
    state = ray.get(clock.state.remote())
    assert state["forced"] == 1 and state["released"] == 2 and state["now"] == 5.0
    ray.kill(clock)


def test_parallelism_is_a_whole_number():
    with pytest.raises(InvalidConfigError, match="parallelism"):
        ClockCallback("x", 0)


def test_the_events_file_is_written_atomically(tmp_path, monkeypatch):
    """A write cut short (a full disk) leaves the previous events file whole."""
    import csv

    path = tmp_path / EVENTS_FILE
    write_events(path, [{"sim_time": 1.0, "trial_id": "a", "val_acc": 0.5}])
    before = path.read_bytes()

    def full_disk(self, rows):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerows", full_disk)
    with pytest.raises(OSError):
        write_events(path, [{"sim_time": 2.0, "trial_id": "b", "val_acc": 0.6}])
    assert path.read_bytes() == before
