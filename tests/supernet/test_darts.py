"""DARTS over a supernet space (plain PyTorch): mixed operations, the bilevel step, derivation,
the saved architecture weights."""

from __future__ import annotations

import copy
import itertools
import json

import pytest
import torch
import torch.nn.functional as F

from automl_chars.errors import InvalidConfigError
from automl_chars.supernet import Supernet, SupernetSpace
from automl_chars.supernet.darts import (
    ARCH_WEIGHTS_FILE,
    ArchParameters,
    ArchWeights,
    DartsSettings,
    darts_epoch,
    mixed_forward,
    saved_arch_weights,
)
from automl_chars.training import DeviceData

MULTI = SupernetSpace(channels=(4, 8), depths=(1, 2), ops=("conv3", "skip", "conv5"))
ONE_BLOCK = SupernetSpace(channels=(4,), depths=(1, 2), ops=("conv3", "skip"))


def _one_hot(arch: ArchParameters, chosen) -> None:
    """Logits that put (numerically) all weight on ``chosen``."""
    s = arch.space
    with torch.no_grad():
        for b, ops in enumerate(chosen):
            arch.depth[b].fill_(-100.0)
            arch.depth[b][s.depths.index(len(ops))] = 100.0
            for i in range(s.max_depth):
                arch.op(b, i).fill_(-100.0)
                arch.op(b, i)[s.ops.index(ops[i]) if i < len(ops) else 0] = 100.0


def test_mixed_forward_with_one_hot_weights_is_that_subnet():
    torch.manual_seed(0)
    net, arch = Supernet(MULTI, 5).eval(), ArchParameters(MULTI)
    x = torch.randn(3, 1, 28, 28)
    for chosen in [MULTI.archs[0], MULTI.archs[7], MULTI.archs[-1]]:
        _one_hot(arch, chosen)
        torch.testing.assert_close(mixed_forward(net, arch, x), net(x, chosen))
        assert arch.derive() == chosen


def test_mixed_forward_is_the_softmax_weighted_sum_of_ops_and_depths():
    torch.manual_seed(1)
    net, arch = Supernet(ONE_BLOCK, 3).eval(), ArchParameters(ONE_BLOCK)
    with torch.no_grad():
        for p in arch.parameters():
            p.normal_()
    x = torch.randn(2, 1, 28, 28)
    d = F.softmax(arch.depth[0], 0)
    w0, w1 = F.softmax(arch.op(0, 0), 0), F.softmax(arch.op(0, 1), 0)
    h0 = net.stem(x)
    h1 = w0[0] * net.blocks[0][0]["conv3"](h0) + w0[1] * h0
    h2 = w1[0] * net.blocks[0][1]["conv3"](h1) + w1[1] * h1
    expected = net.head(torch.flatten(net.pool(d[0] * h1 + d[1] * h2), 1))
    torch.testing.assert_close(mixed_forward(net, arch, x), expected)


def _data(n: int, seed: int, classes: int = 3) -> DeviceData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 255, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return DeviceData.create(x, torch.randint(0, classes, (n,), generator=g), torch.device("cpu"))


