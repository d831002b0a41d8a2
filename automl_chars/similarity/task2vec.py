"""The ``task2vec`` measure: tasks embedded by the diagonal Fisher information of a probe network.

Achille et al., "Task2Vec: Task Embedding for Meta-Learning", ICCV 2019. The probe is the
reference network: its feature extractor is kept fixed, a new linear head is fitted to the task's
labels (L2-regularised logistic regression on the features), and the task's embedding is the
diagonal of the Fisher information of the feature extractor's weights,
``E_x E_{y ~ p(y|x)} [(d log p(y|x) / dw)^2]`` (the expectation over the probe's own
predictions taken exactly), averaged over the weights of each filter (output channel or unit).
Tasks are compared with the paper's symmetric distance: the cosine distance between
``F_a / (F_a + F_b)`` and ``F_b / (F_a + F_b)``.

This is the plain estimator of the paper, without its robust (perturbation-based) variant. In a
bootstrap round the head is not refitted: the per-image Fisher terms of the full target sample
are resampled, so the interval reflects the choice of images, not of the head.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from automl_chars.similarity.base import Context, Measure, register_measure
from automl_chars.similarity.source import Sample, SourceView

#: L2 penalty of the probe head (per feature weight, on the mean loss).
HEAD_L2 = 1e-2
#: Labels per image over which the Fisher's expectation is taken (the most probable ones).
TOP_LABELS = 8
#: Per-sample gradients held at once (floats); bounds the memory of the Fisher computation.
_GRAD_BUDGET = 20_000_000


class _Probe(nn.Module):
    def __init__(self, body: nn.Module, head: nn.Linear):
        super().__init__()
        self.body, self.probe_head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probe_head(self.body.features(x))


def fit_head(features: np.ndarray, labels: np.ndarray, num_classes: int,
             l2: float = HEAD_L2, max_iter: int = 200) -> nn.Linear:
    """Multinomial logistic regression on fixed features (L-BFGS from zero weights, so the
    result is deterministic), returned as an ``nn.Linear`` in float32."""
    f = torch.from_numpy(features).double()
    y = torch.from_numpy(labels).long()
    w = torch.zeros(num_classes, f.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(f @ w.T + b, y) + l2 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    head = nn.Linear(f.shape[1], num_classes)
    with torch.no_grad():
        head.weight.copy_(w.detach().float())
        head.bias.copy_(b.detach().float())
    return head


def fisher_terms(model: nn.Module, head: nn.Linear, x: torch.Tensor) -> np.ndarray:
    """Per-image diagonal Fisher terms of ``model``'s feature extractor under ``head``,
    averaged per filter: an ``(n, filters)`` array. ``x`` is already normalised.

    The expectation over labels is taken over each image's :data:`TOP_LABELS` most probable
    labels, ``sum_y p(y|x) g_y(x)^2`` with ``g_y`` the gradient of ``log p(y|x)`` (the rest
    carry little probability), rather than one label drawn per image: on a few hundred images a
    single draw leaves the embedding too noisy to tell two samples of one task from two tasks.
    """
    from torch.func import functional_call, grad, vmap

    device = next(model.parameters()).device
    probe = _Probe(model, head.to(device)).eval()
    x = x.to(device)
    params = {k: v.detach() for k, v in probe.named_parameters()
              if k.startswith("body.") and not k.startswith("body.head.")}
    buffers = {k: v.detach() for k, v in probe.named_buffers()}
    with torch.no_grad():
        prob = F.softmax(probe(x), dim=1)
    top = min(TOP_LABELS, prob.shape[1])
    weights, labels = prob.topk(top, dim=1)

    def loss(p, xi, yi):
        out = functional_call(probe, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    size = sum(v.numel() for v in params.values())
    chunk = max(1, min(256, _GRAD_BUDGET // max(1, size)))
    pairs_x = torch.arange(len(x), device=device).repeat_interleave(top)
    pairs_y, weights = labels.reshape(-1), weights.reshape(-1)
    terms = []
    for i in range(0, len(pairs_x), chunk):
        xi, yi, wi = x[pairs_x[i : i + chunk]], pairs_y[i : i + chunk], weights[i : i + chunk]
        with torch.no_grad():
            g = per_sample(params, xi, yi)
            # (pairs, filters): a weight's squares averaged per output channel/unit
            parts = [v.square().reshape(len(v), v.shape[1] if v.ndim > 1 else 1, -1).mean(2)
                     for v in (g[k] for k in params)]
            terms.append(torch.cat(parts, dim=1).mul_(wi[:, None]).double().cpu())
    per_pair = torch.cat(terms).reshape(len(x), top, -1)
    return per_pair.sum(1).numpy()


def task2vec_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The paper's symmetric distance: cosine distance of ``a/(a+b)`` and ``b/(a+b)``."""
    total = a + b
    total = np.where(total > 0, total, 1.0)
    u, v = a / total, b / total
    norm = np.linalg.norm(u) * np.linalg.norm(v)
    return float(1.0 - (u @ v) / norm) if norm > 0 else 1.0


@register_measure
class Task2Vec(Measure):
    """Distance of Task2Vec embeddings (diagonal Fisher of the reference network with a head
    fitted to each task; Achille et al. 2019). Label-aware."""

    name = "task2vec"
    description = "cosine distance of diagonal-Fisher task embeddings of a probe network (Achille et al. 2019)"
    higher_is_more_similar = False
    label_aware = True
    uses = "reference"
    bounds = (0.0, 1.0)
    slow = True  # one gradient per image and likely label: ~11 s per source with a ResNet-18

    def _terms(self, sample: Sample, ctx: Context) -> np.ndarray:
        """Per-image Fisher terms of the base of ``sample`` (rows ``0..n-1``), cached."""

        def compute():
            from automl_chars.similarity.base import normalise

            ref = ctx.reference
            base = ctx.base(sample)
            feats = ctx.outputs(ref, base).features
            x = normalise(base.x, ref.mean, ref.std)
            head = fit_head(feats, base.labels, base.num_classes)
            return fisher_terms(ref.model, head, x)

        return ctx.cached(("task2vec", sample.key), compute)

    def source_state(self, source: SourceView, ctx: Context) -> np.ndarray:
        return self._terms(source.sample(), ctx).mean(axis=0)

    def target_state(self, target: Sample, ctx: Context) -> np.ndarray:
        return self._terms(target, ctx)[target.rows].mean(axis=0)

    def score(self, target, tstate, source, sstate, ctx) -> float:
        return task2vec_distance(tstate, sstate)
