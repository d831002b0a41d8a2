"""``run_supernet``: seed 002's experiment on any dataset, every part a Ray trial.

Three runs of :func:`~automl_chars.runner.trials.run_trials` (each resumable and interrupt-safe):
the supernet with one sampler (:class:`SupernetTrainable`), every subnet (or a stratified sample
of them: ``standalone_sample``) standalone with the same epochs and training hyperparameters
(:class:`SubnetTrainable`; shared by every sampler of the same experiment, so a second sampler
reuses them), and the top-k subnets by supernet
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
from typing import Any

import pandas as pd

from automl_chars.data import Dataset, load
from automl_chars.errors import ExperimentStateError, InvalidConfigError
from automl_chars.layout import SUMMARY_FILE, experiment_dir
from automl_chars.runner.core import can_resume
from automl_chars.runner.trials import TrialJob, TrialsResult, run_trials
from automl_chars.spaces.supernet import subnet_space
from automl_chars.supernet.darts import ArchParameters
from automl_chars.supernet.model import SubnetSpec
from automl_chars.supernet.ranking import (
    best,
    correlations,
    ordering_errors,
    ranking_table,
    top1_regret,
)
from automl_chars.supernet.result import SupernetResult
from automl_chars.supernet.select import measure_subnet_costs
from automl_chars.supernet.space import SupernetSpace
from automl_chars.supernet.standalone import (
    StandaloneSample,
    estimated_standalone_cost,
    stratified_sample,
)
from automl_chars.trainables.darts import darts_settings
from automl_chars.trainables.supernet import (
    evaluate_supernet_subnet,
    load_supernet,
    supernet_settings,
)
from automl_chars.training.objective import LIMITED_COSTS

#: Subnets run_supernet trains standalone at most: larger spaces need ``standalone_sample``.
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
    restart_errored: bool = False,
    cpus_per_trial: float = 1.0,
    max_failures: int = 2,
    data_root: str | os.PathLike | None = None,
    address: str | None = None,
    verbose: int = 1,
    warm_start: Any = None,
    standalone_sample: int | None = None,
) -> SupernetResult:
    """Trains a supernet with ``sampler`` and every subnet standalone, and compares the rankings.

    Args:
        dataset: a registered name or a :class:`Dataset`.
        sampler: a name in :data:`~automl_chars.supernet.SAMPLERS`, or ``"darts"``: a DARTS
            search (:func:`~automl_chars.workflows.darts.run_darts`) instead of a sampler; its
            subnets are ranked by their probability under the architecture weights, its answer
            is the derived architecture (``summary["darts"]``: its standalone rank, ...).
        epochs: epochs of the supernet and of each standalone subnet.
        storage_path: results root (see :func:`~automl_chars.layout.experiment_dir`).
        seed: seeds every trial.
        gpus_per_trial: GPU share of each trial (0: CPU); costs are then GPU-seconds.
        space: the supernet's architecture space (default: seed 002's 9 subnets).
        config: training hyperparameters (``learning_rate``, ``batch_size``, ...; the standalone
            subnets use the same ones), sampler settings (``epsilon``, ``warmup``, ...) and
            DARTS's (``arch_learning_rate``, ``arch_weight_decay``); each run takes its own.
        top_k: subnets fine-tuned from the supernet's weights (0: none).
        finetune_epochs: their fine-tuning epochs.
        finetune_lr_factor: fine-tuning's learning rate relative to training's (a trained
            network at the full rate would first lose accuracy).
        name: experiment folder (default ``supernet-<dataset>``); the sampler's results go to
            ``<name>/<sampler>``, the standalone runs to ``<name>/standalone``.
        resume: continue an interrupted run (finished parts are read back).
        restart_errored: with ``resume``, errored trials train again from scratch (see
            :func:`~automl_chars.runner.trials.run_trials`).
        warm_start: with ``"darts"``, a :class:`~automl_chars.workflows.darts.DartsWarmStart`:
            the search starts from the nearest portfolio dataset's saved architecture weights
            (results in ``<name>/darts-warm``).
        standalone_sample: train only this many subnets standalone, a stratified sample
            (:func:`~automl_chars.supernet.standalone.stratified_sample`: parameter-count
            strata, the smallest and the largest subnet always in, the same for every sampler
            of ``seed``); the correlations and the top-1 are then over the sample, the cost
            ratio against the estimated standalone cost of every subnet. None: every subnet
            (at most :data:`MAX_STANDALONE`). DARTS's derived subnet, when outside the sample,
            is trained standalone too (``<sampler folder>/derived``).

    Raises :class:`~automl_chars.errors.SweepInterrupted` when stopped; everything else about the
    arguments is checked before any training starts.
    """
    from automl_chars.workflows.darts import DARTS, darts_config

    arch_space = SupernetSpace.from_dict(space)
    darts = sampler == DARTS
    if darts:
        supernet_config = darts_config(config, arch_space)
    else:
        supernet_config = {**_sampler_config(config), "sampler": sampler,
                           "supernet": arch_space.to_dict()}
        supernet_settings(supernet_config)  # an unknown sampler or setting raises here
        if warm_start is not None:
            raise InvalidConfigError(f"run_supernet: warm_start is DARTS's (sampler='darts'); "
                                     f"sampler {sampler!r} takes none.")
    training = {k: v for k, v in dict(config or {}).items() if k in subnet_space()}
    _check_arguments(arch_space, epochs, top_k, finetune_epochs, standalone_sample)
    if not 0 < finetune_lr_factor <= 1:
        raise InvalidConfigError(f"run_supernet: finetune_lr_factor must be in (0, 1], got "
                                 f"{finetune_lr_factor!r}.")
    finetuning = {**training, "learning_rate": finetune_lr_factor * float(
        supernet_config.get("learning_rate", subnet_space()["learning_rate"].default_value))}
    ds = load(dataset, root=data_root)
    root = experiment_dir(storage_path, name or f"supernet-{ds.name}")
    if root.name == "standalone" or sampler == "standalone":
        raise InvalidConfigError("'standalone' is the folder of the standalone runs; choose "
                                 "another experiment name.")
    common = {"seed": seed, "gpus_per_trial": gpus_per_trial, "cpus_per_trial": cpus_per_trial,
              "max_failures": max_failures, "address": address, "verbose": verbose,
              "restart_errored": restart_errored}

    names = [arch_space.name(a) for a in arch_space.archs]
    sample = stratified_sample(arch_space, standalone_sample or arch_space.size, seed)
    if darts:  # the search first: a warm start's missing neighbour fails before any training
        search = _darts_phase(ds, epochs, root, arch_space, config, warm_start, resume, common)
        sup, folder, label = search.trials, search.path, DARTS
    else:
        search, folder, label = None, root / sampler, SUPERNET_LABEL
        sup = _phase([TrialJob(SUPERNET_LABEL, ds, supernet_config,
                               description=f"supernet, sampler {sampler}")],
                     "supernet", epochs, folder / "supernet", resume, **common)
    standalone = _phase(
        [TrialJob(n, ds, {**training, "subnet": SubnetSpec(arch_space, n).to_dict()},
                  description=f"standalone subnet {n}") for n in sample.subnets],
        "subnet", epochs, root / "standalone", resume, reuse=True, **common)
    derived = None
    if darts and search.derived not in sample.subnets:  # DARTS's answer needs its ground truth
        derived = _phase(
            [TrialJob(search.derived, ds, {**training, "subnet": SubnetSpec(
                arch_space, search.derived).to_dict()},
                description=f"standalone subnet {search.derived} (derived by DARTS)")],
            "subnet", epochs, folder / "derived", resume, **common)

    ckpt = _finished_checkpoint(sup, label)
    supernet, state = load_supernet(ckpt, ds)
    evaluation = (darts_settings if darts else supernet_settings)(state["config"]).evaluation
    test_acc = {n: evaluate_supernet_subnet(supernet, n, ds, "test", evaluation) for n in names}
    val_acc = state["extra"]["subnet_acc"]
    if darts:  # every subnet trains in every round; the search ranks them by probability
        prob = dict(zip(names, ArchParameters(arch_space, search.weights).log_probs().exp().tolist()))
        sampled = dict.fromkeys(names, int(state["extra"]["rounds"]))
        top = sorted(names, key=lambda n: (-prob[n], names.index(n)))[:top_k]
        pruned: list = []
    else:
        sampler_state = state["extra"]["sampler"]
        sampled = dict(zip(sampler_state["names"], sampler_state["counts"]))
        top = sorted(val_acc, key=lambda n: (-val_acc[n], names.index(n)))[:top_k]
        pruned = sampler_state["pruned"]
    finetune = None
    if top:
        finetune = _phase(
            [TrialJob(n, ds, {**finetuning, "subnet": SubnetSpec(arch_space, n).to_dict(),
                              "init_checkpoint": str(ckpt)},
                      description=f"fine-tuned subnet {n}, sampler {sampler}") for n in top],
            "subnet", finetune_epochs, folder / "finetune", resume, **common)

    st = standalone.table.set_index("label")
    ft = finetune.table.set_index("label") if finetune is not None else pd.DataFrame()
    table = ranking_table(
        test_acc, {n: float(st.loc[n, "test_acc"]) for n in sample.subnets},
        finetuned={n: float(ft.loc[n, "test_acc"]) for n in top}, sampled=sampled, order=names)
    table = _with_costs(table, st, arch_space, ds)
    factor = gpus_per_trial if gpus_per_trial > 0 else cpus_per_trial
    costs = standalone_costs(
        factor * float(sup.table["seconds"].sum()),
        {n: factor * float(st.loc[n, "seconds"]) for n in sample.subnets}, sample,
        unit="GPU-seconds" if gpus_per_trial > 0 else "CPU-seconds")
    costs["finetune"] = factor * float(ft["seconds"].sum()) if top else 0.0
    if derived is not None:
        costs["derived"] = factor * float(derived.table["seconds"].sum())
    sampled_names = list(table.dropna(subset=["standalone_acc"])["subnet"])
    summary = {
        "sampler": folder.name, "dataset": ds.name, "epochs": epochs, "seed": seed,
        "space": arch_space.to_dict(), "config": supernet_config,
        **correlations(table), "supernet_top1": best(table, "supernet_acc"),
        "supernet_top1_sampled": best(table.dropna(subset=["standalone_acc"]), "supernet_acc"),
        "standalone_top1": best(table, "standalone_acc"),
        "top1_regret": top1_regret(table),
        "standalone_sample": sample.to_dict() if len(sample.subnets) < len(names) else None,
        "n_standalone": len(sampled_names),
        "supernet_val_acc": {n: float(val_acc[n]) for n in names if n in val_acc},
        "standalone_val_acc": {n: float(st.loc[n, "val_acc"]) for n in sample.subnets},
        "costs": costs, "pruned": pruned,
        "finetune": _finetune_summary(table, ft, top, finetune_epochs,
                                      finetuning["learning_rate"]),
        "runs": {"supernet": str(sup.path), "standalone": str(standalone.path),
                 "finetune": str(finetune.path) if finetune is not None else None,
                 "derived": str(derived.path) if derived is not None else None},
    }
    if darts:
        table["arch_prob"] = [prob[n] for n in names]
        derived_acc = (float(derived.table.set_index("label").loc[search.derived, "test_acc"])
                       if derived is not None else None)
        summary["darts"] = _darts_summary(search, table, derived_acc)
        summary["supernet_top1"] = search.derived  # the search's answer: its derived subnet
        summary["top1_regret"] = summary["darts"]["derived_regret"]
        history = _darts_history(sup, names)
        # found the best: the derived subnet ranks first standalone (a tie for first counts)
        summary["top1_match"] = summary["darts"]["derived_standalone_rank"] == 1
    else:
        history = _history(sampler_state)
        # among the standalone-trained subnets (all, or the sample)
        summary["top1_match"] = summary["supernet_top1_sampled"] == summary["standalone_top1"]
    result = SupernetResult(table, history, summary, folder)
    result.save()
    return result


def _darts_phase(ds: Dataset, epochs: int, root: Path, space: SupernetSpace,
                    config: Mapping | None, warm_start: Any, resume: bool, common: dict):
    """The DARTS search of a :func:`run_supernet` run, in ``root``."""
    from automl_chars.workflows.darts import run_darts

    return run_darts(ds, epochs, root.parent, space=space, config=config, warm_start=warm_start,
                     name=root.name, resume=resume, **common)


def _sampler_config(config: Mapping | None) -> dict:
    """``config`` without DARTS's own settings (one config may serve every sampler)."""
    from automl_chars.spaces.supernet import (
        DARTS_FIXED,
        SUPERNET_FIXED,
        darts_space,
        supernet_space,
    )

    theirs = (set(darts_space()) | set(DARTS_FIXED)) - set(supernet_space()) - set(SUPERNET_FIXED)
    return {k: v for k, v in dict(config or {}).items() if k not in theirs}


