"""A sweep on a multi-node Ray cluster survives its faults: trials spread over the nodes, a worker
node lost mid-run has its trial retried on another from its checkpoint with nothing finished lost,
and a killed driver's run resumes on the cluster still up.

The cluster is Ray's own test cluster (``ray.cluster_utils.Cluster``: a head and two worker nodes
of one CPU, on this machine), run by ``multinode_driver.py`` in a process of its own (this
session's Ray instance and a Cluster cannot share a process); it runs both scenarios once and
reports each trial's rows of Tune's ``progress.csv`` (epoch, Ray node, process) and the run's
``trials.csv``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# Opt-in (AUTOML_CHARS_MULTINODE_TESTS=1): a cluster of three nodes and four runs take about
# 90 s on a quiet 2-core machine, 5 to 7 minutes beside other test runs. Their placement is
# pinned (see multinode_driver.py): left to Ray, a fresh-clone CI run on a loaded machine put
# every trial on one worker node (issue 19).
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("AUTOML_CHARS_MULTINODE_TESTS") != "1",
    reason="multi-node tests are opt-in (AUTOML_CHARS_MULTINODE_TESTS=1): a 3-node cluster")]

SCRIPT = Path(__file__).with_name("multinode_driver.py")
EPOCHS = 2
#: About 90 s on a quiet 2-core machine; 5 to 7 minutes beside other test runs (load 40).
TIMEOUT_S = 600


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("multinode")
    (out / "data").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPT.parents[2]), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(out), str(out / "data")],
                            env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        log, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the cluster's processes are in the driver's group
        log, _ = proc.communicate()
        pytest.fail(f"the multi-node driver ran over {TIMEOUT_S} s; its last lines:\n"
                    f"{log[-4000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, log[-4000:]
    return json.loads((out / "report.json").read_text())


def nodes_of(rows: list[dict]) -> list[str]:
    return [r["node_id"] for r in rows]


def test_trials_spread_over_the_worker_nodes(report):
    # Before the loss, two trials ran at once, each pinned to its own 1-CPU worker by a custom
    # resource (TrialJob.resources). (The killed driver's run may place its few trials on one
    # node: placement is Ray's choice there.)
    run = report["lost_node"]
    used = {n for rows in run["progress"].values() for n in nodes_of(rows)}
    assert used == set(report["workers"])
    by_label = {label: tid for tid, label in run["labels"].items()}
    for label, node in run["pinned"].items():
        assert set(nodes_of(run["progress"][by_label[label]])) == {node}, label
    removed = run["removed"]["node_id"]
    on_removed = {tid for tid, rows in run["progress"].items() if removed in nodes_of(rows)}
    only_other = {tid for tid, rows in run["progress"].items() if removed not in nodes_of(rows)}
    assert on_removed and only_other


def test_a_lost_nodes_trial_goes_on_elsewhere_from_its_checkpoint_and_nothing_is_lost(report):
    run, removed = report["lost_node"], report["lost_node"]["removed"]
    assert removed is not None, "no node was removed"
    assert set(run["status"].values()) == {"TERMINATED"}
    assert set(run["epochs"].values()) == {EPOCHS}
    assert sorted(run["trials_csv"]) == sorted(run["status"])
    rows = run["progress"][removed["trial_id"]]
    before = [r for r in rows if r["node_id"] == removed["node_id"]]
    after = [r for r in rows if r["node_id"] != removed["node_id"]]
    # The node went after the trial's epoch-1 checkpoint (it may have reported epoch 2 there
    # before the node was gone, without a checkpoint of it); the trial was retried on the other
    # node, in a new process, from that checkpoint: not from scratch.
    assert before and before[0]["training_iteration"] == 1
    assert after and after[0]["training_iteration"] == 2 and after[-1]["training_iteration"] == EPOCHS
    assert {r["pid"] for r in after}.isdisjoint({removed["pid"]})
    for tid in removed["finished"]:  # finished before the loss: kept, not trained again
        assert [r["training_iteration"] for r in run["progress"][tid]] == [1, 2]
        assert len({r["pid"] for r in run["progress"][tid]}) == 1


def test_a_killed_drivers_run_resumes_on_the_cluster_still_up(report):
    run = report["killed_driver"]
    assert run["finished"] and set(run["status"].values()) == {"TERMINATED"}
    assert set(run["epochs"].values()) == {EPOCHS}
    assert sorted(run["trials_csv"]) == sorted(run["status"])
    for tid in run["finished"]:  # finished before the kill: kept, not trained again
        assert [r["training_iteration"] for r in run["progress"][tid]] == [1, 2]
        assert len({r["pid"] for r in run["progress"][tid]}) == 1
    # The others went on (from their last checkpoint Tune had saved, or over when it had none).
    assert all(rows[-1]["training_iteration"] == EPOCHS for rows in run["progress"].values())
