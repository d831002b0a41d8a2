"""Portfolios and the similarity measures on colour images: an RGB portfolio (CNN and MLP
entries; a MobileNetV2 one round-trips) is compared with an RGB target by every measure; the ink
meta-features read RGB as brightness; gray and colour do not mix, with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl_chars import data
from automl_chars.errors import InvalidConfigError, PortfolioError
from automl_chars.models import (
    CNNSpec,
    ConvLayerSpec,
    FCLayerSpec,
    MLPSpec,
    MobileNetV2Spec,
    build_model,
)
from automl_chars.portfolio import Portfolio
from automl_chars.similarity import MEASURES, similarity
from automl_chars.similarity.meta_features import brightness, meta_features
from automl_chars.similarity.source import Sample

#: Small feature widths: MobileNetV2's 1280 features make the separability measures take a
#: minute on a CPU (its entry is round-tripped on its own).
ENTRIES = {"rgb-glyphs-digits": ("cnn", CNNSpec((ConvLayerSpec(8, 3, 1, 1, True, 0.0, 4),),
                                                (FCLayerSpec(16, False, 0.0),))),
           "rgb-glyphs-greek": ("mlp", MLPSpec((FCLayerSpec(16, False, 0.0),)))}


@pytest.fixture(scope="module")
def rgb_portfolio(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    portfolio = Portfolio(tmp_path_factory.mktemp("pf") / "pf")
    for name, (model, arch) in ENTRIES.items():
        ds = data.load(name, root=root, samples_per_class=3, val_per_class=2, test_per_class=2)
        torch.manual_seed(0)
        net = build_model(model, arch, ds.num_classes, ds.image_shape)
        portfolio.add(ds, model, arch, net.state_dict(), trainable=model, sample_size=20)
    target = data.load("rgb-glyphs-digits", root=root, samples_per_class=3, seed=1)
    gray = data.load("glyphs-digits", root=root, samples_per_class=3, seed=1)
    return Portfolio.load(portfolio.path), target, gray


def test_an_rgb_portfolio_round_trips_its_models(rgb_portfolio, tmp_path, one_thread):
    portfolio, target, _ = rgb_portfolio
    entries = portfolio.entries.set_index("name")
    assert list(entries["image_shape"]) == ["3x32x32"] * 2
    x = torch.rand(2, 3, 32, 32)
    assert portfolio.model("rgb-glyphs-digits")(x).shape == (2, 10)
    xs, _ = portfolio.sample("rgb-glyphs-greek")
    assert xs.shape[1:] == (3, 32, 32)
    portfolio.check_fits(target.image_shape)  # an RGB target fits
    mobile = Portfolio(tmp_path / "mobile")
    net = build_model("mobilenetv2", MobileNetV2Spec(width=0.25), 10, target.image_shape).eval()
    mobile.add(target, "mobilenetv2", MobileNetV2Spec(width=0.25), net.state_dict(),
               trainable="mobilenetv2", sample_size=10)
    loaded = Portfolio.load(mobile.path).model(target.name)
    assert torch.allclose(loaded(x), net(x))


@pytest.mark.slow
def test_every_measure_compares_an_rgb_target_with_rgb_sources(rgb_portfolio, one_thread):
    portfolio, target, _ = rgb_portfolio
    # the MLP as the reference network: task2vec's Fisher information of a MobileNetV2 costs
    # minutes on a CPU
    table = similarity(target, portfolio, "all", sample_size=30, on_error="raise",
                       reference="rgb-glyphs-greek")
    assert set(MEASURES.names()) <= set(table.columns)
    values = table[MEASURES.names()].to_numpy(float)
    assert np.isfinite(values).all() and not table.attrs["errors"]


def test_gray_and_colour_are_refused_together_by_name(rgb_portfolio):
    portfolio, _, gray = rgb_portfolio
    with pytest.raises(InvalidConfigError, match=r"\(3, 32, 32\).*'glyphs-digits' has \(1, 28, "
                                                  r"28\) \(channels, height, width\)"):
        similarity(gray, portfolio, "fast", sample_size=20)
    with pytest.raises(PortfolioError, match=r"\(3x32x32\).*other images than the target's "
                                              r"1x28x28"):
        portfolio.check_fits(gray.image_shape)  # transfer's check


def test_meta_features_read_colour_as_brightness():
    rng = np.random.default_rng(0)
    rgb = torch.from_numpy(rng.integers(0, 256, (12, 3, 16, 16), dtype=np.uint8))
    luma = brightness(rgb)
    expected = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]) / 255
    assert torch.allclose(luma, expected, atol=1e-6)
    gray = (luma * 255).round().to(torch.uint8).unsqueeze(1)
    y = torch.arange(12) % 3
    as_rgb = meta_features(Sample.create("c", rgb, y, ("a", "b", "c"), key="c"))
    as_gray = meta_features(Sample.create("g", gray, y, ("a", "b", "c"), key="g"))
    assert as_rgb == pytest.approx(as_gray, rel=0.02, abs=0.02)
    green = torch.zeros(4, 3, 16, 16, dtype=torch.uint8)
    green[:, 1, 4:12, 4:12] = 255  # ink only in the green channel: still ink
    assert meta_features(Sample.create("g", green, torch.arange(4) % 2, ("a", "b"),
                                       key="g"))["ink_fraction"] == pytest.approx(0.25)
