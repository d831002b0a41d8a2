"""``run_bohb``: a resumable BOHB sweep with Ray Tune's ``TuneBOHB`` and ``HyperBandForBOHB``.

This is the one place that builds the searcher and the scheduler (:func:`build_search`), so a
warm-start searcher can wrap ``TuneBOHB`` later without touching the rest.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import ray
from ConfigSpace import ConfigurationSpace
from ray import tune
from ray.tune.logger import TBXLoggerCallback

from automl_chars.data import Dataset, load
from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.search.presets import BOHBPreset, get_preset
from automl_chars.search.progress import TrialLineCallback
from automl_chars.search.result import (
    METRIC_COLUMNS,
    SETTINGS_FILE,
    SUMMARY_FILE,
    SweepResult,
    pick_incumbent,
    write_json,
)
from automl_chars.search.scheduler import ResumableHyperBandForBOHB, SchedulerStateCallback
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.spaces import cnn_space
from automl_chars.spaces.values import SUGGESTED_BY, plain_value, strip_meta
from automl_chars.trainables.cnn import CNNTrainable, evaluate_checkpoint
from automl_chars.training.fidelity import Fidelity

logger = logging.getLogger(__name__)

METRIC, MODE = "val_acc", "max"
#: Where sweeps go when neither ``storage_path`` nor ``$AUTOML_CHARS_RESULTS`` is given.
DEFAULT_STORAGE = "~/automl_chars_results"


@dataclass(frozen=True)
class SweepSettings:
    """Everything that defines a sweep; saved as ``automl_chars.json`` and checked on resume."""

    dataset: str
    dataset_fingerprint: str
    preset: str
    eta: int
    min_budget: int
    max_budget: int
    num_samples: int
    fidelity: str
    gpus_per_trial: float
    cpus_per_trial: float
    seed: int

    def __post_init__(self) -> None:
        if self.gpus_per_trial < 0 or self.cpus_per_trial <= 0:
            raise InvalidConfigError(
                f"gpus_per_trial must be >= 0 and cpus_per_trial > 0 "
                f"(got {self.gpus_per_trial}, {self.cpus_per_trial})."
            )
        if self.num_samples < 1:
            raise InvalidConfigError(f"num_samples must be >= 1, got {self.num_samples}.")

    @property
    def resources(self) -> dict[str, float]:
        return {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}


#: The settings that make a sweep what it is; resuming with other values is refused.
#: (Resources may change between runs: a sweep can resume on another cluster.)
DEFINING_SETTINGS = ("dataset", "dataset_fingerprint", "preset", "fidelity", "seed", "num_samples")


def check_same_sweep(exp_dir: Path, settings: SweepSettings) -> None:
    """Raises :class:`ExperimentStateError` if ``exp_dir`` holds a sweep defined otherwise."""
    saved_file = exp_dir / SETTINGS_FILE
    if not saved_file.exists():
        return
    saved = json.loads(saved_file.read_text())
    diff = {k: (saved[k], getattr(settings, k)) for k in DEFINING_SETTINGS
            if k in saved and saved[k] != getattr(settings, k)}
    if diff:
        raise ExperimentStateError(
            f"Cannot resume {exp_dir} with different settings (saved, given): {diff}. Use the "
            f"saved ones, or another name/storage path for a new sweep."
        )


def resolve_preset(preset: str | BOHBPreset | None, eta: int | None, min_budget: int | None,
                   max_budget: int | None) -> BOHBPreset:
    """The preset, or one full HyperBand round from explicit ``eta``/budgets (3, 1, 9 by default)."""
    if preset is not None:
        given = {k: v for k, v in {"eta": eta, "min_budget": min_budget, "max_budget": max_budget}.items()
                 if v is not None}
        if given:
            raise InvalidConfigError(f"Pass either a preset or {sorted(given)}, not both.")
        return get_preset(preset)
    base = BOHBPreset(eta or 3, min_budget or 1, max_budget or 9, 1)
    return BOHBPreset(base.eta, base.min_budget, base.max_budget, base.s_max + 1)


def build_search(space: ConfigurationSpace, preset: BOHBPreset, seed: int,
                 bohb_config: dict | None = None) -> tuple[BOHBSearcher, ResumableHyperBandForBOHB]:
    """The searcher and scheduler of a BOHB sweep (the budget is ``training_iteration``)."""
    searcher = BOHBSearcher(space, bohb_config=bohb_config, metric=METRIC, mode=MODE, seed=seed)
    scheduler = ResumableHyperBandForBOHB(
        time_attr="training_iteration", metric=METRIC, mode=MODE, min_t=preset.min_budget,
        max_t=preset.max_budget, reduction_factor=preset.eta,
    )
    return searcher, scheduler


def trial_dirname(trial) -> str:
    """Short trial folder names (Ray's default embeds the configuration and overflows paths)."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def experiment_dir(storage_path: str | os.PathLike | None, name: str) -> Path:
    """``<storage>/<name>``; storage defaults to ``$AUTOML_CHARS_RESULTS`` or ``~/automl_chars_results``.

    On a multi-node cluster, use a folder every node mounts (NFS, EFS): Ray rejects a path
    local to the head node. Cloud URIs (``s3://``) are not supported yet.
    """
    raw = str(storage_path or os.environ.get("AUTOML_CHARS_RESULTS") or DEFAULT_STORAGE)
    if "://" in raw:
        raise InvalidConfigError(
            f"storage_path {raw!r}: cloud URIs are not supported yet; use a folder on a "
            f"filesystem every node mounts (e.g. NFS or EFS)."
        )
    return Path(raw).expanduser().resolve() / name


def can_resume(exp_dir: Path) -> bool:
    """Whether ``exp_dir`` holds Ray Tune state that :func:`run_bohb` can resume."""
    return tune.Tuner.can_restore(str(exp_dir))


def check_gpus(gpus_per_trial: float, node_gpus: list[float], autoscaling: bool) -> None:
    """Raises when trials ask for more GPUs than any node has (``node_gpus``: each live node's)
    and the cluster cannot add such nodes.

    On an autoscaling cluster (``ray up``) GPU workers may still be launched, so trials wait
    for them, as Ray Tune itself does.
    """
    largest = max(node_gpus, default=0)
    if gpus_per_trial <= 0 or largest >= gpus_per_trial:
        return
    if autoscaling:
        logger.warning("No node has %s GPU(s) yet; trials wait until the autoscaler adds one.",
                       gpus_per_trial)
        return
    if largest == 0:
        raise InvalidConfigError(
            f"gpus_per_trial={gpus_per_trial} but the Ray cluster has no GPU. Use "
            f"gpus_per_trial=0 (CPU only) or connect to a cluster with GPU nodes (ray up cluster.yaml)."
        )
    raise InvalidConfigError(
        f"gpus_per_trial={gpus_per_trial} but the largest node has {largest:g} GPU(s), and a "
        f"trial runs on one node. Use gpus_per_trial <= {largest:g}."
    )


def _autoscaling() -> bool:
    # The cluster launcher (`ray up`) leaves its config on the head node; Ray Tune tells an
    # autoscaling cluster from a fixed one by this file too (ray.tune.execution.cluster_info).
    # Not the autoscaler's status key in Ray's KV store: every local head publishes that one.
    return Path("~/ray_bootstrap_config.yaml").expanduser().exists()


def _node_gpus() -> list[float]:
    return [float(n["Resources"].get("GPU", 0)) for n in ray.nodes() if n.get("Alive")]


def run_bohb(
    dataset: str | Dataset,
    space: ConfigurationSpace | None = None,
    preset: str | BOHBPreset | None = None,
    eta: int | None = None,
    min_budget: int | None = None,
    max_budget: int | None = None,
    num_samples: int | None = None,
    fidelity: str = "epochs",
    gpus_per_trial: float = 0.0,
    cpus_per_trial: float = 1,
    storage_path: str | os.PathLike | None = None,
    name: str | None = None,
    seed: int = 0,
    resume: bool = False,
    *,
    data_root: str | os.PathLike | None = None,
    bohb_config: dict | None = None,
    verbose: int = 1,
) -> SweepResult:
    """Runs (or resumes) a BOHB sweep of the CNN space on ``dataset``.

    Args:
        dataset: a registered name (see ``automl_chars.data.names()``) or a :class:`Dataset`.
        space: the ConfigSpace to search; defaults to ``cnn_space(seed)``. Hyperparameters it
            leaves out take the CNN space's defaults.
        preset: a seed-001 preset such as ``"3_1_9_20"`` (eta_min_max_iterations); excludes
            ``eta``/``min_budget``/``max_budget``, which otherwise default to 3, 1 and 9 with one
            full HyperBand round.
        num_samples: Ray trials; defaults to the preset's (see :class:`BOHBPreset`).
        fidelity: ``"epochs"`` or ``"subset"`` (see :mod:`automl_chars.training.fidelity`).
        gpus_per_trial: GPU share of each trial (e.g. 0.25 runs four trials per GPU); 0 = CPU.
        cpus_per_trial: CPUs reserved per trial.
        storage_path: results root (default ``$AUTOML_CHARS_RESULTS`` or ``~/automl_chars_results``).
        name: experiment folder name (default ``bohb-<dataset>-<preset>``).
        seed: seeds the space, BOHB's sampling and every trial's initialisation.
        resume: continue an interrupted sweep in ``storage_path/name``; finished trials are kept.
            A sweep that had finished is read back. Either way its defining settings
            (:data:`DEFINING_SETTINGS`, the dataset's contents included) must be the same.
        data_root: data folder for datasets given by name.
        bohb_config: extra options of hpbandster's BOHB config generator (e.g. ``top_n_percent``).
        verbose: 0 silent, 1 one line per finished trial, 2-4 Ray Tune's own output (its
            verbosity 1-3) instead.
    """
    bohb = resolve_preset(preset, eta, min_budget, max_budget)
    fid = Fidelity(fidelity, bohb.max_budget, data_seed=seed)
    ds = load(dataset, root=data_root)
    settings = SweepSettings(
        dataset=ds.name, dataset_fingerprint=ds.fingerprint(), preset=bohb.name, eta=bohb.eta,
        min_budget=bohb.min_budget, max_budget=bohb.max_budget, num_samples=num_samples or bohb.num_samples,
        fidelity=fid.kind, gpus_per_trial=float(gpus_per_trial),
        cpus_per_trial=float(cpus_per_trial), seed=seed,
    )
    exp_dir = experiment_dir(storage_path, name or f"bohb-{ds.name}-{bohb.name}")
    if resume and (exp_dir / SUMMARY_FILE).exists():  # finished earlier: nothing left to run
        check_same_sweep(exp_dir, settings)
        return SweepResult.load(exp_dir)
    if not ray.is_initialized():
        ray.init(configure_logging=False)
    check_gpus(settings.gpus_per_trial, _node_gpus(), _autoscaling())

    trainable = tune.with_resources(
        tune.with_parameters(CNNTrainable, dataset=ds, fidelity=fid, seed=seed), settings.resources
    )
    if resume:
        tuner = _restore(exp_dir, trainable, settings)
    else:
        # A settings file alone (killed before Ray saved anything) is simply started again.
        if can_resume(exp_dir):
            raise ExperimentStateError(
                f"An experiment already exists in {exp_dir}. Pass resume=True (CLI: --resume) to "
                f"continue it, or choose another name/storage path."
            )
        exp_dir.mkdir(parents=True, exist_ok=True)
        write_json(exp_dir / SETTINGS_FILE, {**asdict(settings), "started_at": time.time()})
        np.random.seed(seed)  # hpbandster's BOHB draws from numpy's global generator
        searcher, scheduler = build_search(space if space is not None else cnn_space(seed), bohb,
                                           seed, bohb_config)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher, scheduler=scheduler, num_samples=settings.num_samples,
                reuse_actors=True, trial_dirname_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=exp_dir.name, storage_path=str(exp_dir.parent), verbose=max(0, verbose - 1),
                callbacks=[SchedulerStateCallback(scheduler), TBXLoggerCallback(),
                           *([TrialLineCallback(settings.num_samples, str(exp_dir))]
                             if verbose >= 1 else [])],
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2),
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            ),
        )
    with _environment(_tune_environment(verbose)):
        grid = tuner.fit()
    return finish(grid, ds, exp_dir, settings)


