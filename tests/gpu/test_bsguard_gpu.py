"""BSGuard against a real CUDA out-of-memory error (skipped without a GPU)."""

import pytest
import torch
from torch import nn

from automl_chars.training import DeviceData, train_epoch
from automl_chars.training.bsguard import BatchGuard

pytestmark = [pytest.mark.slow, pytest.mark.gpu, pytest.mark.usefixtures("needs_gpu")]


class Hungry(nn.Module):
    """A linear classifier whose training forward allocates ``per_sample`` bytes per image, as
    the activations of a big network would."""

    def __init__(self, per_sample: int):
        super().__init__()
        self.per_sample = per_sample
        self.head = nn.Linear(28 * 28, 3)

    def forward(self, x):
        out = self.head(x.flatten(1))
        if self.training:
            waste = torch.ones(len(x), self.per_sample // 4, device=x.device)
            out = out + waste[:, :1] * 0
        return out


def test_a_real_cuda_oom_shrinks_the_batch_and_training_goes_on():
    device = torch.device("cuda")
    free, _ = torch.cuda.mem_get_info(device)
    batch = 64
    model = Hungry(per_sample=free // 20).to(device)  # a whole batch needs 3.2x the free memory
    x = torch.randint(0, 255, (2 * batch, 28, 28), dtype=torch.uint8)
    data = DeviceData.create(x, torch.arange(2 * batch) % 3, device)
    guard = BatchGuard()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator(device=device).manual_seed(0)
    stats = train_epoch(model, opt, data, batch, gen, guard=guard)
    assert stats.samples == 2 * batch
    assert guard.shrinks and 1 <= guard.micro_batch <= batch // 4
    assert all("out of memory" in s["error"] for s in guard.shrinks)
