"""BOHB as a search: hpbandster's options, the preset a sweep runs (a named seed-001 preset or
explicit budgets), and :func:`build_search`, the one place that builds the searcher and the
scheduler, so that a warm-start searcher can wrap the BOHB searcher without touching the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from ray.tune.search import Searcher

from automl_chars.errors import InvalidConfigError, is_whole
from automl_chars.search.presets import BOHBPreset, get_preset
from automl_chars.search.scheduler import ResumableHyperBandForBOHB
from automl_chars.search.searcher import BOHBSearcher
from automl_chars.search.spec import SweepSpec

#: hpbandster's BOHB options that ``bohb_config`` may set.
BOHB_OPTIONS = ("min_points_in_model", "top_n_percent", "num_samples", "random_fraction",
                "bandwidth_factor", "min_bandwidth")


def check_bohb_config(bohb_config: dict | None) -> dict:
    """``bohb_config`` as a plain dict of hpbandster's BOHB options; unknown keys or values that
    are not numbers raise."""
    config = dict(bohb_config or {})
    unknown = sorted(set(config) - set(BOHB_OPTIONS))
    if unknown:
        raise InvalidConfigError(f"Unknown bohb_config option(s) {unknown}; hpbandster's BOHB "
                                 f"takes {list(BOHB_OPTIONS)}.")
    bad = {k: v for k, v in config.items()
           if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))}
    if bad:
        raise InvalidConfigError(f"bohb_config values must be numbers (or None), got {bad}.")
    return config


def resolve_preset(preset: str | BOHBPreset | None, eta: int | None, min_budget: int | None,
                   max_budget: int | None) -> BOHBPreset:
    """The preset, or one full HyperBand round from explicit ``eta``/budgets (3, 1, 9 by default;
    a value given is used as given, so 0 is refused rather than replaced)."""
    given = {k: v for k, v in {"eta": eta, "min_budget": min_budget, "max_budget": max_budget}.items()
             if v is not None}
    if preset is not None:
        if given:
            raise InvalidConfigError(f"Pass either a preset or {sorted(given)}, not both.")
        return get_preset(preset)
    for key, value in given.items():
        if not is_whole(value):
            raise InvalidConfigError(f"{key} must be a whole number, got {value!r}.")
    base = BOHBPreset(given.get("eta", 3), given.get("min_budget", 1), given.get("max_budget", 9), 1)
    return BOHBPreset(base.eta, base.min_budget, base.max_budget, base.s_max + 1)


SearcherFactory = Callable[[BOHBSearcher], Searcher]


def build_search(spec: SweepSpec, preset: BOHBPreset, seed: int, bohb_config: dict | None = None,
                 searcher: SearcherFactory | None = None, lead: int = 0,
                 ) -> tuple[Searcher, ResumableHyperBandForBOHB]:
    """The searcher and scheduler of a BOHB sweep (the budget is ``training_iteration``).

    ``searcher`` wraps the BOHB searcher (e.g. a warm start): it receives the
    :class:`BOHBSearcher` and returns the searcher Tune runs, which must keep the contract of
    :class:`~automl_chars.search.searcher.BracketSearcher`. ``lead``: the first trials (a warm
    start's seeds), as many as it says, train to the top budget at once, in a bracket of their own.
    """
    bohb = BOHBSearcher(spec.space, bohb_config=bohb_config, metric=spec.metric, mode=spec.mode,
                        seed=seed)
    scheduler = ResumableHyperBandForBOHB(
        time_attr="training_iteration", metric=spec.metric, mode=spec.mode,
        min_t=preset.min_budget, max_t=preset.max_budget, reduction_factor=preset.eta, lead=lead,
    )
    return (bohb if searcher is None else searcher(bohb)), scheduler


__all__ = ["BOHB_OPTIONS", "SearcherFactory", "build_search", "check_bohb_config", "is_whole",
           "resolve_preset"]
