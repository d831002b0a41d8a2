"""Weight-sharing supernets (seed 002), plain PyTorch: the space, the supernet and its subnets,
the samplers, supernet training and the ranking against standalone training.

``run_supernet`` (the Ray driver, :mod:`automl_chars.workflows.supernet`) loads on first use
(a lazy re-export, which imports nothing upwards), so this package imports no Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

from automl_chars.supernet.model import (
    Subnet,
    SubnetSpec,
    Supernet,
    build_subnet,
    build_supernet,
    recalibrate_bn,
)
from automl_chars.supernet.ranking import correlations, ordering_errors, ranking_table
from automl_chars.supernet.result import SupernetResult
from automl_chars.supernet.samplers import (
    SAMPLERS,
    PruneSettings,
    Sampler,
    SamplerSettings,
    make_sampler,
)
from automl_chars.supernet.select import best_subnet, measure_subnet_costs
from automl_chars.supernet.space import OPS, Arch, SupernetSpace

__all__ = [
    "OPS", "SAMPLERS", "Arch", "PruneSettings", "Sampler", "SamplerSettings", "Subnet",
    "SubnetSpec", "Supernet", "SupernetResult", "SupernetSpace", "best_subnet", "build_subnet",
    "build_supernet", "correlations", "make_sampler", "measure_subnet_costs", "ordering_errors",
    "ranking_table", "recalibrate_bn", "run_supernet",
]


def __getattr__(name: str) -> Any:
    if name == "run_supernet":
        return importlib.import_module("automl_chars.workflows.supernet").run_supernet
    raise AttributeError(f"module 'automl_chars.supernet' has no attribute {name!r}")
