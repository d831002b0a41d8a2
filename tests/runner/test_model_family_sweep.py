"""A BOHB sweep of a new model family on RGB data from the command line (``bohb --model mlp
--dataset rgb-glyphs-digits``), and the refusal of a model family that does not exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_cli

from automl_chars.cli.main import main
from automl_chars.layout import SETTINGS_FILE
from automl_chars.runner.result import SweepResult
from automl_chars.spaces import mlp_space


@pytest.mark.slow
def test_bohb_sweeps_the_mlp_space_on_rgb_glyphs(ray_session, data_root, tmp_path):
    out = run_cli(["bohb", "--dataset", "rgb-glyphs-digits", "--model", "mlp", "--preset",
                   "2_1_2_1", "--samples-per-class", "6", "--storage", str(tmp_path), "--name",
                   "mlp-rgb", "--verbose", "0", "--no-priors"])
    assert "Incumbent:" in out
    result = SweepResult.load(tmp_path / "mlp-rgb")
    saved = json.loads((Path(result.path) / SETTINGS_FILE).read_text())
    assert saved["trainable"] == "mlp"
    assert set(result.incumbent) <= set(mlp_space()) | {"suggested_by"}
    assert {"n_layers", "learning_rate"} <= set(result.incumbent)
    assert len(result.trials) >= 2 and (result.trials["num_params"] > 0).all()
    assert list(Path(result.path).glob("MLPTrainable_*"))


def test_an_unknown_model_family_is_refused_before_the_data_loads(capsys, data_root):
    code = main(["bohb", "--dataset", "no-such-dataset", "--model", "resnet43"])
    err = capsys.readouterr().err
    assert code == 2 and "resnet43" in err and "resnet34" in err
