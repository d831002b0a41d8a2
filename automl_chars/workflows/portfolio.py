"""``build_portfolio``: one model per source dataset, trained as Ray Tune trials side by side.

The training is :func:`~automl_chars.runner.trials.run_trials` (imported when called, so that
reading a portfolio needs no Ray): resumable, interrupt-safe, fractional GPUs. Its run lives in
``<portfolio>/training``; each finished trial becomes an entry as soon as the run has ended.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from automl_chars.data import Dataset, load
from automl_chars.errors import ExperimentStateError, InvalidConfigError, PortfolioError
from automl_chars.portfolio.entry import MANIFEST_FILE, SAMPLE_SIZE
from automl_chars.portfolio.portfolio import Portfolio

#: Folder of a portfolio that holds its Ray Tune run.
TRAINING_RUN = "training"


def build_portfolio(
    sources: Sequence[str | Dataset],
    model: str = "resnet18",
    config: Mapping | object | None = None,
    epochs: int = 5,
    gpus_per_trial: float = 0.0,
    storage_path: str | os.PathLike | None = None,
    name: str | None = None,
    seed: int = 0,
    resume: bool = False,
    *,
    cpus_per_trial: float = 1.0,
    sample_size: int = SAMPLE_SIZE,
    data_root: str | os.PathLike | None = None,
    address: str | None = None,
    verbose: int = 1,
    restart_errored: bool = False,
) -> Portfolio:
    """Trains ``model`` on every source dataset in parallel and saves the models as a portfolio.

    Args:
        sources: dataset names or :class:`Dataset` objects; each becomes an entry named after it.
        model: the sweep spec to train (``"resnet18"``, ``"cnn"``, a name in ``SPECS``).
        config: its configuration (hyperparameters left out take the space's defaults), or a
            finished sweep's :class:`~automl_chars.runner.result.SweepResult`, whose incumbent
            is trained on every source (its spec is then the sweep's trainable).
        epochs: training epochs of every entry.
        gpus_per_trial: GPU share per source (0.25 trains four sources per GPU); 0 = CPU.
        storage_path, name: the portfolio folder is ``<storage>/<name>`` (storage as for
            sweeps; name defaults to ``portfolio-<model>``).
        seed: seeds the training and the stored image samples.
        resume: continue an interrupted build; finished entries are kept.
        restart_errored: with ``resume``, errored sources train again from scratch (see
            :func:`~automl_chars.runner.trials.run_trials`).
        sample_size: source images kept per entry for the similarity measures.
    """
    from automl_chars.layout import experiment_dir
    from automl_chars.runner.result import SweepResult
    from automl_chars.runner.trials import TrialJob, run_trials

    if isinstance(config, SweepResult):
        model = str(config.settings.get("trainable", "cnn"))
        config = config.incumbent
    if config is not None and not isinstance(config, Mapping):
        raise InvalidConfigError(f"config must be a mapping of hyperparameters or a SweepResult, "
                                 f"got {type(config).__name__}.")
    if not sources:
        raise InvalidConfigError("build_portfolio needs at least one source dataset.")
    folder = experiment_dir(storage_path, name or f"portfolio-{model}")
    if (folder / MANIFEST_FILE).exists() and not resume:
        raise PortfolioError(f"A portfolio already exists in {folder}. Pass resume=True (CLI: "
                             f"--resume) to finish its build, Portfolio.add to extend it, or "
                             f"choose another folder.")
    datasets = [load(s, root=data_root) for s in sources]
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise InvalidConfigError(f"Source datasets must be distinct; got {names}.")
    jobs = [TrialJob(d.name, d, dict(config or {}), description=f"source {d.name}")
            for d in datasets]
    run = run_trials(jobs, model, epochs, name=TRAINING_RUN, storage_path=folder, seed=seed,
                     resume=resume and (folder / TRAINING_RUN).exists(),
                     gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial,
                     data_root=data_root, address=address, verbose=verbose,
                     restart_errored=restart_errored)
    portfolio = Portfolio.load(folder) if (folder / MANIFEST_FILE).exists() else Portfolio(folder)
    failed = []
    for ds in datasets:
        if ds.name in portfolio.names():
            continue  # added before an interruption
        try:
            checkpoint = run.checkpoint(ds.name)
        except ExperimentStateError as err:
            failed.append(str(err))
            continue
        add_checkpoint(portfolio, ds, checkpoint, run.row(ds.name), model, sample_size, seed)
    from automl_chars.store.ingest import record_portfolio

    record_portfolio(folder)
    if failed:
        raise PortfolioError(f"{len(failed)} of {len(datasets)} sources did not train; the "
                             f"others are in {folder}. " + " ".join(failed))
    return portfolio


def add_checkpoint(portfolio: Portfolio, dataset: Dataset, checkpoint: str | os.PathLike,
                   row: Mapping, trainable: str, sample_size: int = SAMPLE_SIZE,
                   seed: int = 0, name: str | None = None) -> None:
    """Adds the model of a Trainable's checkpoint (trained on ``dataset``) to ``portfolio``,
    as the entry ``name`` (default: the dataset's name)."""
    from automl_chars.checkpoints import load_trial_state

    state = load_trial_state(checkpoint)
    portfolio.add(
        dataset, state["model"], state["arch"], state["state_dict"], name=name or dataset.name,
        trainable=trainable, config=state["config"], val_acc=row["val_acc"],
        test_acc=row["test_acc"], epochs=int(row["epochs"]), train_seconds=row["seconds"],
        device=str(row["device"]), sample_size=sample_size, seed=seed,
        meta={"checkpoint": str(Path(checkpoint))},
    )
