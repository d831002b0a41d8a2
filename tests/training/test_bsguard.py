"""BSGuard: a step that runs out of memory is redone in halved micro-batches with the whole
batch's gradient, training goes on, every shrink is reported, and a floor fails the trial.
Out-of-memory errors are injected on the CPU by a model that refuses batches above a size."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from automl_chars.errors import InvalidConfigError, TrialFailure
from automl_chars.models import MODELS
from automl_chars.trainables import FAILURE, SupervisedTrainable, TrialSettings
from automl_chars.training import AugmentSettings, DeviceData, OptimizerSettings, train_epoch
from automl_chars.training.bsguard import (
    CPU_ALLOCATOR_FAILURE,
    BatchGuard,
    guarded_step,
    is_out_of_memory,
)


def _cuda_oom():
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def _cpu_oom():
    return RuntimeError(f"[enforce fail at alloc_cpu.cpp:117] . {CPU_ALLOCATOR_FAILURE}: "
                        f"you tried to allocate 8589934592 bytes.")


class OOMNet(nn.Module):
    """A linear classifier over flattened images (no batch statistics) that runs "out of
    memory" on any training batch larger than ``limit`` (evaluation keeps no activations for
    a backward pass); counts the samples it has trained on."""

    def __init__(self, limit: int, num_classes: int = 3, pixels: int = 28 * 28,
                 error=_cuda_oom):
        super().__init__()
        self.limit, self.error, self.seen = limit, error, 0
        self.head = nn.Linear(pixels, num_classes)

    def features(self, x):
        return x.flatten(1)

    def forward(self, x):
        if self.training:
            if len(x) > self.limit:
                raise self.error()
            self.seen += len(x)
        return self.head(self.features(x))


def _batch(n=16, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("error", [_cuda_oom, _cpu_oom, MemoryError])
def test_an_injected_oom_shrinks_the_batch_and_keeps_the_whole_batch_gradient(error):
    torch.manual_seed(0)
    guarded = OOMNet(limit=5, error=error)
    reference = copy.deepcopy(guarded)
    reference.limit = 10**9
    x, y = _batch(16)
    opt = torch.optim.SGD(guarded.parameters(), lr=0.5)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.5)
    guard = BatchGuard()
    loss, out = guarded_step(guarded, opt, x, y, guard)
    ref_loss, ref_out = guarded_step(reference, ref_opt, x, y)  # no guard: the whole batch
    # 16 -> 8 -> 4: two shrinks, then four micro-batches of 4 accumulated into one step.
    assert [(s["from"], s["to"]) for s in guard.shrinks] == [(16, 8), (8, 4)]
    assert guard.micro_batch == 4 and guard.steps == 1 and guarded.seen == 16
    assert torch.allclose(loss, ref_loss, atol=1e-6) and torch.allclose(out, ref_out, atol=1e-5)
    for p, q in zip(guarded.parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6)  # the same step: the same gradient and lr
    assert "step 0: 16->8; step 0: 8->4" == guard.describe()


def test_training_goes_on_at_the_smaller_micro_batch_without_restarting():
    torch.manual_seed(0)
    x = torch.randint(0, 255, (40, 28, 28), dtype=torch.uint8)
    y = torch.arange(40) % 3
    data = DeviceData.create(x, y, torch.device("cpu"))
    model, guard = OOMNet(limit=7), BatchGuard()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    stats = [train_epoch(model, opt, data, 16, gen, AugmentSettings(), guard=guard)
             for _ in range(2)]
    assert [s.samples for s in stats] == [40, 40]  # every batch trained, in both epochs
    assert len(guard.shrinks) == 2 and guard.micro_batch == 4  # shrunk once for good
    assert guard.steps == 6


def test_the_floor_fails_with_a_clear_reason_and_other_errors_pass_through():
    x, y = _batch(16)
    model = OOMNet(limit=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrialFailure, match=r"micro-batches of 4 \(batch 16\).*min_micro_batch=4"
                                           r".*2 shrink\(s\).*CUDA out of memory"):
        guarded_step(model, opt, x, y, BatchGuard(min_micro_batch=4))
    with pytest.raises(torch.cuda.OutOfMemoryError):  # without a guard: as before
        guarded_step(model, opt, x, y)

    class Broken(OOMNet):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    guard = BatchGuard()
    with pytest.raises(RuntimeError, match="shapes"):
        guarded_step(Broken(limit=100), opt, x, y, guard)
    assert guard.shrinks == []
    assert not is_out_of_memory(RuntimeError("shapes")) and is_out_of_memory(_cpu_oom())
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(InvalidConfigError, match="min_micro_batch"):
            BatchGuard(min_micro_batch=bad)


# -- in a Trainable -------------------------------------------------------------------------------
if "test-oom" not in MODELS:
    MODELS.add("test-oom", lambda arch, num_classes, shape: OOMNet(arch["limit"], num_classes))


class OOMTrainable(SupervisedTrainable):
    @classmethod
    def settings(cls, config):
        c = dict(config)
        return TrialSettings("test-oom", {"limit": c.pop("limit")},
                             OptimizerSettings("sgd", 0.01, batch_size=16), AugmentSettings(),
                             {**c, "limit": config["limit"]})


def _trial(make_dataset, config):
    ds = make_dataset(num_classes=3, per_class=20)

    class Local(OOMTrainable):
        def setup(self, config):
            super().setup(config, dataset=ds)

    return Local(config=config)


def test_a_trial_reports_every_shrink_and_keeps_training(make_dataset, tmp_path):
    trial = _trial(make_dataset, {"limit": 5})
    first, second = trial.train(), trial.train()
    assert FAILURE not in first and first["batch_shrinks"] == 2 and first["micro_batch"] == 4
    assert first["batch_shrink_events"] == "step 0: 16->8; step 0: 8->4"
    assert second["budget"] == 2 and second["batch_shrinks"] == 2  # no restart, no new shrink
    assert second["samples_seen"] == 2 * first["samples_seen"]
    path = trial.save(str(tmp_path / "ckpt"))  # a resumed trial keeps the smaller batches
    resumed = _trial(make_dataset, {"limit": 5})
    resumed.restore(path)
    assert resumed.guard.micro_batch == 4 and len(resumed.guard.shrinks) == 2
    trial.stop()
    resumed.stop()


def test_a_trial_below_its_floor_fails_with_the_reason(make_dataset):
    trial = _trial(make_dataset, {"limit": 5, "min_micro_batch": 8})
    result = trial.train()
    assert result["val_acc"] != result["val_acc"]  # NaN: a failed result
    assert "min_micro_batch=8" in result[FAILURE] and "at budget 1" in result[FAILURE]
    assert result["batch_shrinks"] == 1
    trial.stop()
    bad = _trial(make_dataset, {"limit": 5, "min_micro_batch": 0})
    assert "min_micro_batch must be" in bad.train()[FAILURE]
    bad.stop()
