"""Runs the multi-node fault scenarios of ``test_multinode.py`` on Ray's own test cluster
(``ray.cluster_utils.Cluster``: a head without CPUs and two worker nodes of one CPU each, all on
this machine) and writes what happened as JSON. A separate process: the test session already
runs a Ray instance of its own, and a Cluster cannot start beside ``ray.init`` in one process.

Usage: ``python multinode_driver.py OUT_DIR DATA_ROOT``. Two scenarios, one cluster:

1. ``killed_driver``: a driver process joins the cluster and runs three jobs; it is SIGKILLed
   once one has finished, and this process resumes the run with the cluster still up.
2. ``lost_node``: three jobs of two epochs; once one has finished, the worker node of a running
   trial is removed (``cluster.remove_node``) as soon as that trial has saved its epoch-1
   checkpoint; Tune retries it on the other node from that checkpoint.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pandas as pd
import ray
from ray.cluster_utils import Cluster
from ray.tune.callback import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: support.py

from support import kill_driver_after  # noqa: E402

from automl_chars import data  # noqa: E402
from automl_chars.runner.trials import TrialJob, run_trials  # noqa: E402

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


class RemoveNodeOnce(Callback):
    """Removes the worker node of the first trial that saves its epoch-1 checkpoint after
    another trial has finished (a spot node reclaimed mid-sweep); records which and what had
    finished then."""

    def __init__(self, cluster: Cluster, workers: list):
        self.cluster, self.workers = cluster, workers
        self.removed: dict | None = None

    def __getstate__(self) -> dict:  # Tune saves its callbacks; the cluster stays here
        return {**self.__dict__, "cluster": None, "workers": []}

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        done = [t.trial_id for t in trials if t.status == "TERMINATED"]
        result = trial.last_result or {}
        if self.removed is not None or not done or result.get("training_iteration") != 1:
            return
        node = next(n for n in self.workers if n.node_id == result["node_id"])
        self.removed = {"node_id": node.node_id, "trial_id": trial.trial_id,
                        "pid": result["pid"], "finished": done}
        self.cluster.remove_node(node, allow_graceful=False)


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
            "trials_csv": pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
            ["trial_id"].tolist(), "progress": progress(run_dir)}


def main(out_dir: Path, data_root: Path) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    report = {"workers": [n.node_id for n in workers]}
    ds = data.load("glyphs-digits", root=data_root, samples_per_class=PER_CLASS)
    jobs = [TrialJob(f"lr{lr}", ds, {"learning_rate": lr}) for lr in RATES]
    storage = out_dir / "results"

    script = out_dir / "driver.py"
    script.write_text(DRIVER.format(per_class=PER_CLASS, rates=RATES, storage=str(storage)))
    finished = kill_driver_after(script, data_root, storage / "killed", finished=1,
                                 ray_address=cluster.address)
    run = run_trials(jobs, "cnn", 2, name="killed", storage_path=storage, resume=True,
                     verbose=0)
    report["killed_driver"] = {"finished": sorted(finished),
                               **outcome(run, storage / "killed")}

    remover = RemoveNodeOnce(cluster, workers)
    run = run_trials(jobs, "cnn", 2, name="lost", storage_path=storage, verbose=0,
                     max_failures=2, callbacks=[remover])
    report["lost_node"] = {"removed": remover.removed, **outcome(run, storage / "lost")}
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, default=str))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
