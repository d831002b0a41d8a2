import pandas as pd

from automl_chars.reporting import format_table, learning_curves, plot_learning_curves
from automl_chars.reporting.tables import format_runtime


def test_format_table_uses_seed_001_columns_and_percent():
    table = pd.DataFrame([{"dataset": "kmnist", "preset": "3_1_9_20", "val_acc": 0.9717,
                           "train_acc": 0.9823, "test_acc": 0.9326, "runtime_s": 9000.0}])
    text = format_table(table)
    assert "Validation Accuracy" in text and "eta_min_max_iter (BOHB)" in text
    assert "97.17%" in text and "93.26%" in text and "2.5h" in text
    assert format_runtime(42) == "42s" and format_runtime(600) == "10.0min"


def test_learning_curves_plot(tmp_path):
    for tid, losses in (("aaaa0001", [2.0, 1.5, 1.0]), ("aaaa0002", [2.2, 1.9])):
        trial = tmp_path / f"CNNTrainable_{tid}"
        trial.mkdir()
        n = len(losses)
        pd.DataFrame({"budget": range(1, n + 1), "train_loss": losses, "val_loss": losses,
                      "train_acc": [0.5] * n, "val_acc": [0.4] * n}).to_csv(trial / "progress.csv")
    curves = learning_curves(tmp_path)
    assert len(curves) == 5 and set(curves["trial_id"]) == {"aaaa0001", "aaaa0002"}
    out = plot_learning_curves(tmp_path)
    assert out.exists() and out.stat().st_size > 5000
