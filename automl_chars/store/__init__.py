"""The results store: configuration x dataset results of every sweep and portfolio build, read
as one pandas DataFrame (Parquet files, written atomically), the warm start's memory."""

from automl_chars.store.ingest import (
    add_portfolio,
    add_sweep,
    add_trials,
    import_folder,
    record_portfolio,
    record_sweep,
    sweep_rows,
    trials_rows,
)
from automl_chars.store.store import (
    COLUMNS,
    STORE_ENV,
    DamagedFile,
    ResultsStore,
    TaskEvaluations,
    default_store_path,
    store_beside,
)

__all__ = ["COLUMNS", "STORE_ENV", "DamagedFile", "ResultsStore", "TaskEvaluations",
           "add_portfolio", "add_sweep", "add_trials", "default_store_path", "import_folder",
           "record_portfolio", "record_sweep", "store_beside", "sweep_rows", "trials_rows"]
