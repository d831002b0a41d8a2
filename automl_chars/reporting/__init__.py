"""Tables and plots of finished sweeps, and the report page of any result folder."""

from automl_chars.reporting.page import report
from automl_chars.reporting.pareto import (
    pareto_front,
    pareto_fronts,
    plot_pareto,
    sweep_pareto,
)
from automl_chars.reporting.plots import learning_curves, plot_learning_curves
from automl_chars.reporting.tables import format_table, results_table, top_trials

__all__ = ["format_table", "learning_curves", "pareto_front", "pareto_fronts",
           "plot_learning_curves", "plot_pareto", "report", "results_table", "sweep_pareto",
           "top_trials"]