def _darts_summary(search, table: pd.DataFrame, derived_acc: float | None = None) -> dict:
    """The derived architecture against standalone training: its standalone rank and top-1
    among the standalone-trained subnets (with it: ``derived_acc`` when it is outside the
    sample), its regret, the search's per-epoch history, how its probabilities rank them."""
    row = table.set_index("subnet").loc[search.derived]
    probs = correlations(table, "arch_prob", "standalone_acc")
    return {"derived": search.derived, **derived_standing(table, search.derived, derived_acc),
            "derived_supernet_acc": float(row["supernet_acc"]),
            "epochs_to_final": search.epochs_to_final, "history": list(search.weights.history),
            "arch_prob_kendall_tau": probs["kendall_tau"], "arch_prob_spearman": probs["spearman"],
            "arch_weights": str(search.weights.path), "warm_start": search.neighbour}


def derived_standing(table: pd.DataFrame, derived: str,
                     derived_acc: float | None = None) -> dict:
    """DARTS's derived subnet among the standalone-trained ones of ``table``: its standalone
    top-1 (the table's, or ``derived_acc`` when it was trained outside the sample), its rank
    among them and it (ties share the best rank), how many that is, and its top-1 regret (the
    best one's standalone top-1 minus its own, 0 when it is the best)."""
    acc = (float(table.set_index("subnet").loc[derived, "standalone_acc"])
           if derived_acc is None else float(derived_acc))
    if acc != acc:
        raise InvalidConfigError(f"The derived subnet {derived} has no standalone top-1.")
    others = table.loc[table["subnet"] != derived, "standalone_acc"].dropna()
    return {"derived_standalone_rank": 1 + int((others > acc).sum()),
            "derived_standalone_acc": acc, "derived_in_sample": derived_acc is None,
            "derived_regret": max(0.0, float(others.max()) - acc) if len(others) else 0.0,
            "n_subnets": len(others) + 1}


