"""``Portfolio``: entries on disk, models with their weights, and what it refuses to load."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest
import torch

from automl_chars.errors import PortfolioError
from automl_chars.models import build_model
from automl_chars.models.resnet import ResNetSpec
from automl_chars.portfolio import MANIFEST_VERSION, Portfolio
from automl_chars.portfolio.entry import MANIFEST_FILE, SAMPLE_FILE, WEIGHTS_FILE

ARCH = ResNetSpec(width=0.0625)


def _add(portfolio, ds, name=None, seed=0):
    torch.manual_seed(seed)
    net = build_model("resnet18", ARCH, ds.num_classes, ds.image_shape)
    return portfolio.add(ds, "resnet18", ARCH, net.state_dict(), name=name, trainable="resnet18",
                         config={"width": 0.0625}, val_acc=0.5, test_acc=0.4, epochs=1,
                         train_seconds=1.5, sample_size=8), net


@pytest.fixture
def two_entries(make_dataset, tmp_path):
    p = Portfolio(tmp_path / "pf")
    a, b = make_dataset("a", num_classes=3), make_dataset("b", num_classes=5, seed=1)
    (_, net_a), (_, net_b) = _add(p, a), _add(p, b, seed=1)
    return p, a, b, net_a, net_b


def test_entries_round_trip_with_their_weights_and_samples(two_entries):
    """What is added is read back by ``Portfolio.load``: the manifest row, the exact weights
    (the model gives the same outputs) and a stratified image sample of the source."""
    p, a, b, net_a, net_b = two_entries
    loaded = Portfolio.load(p.path)
    assert loaded.names() == ["a", "b"]
    e = loaded.entries.set_index("name")
    assert list(e["num_classes"]) == [3, 5] and list(e["image_shape"]) == ["1x28x28"] * 2
    assert e.loc["b", "fingerprint"] == b.fingerprint() and e.loc["a", "val_acc"] == 0.5
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(loaded.model("b")(x), net_b.eval()(x))
    xs, ys = loaded.sample("a")
    assert xs.dtype == torch.uint8 and len(xs) == 8
    assert sorted(torch.bincount(ys).tolist()) == [2, 3, 3]  # stratified
    entry = loaded.entry("a")
    assert entry.mean > 0 and entry.std > 0 and entry.num_train == len(a.y_train)


def test_a_weight_file_holding_a_pickled_object_is_refused(two_entries):
    """``torch.load(weights_only=True)``: a weight file that would run code is refused, naming
    the entry and the file, and the code never runs."""
    p, *_ = two_entries
    path = p.path / "a" / WEIGHTS_FILE

    class Evil:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('ran').write_text('x')",))

    torch.save({"model": "resnet18", "arch": {}, "state_dict": {}, "x": Evil()}, path)
    with pytest.raises(PortfolioError, match=r"'a'.*other than tensors"):
        Portfolio.load(p.path).model("a")
    assert not (p.path.parent / "ran").exists()


def test_missing_corrupt_and_misfit_files_name_the_entry(two_entries):
    p, *_ = two_entries
    (p.path / "a" / WEIGHTS_FILE).unlink()
    with pytest.raises(PortfolioError, match=r"'a'.*missing"):
        p.model("a")
    (p.path / "b" / WEIGHTS_FILE).write_bytes(b"not a zip file")
    with pytest.raises(PortfolioError, match=r"'b': \S+weights\.pt is damaged"):  # (the test's
        p.model("b")  # folder holds the word "corrupt": match the message's own words)
    (p.path / "b" / SAMPLE_FILE).write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(PortfolioError, match=r"'b'.*image sample"):
        p.sample("b")
    with pytest.raises(PortfolioError, match=r"Did you mean \['a'\]"):
        p.entry("aa")


def test_weights_of_another_shape_are_refused(two_entries, make_dataset):
    p, a, *_ = two_entries
    wrong = build_model("resnet18", ResNetSpec(width=0.125), a.num_classes).state_dict()
    with pytest.raises(PortfolioError, match="do not fit"):
        p.add(a, "resnet18", ARCH, wrong, name="c")
    assert "c" not in Portfolio.load(p.path).names()


def test_manifest_of_another_version_or_no_manifest(two_entries, tmp_path):
    p, *_ = two_entries
    data = json.loads((p.path / MANIFEST_FILE).read_text())
    (p.path / MANIFEST_FILE).write_text(json.dumps({**data, "version": MANIFEST_VERSION + 1}))
    with pytest.raises(PortfolioError, match="version"):
        Portfolio.load(p.path)
    with pytest.raises(PortfolioError, match="not a portfolio"):
        Portfolio.load(tmp_path / "nothing")


def test_check_fits_names_entries_with_other_images(two_entries, make_dataset):
    p, *_ = two_entries
    ds = make_dataset()
    small = dataclasses.replace(ds, name="small", **{
        f"x_{split}": getattr(ds, f"x_{split}")[..., :20, :20] for split in ("train", "val", "test")})
    _add(p, small)
    p.check_fits((1, 28, 28), ["a", "b"])
    with pytest.raises(PortfolioError, match=r"small \(1x20x20\).*1x28x28"):
        p.check_fits((1, 28, 28))
    with pytest.raises(PortfolioError, match="no entries"):
        Portfolio(p.path.parent / "empty").check_fits((1, 28, 28))
    with pytest.raises(PortfolioError, match="already has an entry 'a'"):
        _add(p, make_dataset("a"))
