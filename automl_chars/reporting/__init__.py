"""Tables and plots of finished sweeps, and the report page of any result folder."""

from automl_chars.reporting.page import report
from automl_chars.reporting.plots import learning_curves, plot_learning_curves
from automl_chars.reporting.tables import format_table, results_table, top_trials

__all__ = ["format_table", "learning_curves", "plot_learning_curves", "report", "results_table",
           "top_trials"]