def _tune_environment(verbose: int) -> dict[str, str]:
    """Settings Tune reads from the environment during ``fit()``; the user's own values win."""
    env = {
        # Tune forces an experiment snapshot whenever a trial saved num_to_keep checkpoints since
        # the last one; with a checkpoint every budget unit that is frequent by design (resume
        # needs it), so its warning about it is noise.
        "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    }
    if verbose <= 1:
        # Tune's newer console output prints a heading even at verbose=0, with a TensorBoard
        # path outside the experiment folder; TrialLineCallback prints the right one instead.
        env["RAY_AIR_NEW_OUTPUT"] = "0"
    return {k: v for k, v in env.items() if k not in os.environ}


@contextmanager
def _environment(env: dict[str, str]):
    """Sets ``env`` for the duration of the block, then removes it again."""
    os.environ.update(env)
    try:
        yield
    finally:
        for key in env:
            os.environ.pop(key, None)


def _restore(exp_dir: Path, trainable, settings: SweepSettings) -> tune.Tuner:
    if not can_resume(exp_dir):
        raise ExperimentStateError(
            f"Nothing to resume in {exp_dir}: no Ray Tune experiment state there. Run without "
            f"resume to start it."
        )
    check_same_sweep(exp_dir, settings)
    return tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True,
                              resume_errored=False)