def test_architecture_parameters_learn_only_from_validation_batches():
    """One round (one training batch): the architecture step's gradient is the validation
    batch's loss gradient at the starting weights; the weight step's is the training batch's at
    the updated architecture, which it leaves alone."""
    torch.manual_seed(2)
    net, arch = Supernet(MULTI, 3), ArchParameters(MULTI)
    train, val = _data(8, 0), _data(8, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    arch_opt = DartsSettings(arch_learning_rate=0.05).make_optimizer(arch)
    net0, arch0 = copy.deepcopy(net), copy.deepcopy(arch)

    darts_epoch(net, arch, opt, arch_opt, train, val, 8, torch.Generator().manual_seed(0))

    def grads(model, a, data, wrt):
        x, y = data.batch(torch.arange(len(data)))
        loss = F.cross_entropy(mixed_forward(model, a, x), y)
        return torch.autograd.grad(loss, wrt, allow_unused=True)

    on_val = grads(copy.deepcopy(net0), arch0, val, list(arch0.parameters()))  # val: all 8 images
    on_train = grads(copy.deepcopy(net0), arch0, train, list(arch0.parameters()))
    got = [p.grad for p in arch.parameters()]
    for g, v in zip(got, on_val):
        torch.testing.assert_close(g, torch.zeros_like(g) if v is None else v)
    assert any(not torch.allclose(g, t) for g, t in zip(got, on_train) if t is not None)
    assert any(not torch.equal(a, b) for a, b in zip(arch.parameters(), arch0.parameters()))

    # The weights: one SGD step on the training batch's gradient, taken at the new architecture
    # (its weights constant), so no training loss reached the architecture parameters.
    after = copy.deepcopy(arch)
    model = copy.deepcopy(net0)
    params = [p for p in model.parameters()]
    w_grads = grads(model, after, train, params)
    for p, g, new in zip(params, w_grads, net.parameters()):
        torch.testing.assert_close(new, p if g is None else p - 0.1 * g)


def test_derive_takes_the_argmax_depth_then_each_ops_argmax_first_among_equals():
    arch = ArchParameters(MULTI)
    assert arch.derive() == (("conv3",), ("conv3",))  # all equal: the first of each
    with torch.no_grad():
        arch.depth[0].copy_(torch.tensor([0.1, 0.3]))
        arch.op(0, 0).copy_(torch.tensor([0.0, 2.0, 1.0]))
        arch.op(0, 1).copy_(torch.tensor([0.0, 1.0, 3.0]))
        arch.op(1, 0).copy_(torch.tensor([0.0, 0.0, 5.0]))
        arch.op(1, 1).copy_(torch.tensor([9.0, 0.0, 0.0]))  # block 1 runs depth 1: unused
    assert arch.derive() == (("skip", "conv5"), ("conv5",))
    assert MULTI.name(arch.derive()) == "(skip+conv5, conv5)"
    p = arch.log_probs().exp()
    assert len(p) == MULTI.size and float(p.sum()) == pytest.approx(1.0)
    # The derived architecture here is also the most probable one.
    assert MULTI.archs[int(torch.argmax(p))] == arch.derive()


def test_log_probs_follow_the_space_order_over_three_blocks():
    space = SupernetSpace(channels=(4, 4, 4), depths=(1, 2), ops=("conv3", "skip"))
    arch = ArchParameters(space)
    with torch.no_grad():
        for p in arch.parameters():
            p.normal_()
    depth, ops = arch.probabilities(detach=True)
    logp = arch.log_probs()
    for k in (0, 5, 77, space.size - 1):
        expected = 0.0
        for b, block in enumerate(space.archs[k]):
            expected += float(torch.log(depth[b][space.depths.index(len(block))]))
            expected += sum(float(torch.log(ops[b][i][space.ops.index(o)]))
                            for i, o in enumerate(block))
        assert float(logp[k]) == pytest.approx(expected, abs=1e-5)


def test_arch_weights_save_load_and_warm_start_a_parameter_set(tmp_path):
    arch = ArchParameters(MULTI)
    with torch.no_grad():
        for p in arch.parameters():
            p.normal_()
    w = ArchWeights.of(arch, dataset="glyphs-greek", fingerprint="abc", epochs=3,
                       history=({"epoch": 1, "derived": "(1, 1)", "val_acc": 0.5},))
    path = w.save(tmp_path / "exp" / "darts")
    assert path.name == ARCH_WEIGHTS_FILE
    back = ArchWeights.load(path.parent)
    assert back == w and back.path == path and back.derived == arch.derive()
    assert json.loads(path.read_text())["derived"] == MULTI.name(arch.derive())
    warm = ArchParameters(MULTI, init=back)
    for a, b in zip(warm.parameters(), arch.parameters()):
        torch.testing.assert_close(a, b)
    # Another channel count has the same choices: fits; other depths or ops do not.
    ArchParameters(SupernetSpace(channels=(8, 16), depths=(1, 2), ops=MULTI.ops), init=back)
    with pytest.raises(InvalidConfigError, match="same choices"):
        ArchParameters(SupernetSpace(channels=(4, 8), depths=(1, 2, 3), ops=MULTI.ops), init=back)


def test_arch_weights_refuse_wrong_shapes_and_non_finite_values():
    with pytest.raises(InvalidConfigError, match="depth logits"):
        ArchWeights(ONE_BLOCK, depth=[[0.0]], ops=[[[0.0, 0.0], [0.0, 0.0]]])
    with pytest.raises(InvalidConfigError, match="finite"):
        ArchWeights(ONE_BLOCK, depth=[[0.0, float("nan")]], ops=[[[0.0, 0.0], [0.0, 0.0]]])
    with pytest.raises(InvalidConfigError, match="arch_learning_rate"):
        DartsSettings(arch_learning_rate=0)


def test_saved_arch_weights_finds_runs_newest_first_and_skips_damaged_ones(tmp_path):
    import os

    for i, name in enumerate(("a", "b")):
        path = ArchWeights.of(ArchParameters(ONE_BLOCK), dataset=name).save(tmp_path / name / "darts")
        os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / "c" / "darts").mkdir(parents=True)
    (tmp_path / "c" / "darts" / ARCH_WEIGHTS_FILE).write_text("{truncated")
    with pytest.warns(UserWarning, match="Skipping the DARTS result .*c/darts"):
        found = saved_arch_weights(tmp_path)
    assert [w.dataset for w in found] == ["b", "a"]
    assert saved_arch_weights(tmp_path / "nothing-here") == []


@pytest.mark.parametrize("depths,ops", [((1, 2, 3), ("conv3",)), ((1, 2), ("conv3", "skip"))])
def test_every_subnet_is_reachable_by_derivation(depths, ops):
    space = SupernetSpace(channels=(4, 8), depths=depths, ops=ops)
    arch = ArchParameters(space)
    for chosen in itertools.islice(space.archs, 0, None, 5):
        _one_hot(arch, chosen)
        assert arch.derive() == chosen
