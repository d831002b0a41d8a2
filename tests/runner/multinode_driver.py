"""Runs the multi-node fault scenarios of ``test_multinode.py`` on Ray's own test cluster
(``ray.cluster_utils.Cluster``: a head without CPUs and two worker nodes of one CPU each, all on
this machine) and writes what happened as JSON. A separate process: the test session already
runs a Ray instance of its own, and a Cluster cannot start beside ``ray.init`` in one process.

Usage: ``python multinode_driver.py OUT_DIR DATA_ROOT``. Two scenarios, one cluster:

1. ``killed_driver``: a driver process joins the cluster and runs three jobs; it is SIGKILLed
   once one has finished, and this process resumes the run with the cluster still up.
2. ``lost_node``: three jobs of two epochs, the first two pinned one to each worker node (a
   custom resource per node, ``TrialJob.resources``), the third free to go anywhere; Tune asks
   for one trial's resources at a time (``TUNE_MAX_PENDING_TRIALS_PG=1``), so the free job
   starts once a pinned one has finished, on its node, and that node is removed
   (``cluster.remove_node``) as soon as the free job has saved its epoch-1 checkpoint (the
   trial held before its second epoch until then); Tune retries it on the other node from that
   checkpoint.

Placement is deterministic: left to Ray, a loaded machine started one worker's trial process
long before the other's, and Tune handed the first trial's process, free again, to the trials
still waiting for theirs (actor reuse), so every trial ran on one node.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import ray
from ray.cluster_utils import Cluster
from ray.tune.callback import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: support.py

from support import kill_driver_after  # noqa: E402

from automl_chars import data  # noqa: E402
from automl_chars.runner.trials import TrialJob, run_trials  # noqa: E402
from automl_chars.search.spec import cnn_spec  # noqa: E402
from automl_chars.trainables.cnn import CNNTrainable  # noqa: E402
from automl_chars.trainables.keys import JOB  # noqa: E402

PER_CLASS = 12
RATES = (0.01, 0.003, 0.001)

DRIVER = textwrap.dedent("""
    import ray
    ray.init(log_to_driver=False)  # joins RAY_ADDRESS: the test cluster
    from automl_chars import data
    from automl_chars.runner.trials import TrialJob, run_trials
    ds = data.load("glyphs-digits", samples_per_class={per_class})
    jobs = [TrialJob(f"lr{{lr}}", ds, {{"learning_rate": lr}}) for lr in {rates}]
    run_trials(jobs, "cnn", 2, name="killed", storage_path={storage!r}, verbose=0)