def _darts_history(run: TrialsResult, names: list[str]) -> pd.DataFrame:
    """Each subnet's validation top-1 at the end of each DARTS epoch, as history rows (round:
    the rounds trained by then)."""
    h = run.history
    rows = [{"round": int(r["rounds"]), "subnet": n, "running_acc": float(r[f"subnet_acc/{n}"])}
            for _, r in h.iterrows() for n in names if f"subnet_acc/{n}" in h]
    return pd.DataFrame(rows, columns=["round", "subnet", "running_acc"])


def _check_arguments(space: SupernetSpace, epochs: int, top_k: int, finetune_epochs: int,
                     standalone_sample: int | None = None) -> None:
    problems = []
    if standalone_sample is None and space.size > MAX_STANDALONE:
        problems.append(f"the space has {space.size} subnets and run_supernet trains each one "
                        f"standalone (at most {MAX_STANDALONE}); train a stratified sample "
                        f"(standalone_sample=30; command line --standalone-sample 30), use a "
                        f"smaller space, or SupernetTrainable / run_bohb(spec='supernet') for "
                        f"the supernet alone")
    elif standalone_sample is not None and (
            isinstance(standalone_sample, bool) or not isinstance(standalone_sample, int)
            or not 2 <= standalone_sample <= MAX_STANDALONE):
        problems.append(f"standalone_sample must be a whole number from 2 (the smallest and the "
                        f"largest subnet) to {MAX_STANDALONE}, got {standalone_sample!r}")
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