def result_trial_id(r) -> str:
    """Ray's trial id of a ``Result`` (from its folder name when it never reported)."""
    return (r.metrics or {}).get("trial_id") or Path(r.path).name.rsplit("_", 1)[-1]


def trials_frame(grid) -> pd.DataFrame:
    """One row per trial of a ``ResultGrid`` (see :attr:`SweepResult.trials`)."""
    rows = []
    for r in grid:
        m = r.metrics or {}
        config = dict(r.config or {})
        row = {
            "trial_id": result_trial_id(r),
            "status": "ERROR" if r.error else "TERMINATED",
            SUGGESTED_BY: config.get(SUGGESTED_BY, "given"),
            "budget": m.get("training_iteration", 0),
            "device": m.get("device"),
            **{k: m.get(k) for k in METRIC_COLUMNS},
            "timestamp": m.get("timestamp"),
            "error": str(r.error).splitlines()[0][:300] if r.error else "",
            **{f"config/{k}": plain_value(v) for k, v in sorted(strip_meta(config).items())},
        }
        rows.append(row)
    return pd.DataFrame(rows).sort_values("trial_id", kind="stable").reset_index(drop=True)


def finish(grid, dataset: Dataset, exp_dir: Path, settings: SweepSettings) -> SweepResult:
    """Builds, evaluates (test split, once) and saves the :class:`SweepResult`."""
    trials = trials_frame(grid)
    best_id = pick_incumbent(trials, METRIC)
    best = next(r for r in grid if result_trial_id(r) == best_id)
    incumbent = {k: plain_value(v) for k, v in strip_meta(best.config).items()}
    if best.checkpoint is None:
        raise ExperimentStateError(f"Incumbent trial {best_id} has no checkpoint to evaluate.")
    with best.checkpoint.as_directory() as ckpt:
        test_acc = evaluate_checkpoint(ckpt, dataset, split="test")
    saved = json.loads((exp_dir / SETTINGS_FILE).read_text())
    # The saved start time, the current resources (a resumed sweep may run on other hardware).
    result = SweepResult(trials, incumbent, best_id, test_acc, exp_dir, {**saved, **asdict(settings)})
    result.save()
    return result
