"""Dataset similarity: which portfolio sources resemble a target, by several measures.

Plain PyTorch/numpy (no Ray). A target is compared on a stratified sample of its images with
every source, each seen as a :class:`SourceView` (a model trained on it plus a small sample of
its images); :func:`similarity` returns one row per source with every measure's score, a
bootstrap interval and the seconds it took. Measures are registered in :data:`MEASURES`; each
says whether a higher score means more similar (``higher_is_more_similar``): the distances
(``sen``, ``frechet``, ``otdd``, ``meta_features``, ``task2vec``) are lower-is-more-similar, the
transferability scores (``logme``, ``leep``, ``nce``, ``nleep``, ``hscore``, ``sfda``, ``parc``,
``knn``) higher-is-better; ``learned`` combines the transferability scores and the model size
by a ranker trained on a ground truth (:mod:`.learned`). The default set, ``"fast"``, leaves out the slow measures
(``task2vec``); ``"all"`` runs every one. See docs/similarity.md.
"""

from automl_chars.similarity import (  # noqa: F401  (registers the measures)
    distribution,
    learned,
    meta_features,
    separability,
    task2vec,
    transferability,
)
from automl_chars.similarity.base import (
    ALL,
    DEFAULT_MEASURE,
    FAST,
    MEASURES,
    Context,
    Measure,
    fast_measures,
    get_measure,
    register_measure,
)
from automl_chars.similarity.compare import (
    DEFAULT_BOOTSTRAP,
    rank_sources,
    resolve_measures,
    similarity,
    similarity_matrix,
)
from automl_chars.similarity.learned import LearnedRanker, leave_one_target_out
from automl_chars.similarity.meta_features import META_FEATURES
from automl_chars.similarity.separability import hscore, knn_accuracy, parc, sfda
from automl_chars.similarity.source import (
    DEFAULT_SAMPLE_SIZE,
    Sample,
    SimilarityError,
    SourceView,
)
from automl_chars.similarity.transferability import leep, logme, nce, nleep


def plot_heatmap(frame, path, title=None):
    """Writes a heatmap of a similarity table or matrix to ``path`` (PNG); see
    :func:`automl_chars.similarity.plots.plot_heatmap` (imported on first use: matplotlib)."""
    from automl_chars.similarity.plots import plot_heatmap as plot

    return plot(frame, path, title)


__all__ = [
    "ALL", "DEFAULT_BOOTSTRAP", "DEFAULT_MEASURE", "DEFAULT_SAMPLE_SIZE", "FAST", "MEASURES", "META_FEATURES",
    "Context", "LearnedRanker", "Measure", "Sample", "SimilarityError", "SourceView", "fast_measures", "get_measure",
    "hscore", "knn_accuracy", "leave_one_target_out", "leep", "logme", "nce", "nleep", "parc", "plot_heatmap",
    "rank_sources", "register_measure", "resolve_measures", "sfda", "similarity",
    "similarity_matrix",
]
