"""Data-parallel trials: one trial of a sweep trained by several Ray Train workers (DDP).

For a model too big for one GPU's share, or a trial that should use several GPUs at once,
:class:`DataParallelTrainable` is what Tune runs instead of the Trainable itself. Each trial
starts a Ray Train run (``TorchTrainer``, ``ScalingConfig(num_workers=N, use_gpu=...)``; gloo on
CPUs, NCCL on GPUs) whose workers drive the Trainable's own hooks (``setup``, ``step``,
``save_checkpoint``, ``load_checkpoint``), so the training step, the failures, the metrics and the
checkpoint format (:mod:`automl_chars.checkpoints`) are the single-process trial's:

- every worker builds the same model from the same seed; ``ray.train.torch.prepare_model`` wraps
  it in ``DistributedDataParallel``, which averages the gradients, so the replicas stay equal
  (every result reports ``replica_spread``, the largest difference of the replicas' parameter
  fingerprints: 0 when they are in step);
- each budget unit's data is split by ``DistributedSampler`` (the same shards on a resume); each
  worker trains on its shard with ``ceil(batch_size / N)`` images per step, so a step still sees
  ``batch_size`` images and the learning rate keeps its meaning; the loss, accuracy and samples
  reported are the sums over the workers;
- every worker reports its result with ``ray.train.report``, rank 0 with the checkpoint; a Ray
  Train callback hands rank 0's result and the checkpoint to the Tune trial, whose ``step()``
  returns it and whose ``save_checkpoint`` copies it. A trial trains one unit per ``step()``
  (the workers wait for the next one), so HyperBandForBOHB's decisions land where they would on
  one process: a trial paused at a rung ends its Ray Train run (``cleanup``), and when it is
  promoted Tune restores its checkpoint into a new one (Ray Train runs cannot pause; they start
  again from the package's checkpoint, ``run_start_budget`` saying from which unit).

Ray 2.60's Train is "V2", whose trainers are not Tune Trainables (passing a ``TorchTrainer`` to
``Tuner`` is Train V1's deprecated pattern); V2 runs the trainer inside a Tune trial, as here.
The workers' augmentation and dropout draw from generators seeded alike (shards differ, so the
images do not); all workers' generators then stay equal, which is what makes rank 0's saved RNG
state resume every worker exactly. BSGuard is off (a micro-batch retry on one worker would
break DDP's all-reduces in step): running out of memory fails the run, which Tune retries from
the last checkpoint (``max_failures``). AutotuneLR and Trainables with their own training unit
(supernets) cannot be data-parallel yet; :func:`check_data_parallel` says so before a sweep.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from ray import tune
from ray.train.v2.api.callback import UserCallback
from ray.util.queue import Queue
from torch.utils.data import DistributedSampler

from automl_chars.checkpoints import CHECKPOINT_FILE, check_trial_state
from automl_chars.errors import InvalidConfigError, NonFiniteLossError
from automl_chars.spaces.values import plain_value
from automl_chars.trainables.base import JOB, SupervisedTrainable
from automl_chars.training import DeviceData, EpochStats, train_epoch

#: How often (seconds) Ray Train's controller polls its workers, and so hands a unit's result
#: to the trial (Ray's default, 2 s, would add up to that to every budget unit). Ray Train reads
#: it from the environment of the process that starts the run; a value set there wins.
POLL_INTERVAL_S = "0.2"
#: Seconds a stopping trial waits for its Ray Train run to end before leaving it to Ray (its
#: actors end with the trial's process; Ray Train frees their placement group).
STOP_TIMEOUT_S = 60.0
_GO, _STOP = "go", "stop"
#: The Tune trial's own resources: next to none (it waits on its workers, which Ray Train
#: places with theirs). Tune refuses a request of nothing at all (``{"cpu": 0}``: "an empty head
#: and zero worker bundles"), and any CPU share would keep a worker off a full node; one byte of
#: Ray's ``memory`` resource is neither.
TRIAL_RESOURCES = {"memory": 1}


def supports_data_parallel(trainable: type) -> bool:
    """Whether ``trainable``'s trials can train data-parallel: a :class:`SupervisedTrainable`
    whose budget unit is the shared loop (a supernet's sampler rounds are not)."""
    return (isinstance(trainable, type) and issubclass(trainable, SupervisedTrainable)
            and trainable.train_unit is SupervisedTrainable.train_unit)


def check_data_parallel(trainable: type, parameters: Mapping[str, Any]) -> None:
    """Raises :class:`InvalidConfigError` when ``trainable`` with ``parameters`` (its
    ``tune.with_parameters`` ones) cannot be trained by several workers."""
    name = getattr(trainable, "__name__", repr(trainable))
    if not supports_data_parallel(trainable):
        raise InvalidConfigError(
            f"{name} cannot train data-parallel (workers_per_trial > 1): its budget unit is "
            f"not the shared training loop. Use workers_per_trial=1.")
    if parameters.get("autotune_lr"):
        raise InvalidConfigError(
            "AutotuneLR cannot run in data-parallel trials yet (its short runs train one "
            "process's model). Drop autotune_lr or use workers_per_trial=1.")


class DataParallelWorker:
    """Mixed into a Trainable's class on each Ray Train worker: the device Ray Train gave the
    worker, the model wrapped in DDP, a budget unit on this worker's shard."""

    def choose_device(self) -> torch.device:
        return ray.train.torch.get_device()

    def prepare(self) -> None:
        """Wraps the built model in DDP (a collective: every worker calls it, after any
        restore); a configuration that could not be built has nothing to wrap."""
        self.replica = (ray.train.torch.prepare_model(self.model, move_to_device=False)
                        if self.model is not None else None)

    def train_unit(self, data: DeviceData) -> EpochStats:
        world, rank = dist.get_world_size(), dist.get_rank()
        sampler = DistributedSampler(range(len(data)), num_replicas=world, rank=rank,
                                     shuffle=True, seed=self.seed)
        sampler.set_epoch(self.units_done)  # each unit its own split, the same on a resume
        shard = data.subset(torch.tensor(list(sampler), dtype=torch.int64))
        s = self.trial_settings
        model = self.model
        penalty = None if self.penalty is None else (lambda _replica: self.penalty(model))
        try:
            stats = train_epoch(self.replica, self.optimizer, shard,
                                math.ceil(s.optimizer.batch_size / world), self.generator,
                                s.augment, guard=None, penalty=penalty)
            local = [stats.loss * stats.samples, stats.accuracy * stats.samples, stats.samples]
        except NonFiniteLossError:  # decided together below: every worker fails the trial
            stats, local = None, [math.nan, math.nan, 0.0]
        total = torch.tensor(local, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        loss_sum, correct, samples = total.tolist()
        if not math.isfinite(loss_sum):
            raise NonFiniteLossError(f"the training loss is {loss_sum} (diverged) on at least "
                                     f"one of {world} workers")
        seconds = stats.seconds if stats is not None else 0.0
        if samples == 0:
            return EpochStats(math.nan, math.nan, 0, seconds)
        return EpochStats(loss_sum / samples, correct / samples, int(samples), seconds)

    def replica_spread(self) -> float:
        """The largest difference between the workers' parameter fingerprints (sum and sum of
        squares, in float64): 0 while DDP keeps the replicas equal."""
        params = [p.detach().double() for p in self.model.parameters()]
        mine = torch.stack([sum(p.sum() for p in params), sum(p.square().sum() for p in params)])
        mine = mine.to(self.device)
        every = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
        dist.all_gather(every, mine)
        every = torch.stack(every)
        return float((every.max(0).values - every.min(0).values).max())

    def step(self) -> dict:
        result = super().step()
        result["workers"] = dist.get_world_size()
        if self.failure is None and self.infeasible is None:
            result["replica_spread"] = self.replica_spread()
        return result


def build_worker(trainable: type[SupervisedTrainable], config: dict,
                 parameters: Mapping[str, Any]) -> SupervisedTrainable:
    """``trainable``'s hooks on this Ray Train worker, set up for ``config``. Tune's
    ``Trainable.__init__`` is skipped: it opens a trial log folder and monitors that a worker,
    driven by :func:`worker_loop` rather than by Tune, has no use for."""
    # named as the Trainable: its checkpoints record that name, as a one-process trial's do
    cls = type(trainable.__name__, (DataParallelWorker, trainable),
               {"__qualname__": trainable.__qualname__})
    worker = cls.__new__(cls)
    worker.setup(dict(config), **parameters)
    return worker


def _next_unit(go: Queue, device: torch.device) -> bool:
    """Waits for the trial's next ``step()`` (rank 0 asks, then tells the others): True to
    train a unit, False to end the run."""
    flag = torch.zeros(1, dtype=torch.int64, device=device)
    if dist.get_rank() == 0:
        flag[0] = int(go.get() == _GO)
    dist.broadcast(flag, 0)
    return bool(flag.item())


def worker_loop(loop_config: dict) -> None:
    """What each Ray Train worker runs: set up the trial (restored from ``restore``, a
    checkpoint's bytes, when given), then one budget unit per ``go``, each reported with
    ``ray.train.report`` (rank 0 with the checkpoint)."""
    worker = build_worker(loop_config["trainable"], loop_config["config"],
                          ray.get(loop_config["parameters"]))
    if loop_config.get("restore") is not None:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, CHECKPOINT_FILE).write_bytes(ray.get(loop_config["restore"]))
            worker.load_checkpoint(tmp)
    worker.prepare()
    start = worker.units_done
    rank = ray.train.get_context().get_world_rank()
    while _next_unit(loop_config["go"], worker.device):
        result = {**worker.step(), "run_start_budget": start}
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
            checkpoint = None
            if rank == 0:
                worker.save_checkpoint(tmp)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(plain_value(result), checkpoint=checkpoint)


class ForwardReports(UserCallback):
    """Ray Train callback (on its controller) that hands rank 0's result and the persisted
    checkpoint of every report to the trial, through a Ray queue."""

    def __init__(self, queue: Queue):
        self.queue = queue

    def after_report(self, run_context, metrics, checkpoint) -> None:
        self.queue.put((metrics[0], checkpoint))


class TrainRun:
    """One Ray Train run of a trial, from its start (or a restored checkpoint) until the trial
    stops or pauses; ``fit()`` runs in a thread of the trial's actor."""

    def __init__(self, loop_config: dict, scaling: ray.train.ScalingConfig, storage: str,
                 name: str):
        self.go = Queue(actor_options={"num_cpus": 0})
        self.results = Queue(actor_options={"num_cpus": 0})  # unbounded: Train never waits
        self.storage, self.name = storage, name
        self.error: BaseException | None = None
        os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", POLL_INTERVAL_S)
        self.trainer = ray.train.torch.TorchTrainer(
            worker_loop, train_loop_config={**loop_config, "go": self.go},
            scaling_config=scaling,
            run_config=ray.train.RunConfig(
                name=name, storage_path=storage, callbacks=[ForwardReports(self.results)],
                # the trial restores from the latest; one more covers a save racing a report
                checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
                # a failed worker fails the run: Tune retries the trial from its checkpoint
                failure_config=ray.train.FailureConfig(max_failures=0)))
        self.thread = threading.Thread(target=self._fit, daemon=True,
                                       name=f"ray-train-{name}")
        self.thread.start()

    def _fit(self) -> None:
        try:
            self.trainer.fit()
        except BaseException as err:  # handed to the trial's next step()
            self.error = err
        finally:
            self.results.put(None)

    def next_result(self) -> tuple[dict, Any]:
        """Trains one budget unit; returns rank 0's result and its checkpoint."""
        self.go.put(_GO)
        item = self.results.get()
        if item is None:
            raise RuntimeError(f"The trial's Ray Train run {self.name} ended: "
                               f"{type(self.error).__name__}: {self.error}") from self.error
        return item

    def stop(self) -> None:
        """Ends the run (the workers leave their loop at the next unit) and deletes its folder
        (checkpoints the trial has already copied)."""
        self.go.put(_STOP)
        self.thread.join(STOP_TIMEOUT_S)
        try:
            import pyarrow.fs

            fs, root = pyarrow.fs.FileSystem.from_uri(self.storage)
            fs.delete_dir(f"{root.rstrip('/')}/{self.name}")
        except (OSError, ValueError):
            pass  # a leftover folder of a few checkpoints, not worth failing a trial for


class DataParallelTrainable(tune.Trainable):
    """A Tune Trainable that trains each trial of ``inner`` on ``workers`` Ray Train workers.

    Pass everything with ``tune.with_parameters(DataParallelTrainable, inner=CNNTrainable,
    workers=2, dataset=..., fidelity=..., seed=..., ...)``: ``cpus_per_worker`` and
    ``gpus_per_worker`` (0 or 1) are each worker's resources; ``train_storage`` is where the
    Ray Train runs keep their checkpoints until the trial has copied them (shared storage or a
    URI on a multi-node cluster; default: the trial's folder). The rest are ``inner``'s own
    parameters. Give the trial itself next to no resources (``tune.with_resources(...,
    TRIAL_RESOURCES)``): its workers take theirs when Ray Train places them, and a trial whose
    workers find no room waits (Ray Train retries until they do). Tune cannot see the workers,
    and its cap on running trials (``max_concurrent_trials``) would count paused trials too,
    which deadlocks HyperBand (a rung's paused trials waiting for peers never started). Results
    are ``inner``'s, plus ``workers``, ``replica_spread`` and ``run_start_budget``.
    """

    def setup(self, config: dict, inner: type[SupervisedTrainable] | None = None,
              workers: int = 2, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
              train_storage: str | None = None, **parameters: Any) -> None:
        if inner is None:
            raise InvalidConfigError("DataParallelTrainable needs the Trainable to train: "
                                     "tune.with_parameters(DataParallelTrainable, inner=...).")
        check_data_parallel(inner, parameters)
        self.inner, self.workers = inner, int(workers)
        self.scaling = ray.train.ScalingConfig(
            num_workers=self.workers, use_gpu=gpus_per_worker > 0,
            resources_per_worker={"CPU": float(cpus_per_worker), "GPU": float(gpus_per_worker)})
        self.train_storage = train_storage or os.path.join(self.logdir, "train")
        jobs = parameters.get("jobs")
        if jobs is not None and config.get(JOB) in jobs:  # run_trials': this trial's job only
            parameters = {**parameters, "jobs": {config[JOB]: jobs[config[JOB]]}}
        # in the object store once, for every Ray Train run this trial starts
        self.parameters = ray.put(parameters)
        self.run: TrainRun | None = None
        self.restore_from = None  # a restored checkpoint's bytes, in the object store
        self.checkpoint = None  # the Ray Train checkpoint of the last result

    def step(self) -> dict:
        if self.run is None:
            loop_config = {"trainable": self.inner, "config": self.config,
                           "parameters": self.parameters, "restore": self.restore_from}
            self.run = TrainRun(loop_config, self.scaling, self.train_storage,
                                f"{self.trial_id or 'trial'}-{uuid.uuid4().hex[:8]}")
        result, self.checkpoint = self.run.next_result()
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        if self.checkpoint is None:  # saved before any unit: the restored state, if any
            if self.restore_from is not None:
                Path(checkpoint_dir, CHECKPOINT_FILE).write_bytes(ray.get(self.restore_from))
            return
        with self.checkpoint.as_directory() as folder:
            shutil.copyfile(Path(folder, CHECKPOINT_FILE), Path(checkpoint_dir, CHECKPOINT_FILE))

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        self._end_run()
        path = Path(checkpoint_dir, CHECKPOINT_FILE)
        check_trial_state(path, self.trial_name)  # here, naming it (the workers get a copy)
        self.restore_from = ray.put(path.read_bytes())
        self.checkpoint = None

    def cleanup(self) -> None:
        self._end_run()

    def _end_run(self) -> None:
        if self.run is not None:
            self.run.stop()
            self.run = None


__all__ = ["DataParallelTrainable", "DataParallelWorker", "ForwardReports", "POLL_INTERVAL_S",
           "TRIAL_RESOURCES",
           "TrainRun", "build_worker", "check_data_parallel", "supports_data_parallel",
           "worker_loop"]
