"""``TuneBOHB`` that hands trials plain values and records which suggestions BOHB's model made."""

from __future__ import annotations

from hpbandster.optimizers.config_generators.bohb import BOHB
from ray.tune.search.bohb import TuneBOHB

from automl_chars.spaces.values import SUGGESTED_BY, plain_config


class _RecordingBOHB(BOHB):
    """hpbandster's BOHB config generator, keeping the info dict of its last suggestion."""

    last_info: dict | None = None

    def get_config(self, budget):
        config, info = super().get_config(budget)
        self.last_info = info
        return config, info


class BOHBSearcher(TuneBOHB):
    """Ray's ``TuneBOHB`` with two additions.

    - Suggestions leave as plain Python values (ConfigSpace 1.x yields numpy scalars); this is the
      single conversion point between the searcher and trials.
    - Each suggestion says whether BOHB's KDE model proposed it (hpbandster's
      ``model_based_pick``) or it was drawn at random, in the configuration key ``suggested_by``
      ("model", "random", or "given" for ``points_to_evaluate``): it travels with the trial into its ``params.json`` and the result
      table, so it survives a resumed sweep. Trainables drop it (``strip_meta``).
    """

    def __init__(self, *args, **kwargs):
        self.sources: dict[str, str] = {}  # trial id -> "model" | "random" | "given"
        super().__init__(*args, **kwargs)

    def _setup_bohb(self) -> None:
        super()._setup_bohb()
        # Same generator and settings as the base class, but recording each pick's info.
        self.bohber = _RecordingBOHB(self._space, **(self._bohb_config or {}))

    def suggest(self, trial_id: str) -> dict | None:
        if getattr(self, "bohber", None) is not None:
            self.bohber.last_info = None
        config = super().suggest(trial_id)
        if not isinstance(config, dict):
            return config
        info = self.bohber.last_info  # None: the config came from points_to_evaluate
        source = "given" if info is None else "model" if info.get("model_based_pick") else "random"
        self.sources[trial_id] = source
        return {**plain_config(config), SUGGESTED_BY: source}