""")


#: A custom resource per worker node, which the pinned jobs ask for.
NODE_RESOURCE = "multinode_worker_{}"


class HeldCNNTrainable(CNNTrainable):
    """``CNNTrainable`` whose job ``held`` waits before its second epoch until the file
    ``release`` exists (written once its node is removed): the node goes while that trial is
    between its epochs, as a real epoch's length would make likely; an epoch of this data takes
    milliseconds, so without it the trial could finish before the node was gone. (Defined in
    the driver's ``__main__``: Ray ships it to the actors by value.)"""

    held, release = "", ""

    def step(self) -> dict:
        if self.config.get(JOB) == self.held and self.iteration == 1:
            deadline = time.time() + 120  # never forever: a missing release fails the checks
            while not os.path.exists(self.release) and time.time() < deadline:
                time.sleep(0.05)
        return super().step()


class RemoveNodeOnce(Callback):
    """Removes the worker node of job ``label``'s trial once it saved its epoch-1 checkpoint
    after another trial has finished (a spot node reclaimed mid-sweep); records which and what
    had finished then."""

    def __init__(self, cluster: Cluster, workers: list, label: str, release: Path):
        self.cluster, self.workers, self.label, self.release = cluster, workers, label, release
        self.removed: dict | None = None

    def __getstate__(self) -> dict:  # Tune saves its callbacks; the cluster stays here
        return {**self.__dict__, "cluster": None, "workers": []}

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        done = [t.trial_id for t in trials if t.status == "TERMINATED"]
        result = trial.last_result or {}
        if (self.removed is not None or trial.config.get(JOB) != self.label or not done
                or result.get("training_iteration") != 1):
            return
        node = next(n for n in self.workers if n.node_id == result["node_id"])
        self.removed = {"node_id": node.node_id, "trial_id": trial.trial_id,
                        "pid": result["pid"], "finished": done, "at": time.time()}
        self.cluster.remove_node(node, allow_graceful=False)
        self.release.touch()  # the trial, retried elsewhere, goes on


def progress(run_dir: Path) -> dict[str, list[dict]]:
    """Each trial's rows of Tune's progress.csv: epoch, node and process of every result."""
    out = {}
    for f in run_dir.glob("*_*/progress.csv"):
        rows = pd.read_csv(f)[["training_iteration", "node_id", "pid"]]
        out[f.parent.name.split("_", 1)[1]] = rows.to_dict("records")  # <Trainable>_<id>
    return out


def outcome(run, run_dir: Path) -> dict:
    table = run.table.set_index("trial_id")
    return {"status": table["status"].to_dict(), "epochs": table["epochs"].to_dict(),
            "labels": table["label"].to_dict(),
            "trials_csv": pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
            ["trial_id"].tolist(), "progress": progress(run_dir)}


def main(out_dir: Path, data_root: Path) -> None:
    start = time.monotonic()
    seconds = {}
    # No dashboard: nothing here reads it, and it is the slowest of the head's processes to
    # start. A removed node is found dead after 3 failed health checks a second apart (Ray's
    # defaults, 5 three seconds apart, left the retried trial waiting ~15 s).
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False,
        "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}})
    workers = [cluster.add_node(num_cpus=1, resources={NODE_RESOURCE.format(i): 1})
               for i in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    report = {"workers": [n.node_id for n in workers], "seconds": seconds}

    def done(phase: str) -> None:  # the test shows these lines if the driver runs too long
        seconds[phase] = time.monotonic() - start - sum(seconds.values())
        print(f"{phase}: {seconds[phase]:.1f} s", flush=True)

    done("cluster")
    ds = data.load("glyphs-digits", root=data_root, samples_per_class=PER_CLASS)
    jobs = [TrialJob(f"lr{lr}", ds, {"learning_rate": lr}) for lr in RATES]
    storage = out_dir / "results"

    script = out_dir / "driver.py"
    script.write_text(DRIVER.format(per_class=PER_CLASS, rates=RATES, storage=str(storage)))
    finished = kill_driver_after(script, data_root, storage / "killed", finished=1,
                                 ray_address=cluster.address)
    done("killed_driver")
    run = run_trials(jobs, "cnn", 2, name="killed", storage_path=storage, resume=True,
                     verbose=0)
    done("resumed")
    report["killed_driver"] = {"finished": sorted(finished),
                               **outcome(run, storage / "killed")}

    # Tune creates the trials in the order of their labels: the first two are pinned, one to
    # each worker, and the last goes where a CPU frees first; one at a time, it is asked for
    # once both pinned trials run.
    first, second, free = sorted(jobs, key=lambda j: j.label)
    pinned = [TrialJob(j.label, ds, j.config, resources={NODE_RESOURCE.format(i): 1})
              for i, j in enumerate((first, second))]
    HeldCNNTrainable.held, HeldCNNTrainable.release = free.label, str(out_dir / "release")
    remover = RemoveNodeOnce(cluster, workers, free.label, out_dir / "release")
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = "1"
    run = run_trials([*pinned, free], replace(cnn_spec(), trainable=HeldCNNTrainable), 2,
                     name="lost", storage_path=storage, verbose=0, max_failures=2,
                     callbacks=[remover])
    report["lost_node"] = {"removed": remover.removed, **outcome(run, storage / "lost"),
                           "pinned": {j.label: workers[i].node_id for i, j in enumerate(pinned)}}
    done("lost_node")
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, default=str))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
