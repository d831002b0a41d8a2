"""Datasets: a registry of public character datasets, the built-in ``glyphs-*`` family, your arrays."""

from automl_chars.data.dataset import IMAGE_SIZE, Dataset, from_arrays
from automl_chars.data.registry import (
    DATA_ROOT_ENV,
    DATASETS,
    DatasetSpec,
    data_root,
    is_available,
    load,
    names,
    register_dataset,
    spec,
)

__all__ = [
    "DATASETS",
    "DATA_ROOT_ENV",
    "IMAGE_SIZE",
    "Dataset",
    "DatasetSpec",
    "data_root",
    "from_arrays",
    "is_available",
    "load",
    "names",
    "register_dataset",
    "spec",
]
