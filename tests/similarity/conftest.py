"""Tiny portfolios for the similarity tests: three synthetic image domains, each with a small
CNN trained on it for a couple of hundred steps (session-scoped: built once, about 10 s).

The domains are drawn in code (no files, no download) and differ clearly: horizontal bars,
vertical bars and square outlines, four classes each (the class sets the position), on noise.
A second draw with another seed gives fresh images of the same domain.
"""

from __future__ import annotations

import pytest
from similarity_helpers import DOMAINS, SAMPLE, draw_domain, one_thread, train


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def domains():
    """name -> Dataset of each synthetic domain (seed 0)."""
    return {d: draw_domain(d) for d in DOMAINS}


@pytest.fixture(scope="session")
def fresh():
    """name -> Dataset: new images of each domain (seed 1), as targets."""
    return {d: draw_domain(d, per_class=25, seed=1) for d in DOMAINS}


@pytest.fixture(scope="session")
def models(domains):
    with one_thread():  # built before the module-scoped _one_thread applies
        return {d: train(ds) for d, ds in domains.items()}


@pytest.fixture(scope="session")
def views(domains, models):
    """One SourceView per domain, with its trained model (the first one is the reference)."""
    from automl_chars.similarity import SourceView

    return [SourceView.from_dataset(d, domains[d], models[d], SAMPLE, seed=0) for d in DOMAINS]