def _with_costs(table: pd.DataFrame, st: pd.DataFrame, space: SupernetSpace,
                ds: Dataset) -> pd.DataFrame:
    """``table`` with each subnet's costs: as its standalone trial measured them, or (outside a
    standalone sample) measured here, on this process's CPU."""
    measured = {n: measure_subnet_costs(space, n, ds.num_classes, ds.image_shape).metrics()
                for n in table["subnet"] if n not in st.index}
    for cost in LIMITED_COSTS:
        table[cost] = [float(st.loc[n, cost]) if n in st.index else float(measured[n][cost])
                       for n in table["subnet"]]
    return table


def standalone_costs(supernet_s: float, standalone_s: dict[str, float], sample: StandaloneSample,
                     unit: str = "CPU-seconds") -> dict:
    """The supernet's cost against standalone training's: ``standalone`` is every subnet's
    (estimated per stratum from ``standalone_s`` when only a sample was trained:
    ``standalone_estimated``), ``standalone_sampled`` what the trained ones took; ``ratio`` =
    supernet / ``standalone``, ``ratio_sampled`` = supernet / ``standalone_sampled``."""
    sampled = float(sum(standalone_s.values()))
    every = len(sample.subnets) == len(sample.strata)
    total = sampled if every else estimated_standalone_cost(standalone_s, sample)
    return {"unit": unit, "supernet": supernet_s, "standalone": total,
            "standalone_estimated": not every, "standalone_sampled": sampled,
            "n_standalone": len(standalone_s), "n_subnets": len(sample.strata),
            "ratio": supernet_s / total if total else float("nan"),
            "ratio_sampled": supernet_s / sampled if sampled else float("nan")}


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


__all__ = ["MAX_STANDALONE", "derived_standing", "run_supernet", "standalone_costs"]
