"""The supernet module: space, weight sharing, extract, batch-norm recalibration, bad input."""

from __future__ import annotations

import uuid

import pytest
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError, UnknownNameError
from automl_chars.models import build_model, check_model, split_head
from automl_chars.supernet import OPS, SubnetSpec, Supernet, SupernetSpace, recalibrate_bn
from automl_chars.supernet.samplers import make_sampler
from automl_chars.supernet.training import evaluate_subnet, train_supernet_epoch
from automl_chars.training import DeviceData

SMALL = SupernetSpace(channels=(4, 8))


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny convolutions


def test_the_default_space_is_seed_002s():
    space = SupernetSpace()
    assert space.size == 9 and len(space.archs) == 9
    assert [space.name(a) for a in space.archs][:3] == ["(1, 1)", "(1, 2)", "(1, 3)"]
    assert space.check("(1, 3)") == space.check((1, 3)) == (("conv3",), ("conv3",) * 3)
    assert SupernetSpace.from_dict(space.to_dict()) == space


def test_spaces_of_thousands_of_subnets_with_skip():
    space = SupernetSpace(channels=(4, 8), ops=("conv3", "conv5", "skip"))
    assert space.size == (3 + 9 + 27) ** 2 == len(set(space.archs))
    arch = (("conv5", "skip"), ("conv3",))
    assert space.name(arch) == "(conv5+skip, conv3)"
    assert space.check(space.name(arch)) == arch
    net = Supernet(space, 5)
    assert net(torch.zeros(2, 1, 28, 28), arch).shape == (2, 5)
    with pytest.raises(InvalidConfigError, match="give each block's operations"):
        space.check((1, 2))


@pytest.mark.parametrize("arch,fragment", [
    ((4, 1), r"block 1 has 4 sub-blocks; valid depths are \[1, 2, 3\]"),
    ((1,), "has 1 blocks; this space has 2 NAS blocks"),
    (((("conv9",)), ("conv3",)), r"block 1 uses \['conv9'\]; valid operations are \['conv3'\]"),
    ("1, 3", "write it as '\\(3, 3\\)'"),
])
def test_an_architecture_outside_the_space_names_the_valid_choices(arch, fragment):
    with pytest.raises(InvalidConfigError, match=fragment):
        Supernet(SMALL, 3)(torch.zeros(2, 1, 28, 28), arch)


def test_a_sub_block_that_changes_the_shape_is_refused():
    name = f"strided-{uuid.uuid4().hex[:6]}"
    OPS.add(name, lambda c: nn.Conv2d(c, c, 3, stride=2, padding=1))
    with pytest.raises(InvalidConfigError, match=f"'{name}' changes the shape.*keep height"):
        Supernet(SupernetSpace(channels=(4, 8), ops=("conv3", name)), 3)
    wider = f"wider-{uuid.uuid4().hex[:6]}"
    OPS.add(wider, lambda c: nn.Conv2d(c, 2 * c, 3, padding=1))
    with pytest.raises(InvalidConfigError, match="changes the shape"):
        build_model("subnet", SubnetSpec(SupernetSpace(channels=(4,), ops=(wider,)), ((wider,),)),
                    3)


def test_unknown_operation_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'conv3'"):
        SupernetSpace(ops=("conv33",))


def test_extract_gives_the_same_outputs_as_forward():
    torch.manual_seed(0)
    net = Supernet(SupernetSpace(channels=(4, 8), ops=("conv3", "skip")), 6)
    x = torch.randn(8, 1, 28, 28)
    net.train()
    net(x, net.space.largest)  # moves the shared batch-norm statistics away from their init
    net.eval()
    for arch in net.space.archs[:: max(1, net.space.size // 12)]:
        sub = net.extract(arch).eval()
        assert torch.allclose(sub(x), net(x, arch), atol=1e-6)
        assert torch.allclose(sub.features(x), net.features(x, arch), atol=1e-6)
        assert split_head(sub) is sub.head
    # A copy: training the extracted subnet leaves the supernet alone.
    sub = net.extract(net.space.archs[0])
    with torch.no_grad():
        sub.head.weight.add_(1.0)
    assert not torch.equal(sub.head.weight, net.head.weight)


def test_subnet_is_a_registered_model_with_features_and_head():
    spec = SubnetSpec(SMALL, (2, 3))
    model = build_model("subnet", spec.to_dict(), 7, (1, 28, 28))
    check_model(model, (1, 28, 28), 7)
    assert model.features(torch.zeros(2, 1, 28, 28)).shape == (2, 8)
    assert split_head(model).out_features == 7
    supernet = build_model("supernet", SMALL.to_dict(), 7)
    check_model(supernet, (1, 28, 28), 7)  # without an arch: the largest subnet
    with pytest.raises(InvalidConfigError, match="SubnetSpec.to_dict"):
        build_model("subnet", {"arch": [1, 2]}, 7)


def _data(n=64, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randint(0, 60, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for i in range(n):
        x[i, 0, 3 + 6 * int(y[i]) : 6 + 6 * int(y[i]), 3:25] = 230
    return DeviceData.create(x, y, torch.device("cpu"))


def test_a_step_on_one_subnet_changes_exactly_the_modules_it_uses():
    torch.manual_seed(0)
    net = Supernet(SMALL, 4)
    arch = SMALL.check((1, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sampler = make_sampler(SMALL, "uniform")
    sampler.choose = lambda: [SMALL.index(arch)]
    data = _data()
    train_supernet_epoch(net, opt, sampler, data, data, batch_size=64,
                         generator=torch.Generator().manual_seed(0))
    used = {id(m) for m in net.modules_of(arch)}
    for b, block in enumerate(net.blocks):
        for i, ops in enumerate(block):
            module = ops["conv3"]
            changed = [not torch.equal(p, before[n2]) for n2, p in net.state_dict().items()
                       if n2.startswith(f"blocks.{b}.{i}.conv3.")]
            assert all(changed) if id(module) in used else not any(changed), (b, i)
    for shared in ("stem.0.weight", "reductions.0.0.weight", "head.weight"):
        assert not torch.equal(net.state_dict()[shared], before[shared])


def test_recalibration_makes_batch_norm_exact_for_the_subnet():
    """Mixed statistics from other subnets are replaced by the subnet's own: after
    recalibration, evaluation mode matches a full-batch pass in training mode."""
    torch.manual_seed(0)
    net = Supernet(SMALL, 4)
    data = _data()
    x = data.batch(slice(0, 64))[0]
    net.train()
    for arch in SMALL.archs:  # every subnet moves the shared statistics
        net(x * 3 + 1, arch)
    arch = SMALL.check((3, 1))
    sub = recalibrate_bn(net.extract(arch), x, batch_size=64)
    reference = net.extract(arch).train()
    for bn in (m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.track_running_stats = False
        bn.running_mean = bn.running_var = None
    with torch.no_grad():
        exact = reference(x)
        recalibrated = (sub(x) - exact).abs().max()
        mixed = (net.extract(arch).eval()(x) - exact).abs().max()
    # Running variances are unbiased (n / (n - 1)), batch variances biased: close, not equal.
    assert recalibrated < 5e-3 and recalibrated < mixed / 20, (recalibrated, mixed)
    loss, acc = evaluate_subnet(net, arch, x, data)
    assert 0.0 <= acc <= 1.0 and loss == loss
