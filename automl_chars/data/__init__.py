"""Datasets: a registry of public character datasets, the built-in ``glyphs-*`` family, your arrays.

Names are imported when first used (PEP 562), so that a module that needs only
:mod:`automl_chars.data.sampling` (the fidelity of a replayed trial) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl_chars.lazy import lazy_names

_LAZY = {
    **dict.fromkeys(("IMAGE_SIZE", "Dataset", "from_arrays"), "automl_chars.data.dataset"),
    **dict.fromkeys(("DATA_ROOT_ENV", "DATASETS", "DatasetSpec", "data_root", "is_available",
                     "load", "names", "register_dataset", "spec"), "automl_chars.data.registry"),
}

if TYPE_CHECKING:
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


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


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
