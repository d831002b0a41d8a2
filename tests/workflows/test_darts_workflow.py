"""DARTS end to end (run_darts, run_supernet(sampler="darts")) and its warm start from the
nearest portfolio dataset's saved search."""

from __future__ import annotations

import pytest
import torch

from automl_chars.errors import InvalidConfigError
from automl_chars.supernet import SupernetResult, SupernetSpace
from automl_chars.supernet.darts import ARCH_WEIGHTS_FILE, ArchParameters, ArchWeights
from automl_chars.workflows.darts import (
    DartsWarmStart,
    epochs_to_final,
    nearest_arch_weights,
    run_darts,
)

TINY = SupernetSpace(channels=(4, 8), depths=(1, 2))
CONFIG = {"batch_size": 16, "calib_samples": 64, "arch_learning_rate": 0.05, "warmup": 3}


def _portfolio(path, datasets):
    """Untrained CNN entries (the ranking needs models, not good ones)."""
    from automl_chars.models import CNNSpec, ConvLayerSpec, FCLayerSpec, build_model
    from automl_chars.portfolio import Portfolio

    arch = CNNSpec(conv=(ConvLayerSpec(4, 3, 1, 1, False, 0.0, 2),), fc=(FCLayerSpec(8, False, 0.0),))
    p = Portfolio(path)
    for i, ds in enumerate(datasets):
        torch.manual_seed(i)
        net = build_model("cnn", arch, ds.num_classes, ds.image_shape)
        p.add(ds, "cnn", arch, net.state_dict(), trainable="cnn", sample_size=40)
    return p


def _saved(root, dataset: str, depth) -> ArchWeights:
    arch = ArchParameters(TINY)
    with torch.no_grad():
        arch.depth[0].copy_(torch.tensor(depth))
    return ArchWeights.load(ArchWeights.of(arch, dataset=dataset).save(root / f"exp-{dataset}" / "darts"))


def test_epochs_to_final():
    assert epochs_to_final(["a", "b", "b"]) == 2
    assert epochs_to_final(["b", "b"]) == 1 and epochs_to_final(["b", "a"]) == 2
    assert epochs_to_final([]) == 0


def test_the_nearest_dataset_with_a_saved_search_gives_the_starting_weights(make_dataset,
                                                                            tmp_path):
    from automl_chars.similarity import rank_sources, similarity

    target = make_dataset("target", seed=0)
    sources = [make_dataset("twin", seed=1), make_dataset("other", num_classes=3, per_class=40,
                                                          seed=5)]
    pf = _portfolio(tmp_path / "pf", [*sources, target])  # its own entry never counts
    warm = DartsWarmStart(pf, measure="meta_features", sample_size=40)
    frame = similarity(target, pf, "meta_features", sample_size=40, bootstrap=0)
    order = [n for n in rank_sources(frame, "meta_features") if n != "target"]
    results = tmp_path / "results"

    # Nothing saved over this space (one over other depths does not count): a clear error,
    # before any similarity is computed.
    other = ArchWeights.of(ArchParameters(SupernetSpace(depths=(1, 2, 3))), dataset=order[0])
    other.save(results / "x" / "darts")
    with pytest.raises(InvalidConfigError, match=r"No portfolio neighbour of target has a DARTS "
                       r"result .*--sampler darts --dataset") as err:
        nearest_arch_weights(target, TINY, warm, results)
    assert all(n in str(err.value) for n in order)

    second = _saved(results, order[1], [0.0, 1.0])
    got = nearest_arch_weights(target, TINY, warm, results)
    assert (got.dataset, got.rank, got.weights) == (order[1], 2, second)
    first = _saved(results, order[0], [1.0, 0.0])
    got = nearest_arch_weights(target, TINY, warm, results)
    assert (got.entry, got.rank, got.weights, got.measure) == (order[0], 1, first, "meta_features")
    assert got.score == pytest.approx(frame.loc[order[0], "meta_features"])
    with pytest.raises(InvalidConfigError, match="a DARTS warm start needs a neighbour"):
        nearest_arch_weights(target, TINY, DartsWarmStart(_portfolio(tmp_path / "own", [target]),
                                                          measure="meta_features"), results)
    with pytest.raises(Exception, match="Did you mean"):
        DartsWarmStart(pf, measure="logm")


