"""``run_supernet``: seed 002's experiment on any dataset, every part a Ray trial.

Three runs of :func:`~automl_chars.runner.trials.run_trials` (each resumable and interrupt-safe):
the supernet with one sampler (:class:`SupernetTrainable`), every subnet standalone with the
same epochs and training hyperparameters (:class:`SubnetTrainable`; shared by every sampler of
the same experiment, so a second sampler reuses them), and the top-k subnets by supernet
validation top-1, extracted and fine-tuned. Then every subnet of the final supernet is evaluated
on the test split, and the table (with each subnet's parameters, FLOPs and latency, as its
standalone trial measured them: :func:`~automl_chars.supernet.select.best_subnet` picks the best
one within cost limits), correlations and costs are written (plots:
:func:`automl_chars.reporting.supernet.plot_result`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from automl_chars.data import Dataset, load
from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.layout import SUMMARY_FILE, experiment_dir
from automl_chars.runner.core import can_resume
from automl_chars.runner.trials import TrialJob, TrialsResult, run_trials
from automl_chars.spaces.supernet import subnet_space
from automl_chars.supernet.model import SubnetSpec
from automl_chars.supernet.ranking import best, correlations, ordering_errors, ranking_table
from automl_chars.supernet.result import SupernetResult
from automl_chars.supernet.space import SupernetSpace
from automl_chars.trainables.supernet import (
    evaluate_supernet_subnet,
    load_supernet,
    supernet_settings,
)
from automl_chars.training.objective import LIMITED_COSTS

#: run_supernet trains every subnet standalone: larger spaces are refused.
MAX_STANDALONE = 64
SUPERNET_LABEL = "supernet"


def run_supernet(
    dataset: str | Dataset,
    sampler: str = "uniform",
    epochs: int = 3,
    storage_path: str | os.PathLike | None = None,
    seed: int = 0,
    gpus_per_trial: float = 0.0,
    *,
    space: SupernetSpace | Mapping | None = None,
    config: Mapping | None = None,
    top_k: int = 3,
    finetune_epochs: int = 1,
    finetune_lr_factor: float = 0.1,
    name: str | None = None,
    resume: bool = False,
    cpus_per_trial: float = 1.0,
    max_failures: int = 2,
    data_root: str | os.PathLike | None = None,
    address: str | None = None,
    verbose: int = 1,
) -> SupernetResult:
    """Trains a supernet with ``sampler`` and every subnet standalone, and compares the rankings.

    Args:
        dataset: a registered name or a :class:`Dataset`.
        sampler: a name in :data:`~automl_chars.supernet.SAMPLERS`.
        epochs: epochs of the supernet and of each standalone subnet.
        storage_path: results root (see :func:`~automl_chars.layout.experiment_dir`).
        seed: seeds every trial.
        gpus_per_trial: GPU share of each trial (0: CPU); costs are then GPU-seconds.
        space: the supernet's architecture space (default: seed 002's 9 subnets).
        config: training hyperparameters (``learning_rate``, ``batch_size``, ...; the standalone
            subnets use the same ones) and sampler settings (``epsilon``, ``warmup``, ...).
        top_k: subnets fine-tuned from the supernet's weights (0: none).
        finetune_epochs: their fine-tuning epochs.
        finetune_lr_factor: fine-tuning's learning rate relative to training's (a trained
            network at the full rate would first lose accuracy).
        name: experiment folder (default ``supernet-<dataset>``); the sampler's results go to
            ``<name>/<sampler>``, the standalone runs to ``<name>/standalone``.
        resume: continue an interrupted run (finished parts are read back).

    Raises :class:`~automl_chars.errors.SweepInterrupted` when stopped; everything else about the
    arguments is checked before any training starts.
    """
    arch_space = SupernetSpace.from_dict(space)
    supernet_config = {**dict(config or {}), "sampler": sampler, "supernet": arch_space.to_dict()}
    supernet_settings(supernet_config)  # an unknown sampler or setting raises here
    training = {k: v for k, v in dict(config or {}).items() if k in subnet_space()}
    _check_arguments(arch_space, epochs, top_k, finetune_epochs)
    if not 0 < finetune_lr_factor <= 1:
        raise InvalidConfigError(f"run_supernet: finetune_lr_factor must be in (0, 1], got "
                                 f"{finetune_lr_factor!r}.")
    finetuning = {**training, "learning_rate": finetune_lr_factor * supernet_settings(
        supernet_config).optimizer.learning_rate}
    ds = load(dataset, root=data_root)
    root = experiment_dir(storage_path, name or f"supernet-{ds.name}")
    if root.name == "standalone" or sampler == "standalone":
        raise InvalidConfigError("'standalone' is the folder of the standalone runs; choose "
                                 "another experiment name.")
    common = {"seed": seed, "gpus_per_trial": gpus_per_trial, "cpus_per_trial": cpus_per_trial,
              "max_failures": max_failures, "address": address, "verbose": verbose}

    names = [arch_space.name(a) for a in arch_space.archs]
    sup = _phase([TrialJob(SUPERNET_LABEL, ds, supernet_config,
                           description=f"supernet, sampler {sampler}")],
                 "supernet", epochs, root / sampler / "supernet", resume, **common)
    standalone = _phase(
        [TrialJob(n, ds, {**training, "subnet": SubnetSpec(arch_space, a).to_dict()},
                  description=f"standalone subnet {n}")
         for n, a in zip(names, arch_space.archs)],
        "subnet", epochs, root / "standalone", resume, reuse=True, **common)

    ckpt = _finished_checkpoint(sup, SUPERNET_LABEL)
    supernet, state = load_supernet(ckpt, ds)
    evaluation = supernet_settings(state["config"]).evaluation
    test_acc = {n: evaluate_supernet_subnet(supernet, n, ds, "test", evaluation) for n in names}
    val_acc = state["extra"]["subnet_acc"]
    sampler_state = state["extra"]["sampler"]
    top = sorted(val_acc, key=lambda n: (-val_acc[n], names.index(n)))[:top_k]
    finetune = None
    if top:
        finetune = _phase(
            [TrialJob(n, ds, {**finetuning, "subnet": SubnetSpec(arch_space, n).to_dict(),
                              "init_checkpoint": str(ckpt)},
                      description=f"fine-tuned subnet {n}, sampler {sampler}") for n in top],
            "subnet", finetune_epochs, root / sampler / "finetune", resume, **common)

    st = standalone.table.set_index("label")
    ft = finetune.table.set_index("label") if finetune is not None else pd.DataFrame()
    table = ranking_table(
        test_acc, {n: float(st.loc[n, "test_acc"]) for n in names},
        finetuned={n: float(ft.loc[n, "test_acc"]) for n in top},
        sampled=dict(zip(sampler_state["names"], sampler_state["counts"])), order=names)
    for cost in LIMITED_COSTS:  # each subnet's costs, as its standalone trial measured them
        table[cost] = [float(st.loc[n, cost]) for n in names]
    factor = gpus_per_trial if gpus_per_trial > 0 else cpus_per_trial
    costs = {"unit": "GPU-seconds" if gpus_per_trial > 0 else "CPU-seconds",
             "supernet": factor * float(sup.table["seconds"].sum()),
             "standalone": factor * float(st["seconds"].sum()),
             "finetune": factor * float(ft["seconds"].sum()) if top else 0.0}
    costs["ratio"] = costs["supernet"] / costs["standalone"] if costs["standalone"] else float("nan")
    summary = {
        "sampler": sampler, "dataset": ds.name, "epochs": epochs, "seed": seed,
        "space": arch_space.to_dict(), "config": supernet_config,
        **correlations(table), "supernet_top1": best(table, "supernet_acc"),
        "standalone_top1": best(table, "standalone_acc"),
        "supernet_val_acc": {n: float(val_acc[n]) for n in names if n in val_acc},
        "standalone_val_acc": {n: float(st.loc[n, "val_acc"]) for n in names},
        "costs": costs, "pruned": sampler_state["pruned"],
        "finetune": _finetune_summary(table, ft, top, finetune_epochs,
                                      finetuning["learning_rate"]),
        "runs": {"supernet": str(sup.path), "standalone": str(standalone.path),
                 "finetune": str(finetune.path) if finetune is not None else None},
    }
    summary["top1_match"] = summary["supernet_top1"] == summary["standalone_top1"]
    history = _history(sampler_state)
    result = SupernetResult(table, history, summary, root / sampler)
    result.save()
    return result


def _check_arguments(space: SupernetSpace, epochs: int, top_k: int, finetune_epochs: int) -> None:
    problems = []
    if space.size > MAX_STANDALONE:
        problems.append(f"the space has {space.size} subnets and run_supernet trains each one "
                        f"standalone (at most {MAX_STANDALONE}); use a smaller space, or "
                        f"SupernetTrainable / run_bohb(spec='supernet') for the supernet alone")
    for what, value, low in (("epochs", epochs, 1), ("top_k", top_k, 0),
                             ("finetune_epochs", finetune_epochs, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"{what} must be a whole number >= {low}, got {value!r}")
    if isinstance(top_k, int) and top_k > space.size:
        problems.append(f"top_k ({top_k}) exceeds the number of subnets ({space.size})")
    if problems:
        raise InvalidConfigError("run_supernet: " + "; ".join(problems) + ".")


def _phase(jobs: list[TrialJob], spec: str, epochs: int, exp: Path, resume: bool,
           reuse: bool = False, **common) -> TrialsResult:
    """One run of trials in ``exp``: resumed (or read back) with ``resume`` where it exists;
    with ``reuse`` a finished one is read back without ``resume`` too (the same jobs only)."""
    finished = (exp / SUMMARY_FILE).exists()
    again = (resume and (finished or can_resume(exp))) or (reuse and finished)
    return run_trials(jobs, spec, epochs, name=exp.name, storage_path=exp.parent, resume=again,
                      **common)


def _finished_checkpoint(run: TrialsResult, label: str) -> Path:
    row = run.row(label)
    if row["status"] != "TERMINATED":
        raise ExperimentStateError(f"The supernet trial did not finish ({row['status']}: "
                                   f"{row['error']}); see {run.path}.")
    return run.checkpoint(label)


def _finetune_summary(table: pd.DataFrame, ft: pd.DataFrame, top: list[str], epochs: int,
                      learning_rate: float) -> dict:
    if not top:
        return {}
    chosen = max(top, key=lambda n: (float(ft.loc[n, "val_acc"]), -top.index(n)))
    return {
        "subnets": top, "epochs": epochs, "learning_rate": learning_rate, "chosen": chosen,
        "finetuned_val_acc": {n: float(ft.loc[n, "val_acc"]) for n in top},
        "right_top1": chosen == best(table, "standalone_acc"),
        "errors_before": ordering_errors(table, "supernet_acc", top),
        "errors_after": ordering_errors(table, "finetuned_acc", top),
    }


def _history(state: Mapping) -> pd.DataFrame:
    """The sampler's snapshots as long rows: round, subnet, running accuracy."""
    rows = [{"round": int(h[0]), "subnet": name, "running_acc": acc}
            for h in state["history"] for name, acc in zip(state["names"], h[1:])]
    return pd.DataFrame(rows, columns=["round", "subnet", "running_acc"])


__all__ = ["MAX_STANDALONE", "run_supernet"]