@pytest.mark.slow
def test_darts_end_to_end_cold_then_warm_started_from_the_neighbour(
        ray_session, make_dataset, glyph_run_root, tmp_path, capsys):
    """A cold search on the source (API) saves its weights beside its run; ``automl-chars
    supernet --sampler darts --darts-warm-start`` on the target finds them through the
    portfolio, starts from them and ranks the derived architecture against every subnet
    trained standalone."""
    from automl_chars.cli.main import main

    source = make_dataset("source", seed=1)
    cold = run_darts(source, 2, tmp_path, space=TINY, config=CONFIG, name="src", verbose=0)
    assert cold.path == tmp_path / "src" / "darts"
    saved = ArchWeights.load(cold.path / ARCH_WEIGHTS_FILE)
    assert saved.dataset == "source" and saved.epochs == 2 and saved.derived_name == cold.derived
    assert list(cold.history["epoch"]) == [1, 2] and cold.neighbour is None
    assert cold.trials.row("darts")["status"] == "TERMINATED"

    _portfolio(tmp_path / "pf", [source])
    argv = ["supernet", "--dataset", "glyphs-digits", "--sampler", "darts", "--darts-warm-start",
            str(tmp_path / "pf"), "--darts-measure", "meta_features", "--storage", str(tmp_path),
            "--name", "tgt", "--channels", "4,8", "--depths", "1,2", "--epochs", "1", "--top-k",
            "1", "--batch-size", "16", "--arch-learning-rate", "0.05", "--samples-per-class",
            "12", "--root", str(glyph_run_root), "--verbose", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "== darts-warm:" in out and "DARTS derived (" in out and "warm-started from source" in out
    result = SupernetResult.load(tmp_path / "tgt" / "darts-warm")
    d = result.darts
    assert result.sampler == "darts-warm"
    assert d["warm_start"]["dataset"] == "source" and d["warm_start"]["path"] == str(saved.path)
    assert d["derived"] in set(result.table["subnet"]) and 1 <= d["derived_standalone_rank"] <= 4
    row = result.table.set_index("subnet").loc[d["derived"]]
    assert d["derived_standalone_rank"] == row["standalone_rank"]
    assert result.summary["supernet_top1"] == d["derived"]
    assert result.top1_match == (d["derived_standalone_rank"] == 1)
    assert result.table["arch_prob"].sum() == pytest.approx(1.0)
    assert result.table["finetuned_acc"].notna().sum() == 1  # top-1 by probability
    best = result.table.loc[result.table["arch_prob"].idxmax(), "subnet"]
    assert result.finetune["subnets"] == [best]
    assert len(d["history"]) == 1 and not result.history.empty
    assert result.costs["supernet"] > 0 and result.costs["ratio"] > 0
    own = ArchWeights.load(result.path)  # the search's own weights, beside the table
    assert own.meta["neighbour"]["dataset"] == "source" and own.dataset == "glyphs-digits"


def test_run_supernet_refuses_a_warm_start_for_a_sampler_and_unknown_darts_settings(
        make_dataset, tmp_path):
    from automl_chars.supernet import run_supernet

    warm = DartsWarmStart(tmp_path, measure="meta_features")
    with pytest.raises(InvalidConfigError, match="warm_start is DARTS's"):
        run_supernet(make_dataset(), "uniform", 1, tmp_path, space=TINY, warm_start=warm)
    with pytest.raises(InvalidConfigError, match="arch_learning_rat"):
        run_supernet(make_dataset(), "darts", 1, tmp_path, space=TINY,
                     config={"arch_learning_rat": 0.1})


def test_the_darts_spec_checks_its_space_and_a_missing_warm_start_file(make_dataset, tmp_path):
    from ConfigSpace import Categorical

    from automl_chars.search.spec import get_spec

    spec = get_spec("darts")
    assert spec.name == "darts" and "arch_learning_rate" in spec.space
    spec.check(make_dataset())  # every extreme configuration builds
    space = spec.space
    space.add(Categorical("init_arch_weights", [str(tmp_path / "none")]))
    with pytest.raises(InvalidConfigError, match="No architecture weights at"):
        spec.with_space(space).check(make_dataset())
