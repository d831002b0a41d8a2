"""``TuneBOHB`` that hands trials plain values, records where each suggestion came from, and
states the contract with the scheduler that a wrapping searcher (e.g. a warm start) must keep.

The contract between :class:`~automl_chars.search.scheduler.ResumableHyperBandForBOHB` and the
searcher Tune holds (``tune_controller.search_alg.searcher``, the outermost one when searchers
wrap each other) is :class:`BracketSearcher`:

- ``on_pause(trial_id)`` / ``on_unpause(trial_id)``: the scheduler parks a trial at its rung and
  later resumes it; BOHB must not count it as running meanwhile.
- ``on_trial_result(trial_id, result)``: every result at a rung carries
  ``result["hyperband_info"]["budget"]``; that is what BOHB learns from (failed trials included).
- A wrapper that suggests a trial itself (not through BOHB) registers it with
  :meth:`BOHBSearcher.adopt` before returning it, so that BOHB knows its configuration when its
  rung results arrive and learns from it like from its own suggestions.
- ``save(path)`` / ``restore(path)``: Tune saves the searcher with its experiment state; a
  wrapper saves the wrapped searcher's state with its own.
"""

from __future__ import annotations

import copy
import os
import tempfile
from typing import Protocol, runtime_checkable

import cloudpickle
from hpbandster.optimizers.config_generators.bohb import BOHB
from ray.tune.search import Searcher
from ray.tune.search.bohb import TuneBOHB

from automl_chars.errors import ExperimentStateError
from automl_chars.ray_compat import searcher_bohb_config, searcher_space
from automl_chars.search import hpbandster_compat  # noqa: F401  (its warning filter)
from automl_chars.spaces.values import SUGGESTED_BY, plain_config


@runtime_checkable
class BracketSearcher(Protocol):
    """What the scheduler calls on the searcher (see the module docstring)."""

    def on_pause(self, trial_id: str) -> None: ...

    def on_unpause(self, trial_id: str) -> None: ...

    def on_trial_result(self, trial_id: str, result: dict) -> None: ...


class _RecordingBOHB(BOHB):
    """hpbandster's BOHB config generator, keeping the info dict of its last suggestion."""

    last_info: dict | None = None

    def get_config(self, budget):
        config, info = super().get_config(budget)
        self.last_info = info
        return config, info


class BOHBSearcher(TuneBOHB):
    """Ray's ``TuneBOHB`` with three additions.

    - Suggestions leave as plain Python values (ConfigSpace 1.x yields numpy scalars); this is the
      single conversion point between the searcher and trials.
    - Each suggestion says where it came from in the configuration key ``suggested_by``:
      "model" when BOHB's KDE proposed it (hpbandster's ``model_based_pick``), "random", "given"
      for ``points_to_evaluate``, or what a wrapping searcher names in :meth:`adopt`. It travels
      with the trial into its ``params.json`` and the result table. Trainables drop it
      (``strip_meta``).
    - Every trial's configuration is kept for the whole sweep, so a trial that errored and is
      revived on resume (``resume_errored``) still reaches BOHB's model with its results; one
      Tune restarted from scratch (``restart_errored``: a copy under a new id) too.
    """

    def __init__(self, *args, **kwargs):
        self.sources: dict[str, str] = {}  # trial id -> where its configuration came from
        self.params: dict[str, dict] = {}  # trial id -> its configuration, kept after it ends
        super().__init__(*args, **kwargs)

    def _setup_bohb(self) -> None:
        super()._setup_bohb()
        # Same generator and settings as the base class, but recording each pick's info.
        self.bohber = _RecordingBOHB(searcher_space(self), **searcher_bohb_config(self))

    def suggest(self, trial_id: str) -> dict | None:
        if getattr(self, "bohber", None) is not None:
            self.bohber.last_info = None
        config = super().suggest(trial_id)
        if not isinstance(config, dict):
            return config
        info = self.bohber.last_info  # None: the config came from points_to_evaluate
        source = "given" if info is None else "model" if info.get("model_based_pick") else "random"
        self.sources[trial_id] = source
        self.params[trial_id] = copy.deepcopy(self.trial_to_params[trial_id])
        return {**plain_config(config), SUGGESTED_BY: source}

    def adopt(self, trial_id: str, config: dict, suggested_by: str) -> dict:
        """Registers a configuration that a wrapping searcher suggests itself, as if BOHB had
        suggested it; returns the configuration to hand to Tune (with ``suggested_by``).

        ``config`` must be a configuration of this searcher's space (plain values, active
        hyperparameters only); anything else raises ``ValueError`` from ConfigSpace.
        """
        from ConfigSpace import Configuration

        values = plain_config(Configuration(searcher_space(self), values=config))  # validates
        self.trial_to_params[trial_id] = copy.deepcopy(values)
        self.params[trial_id] = copy.deepcopy(values)
        self.running.add(trial_id)
        self.sources[trial_id] = suggested_by
        return {**values, SUGGESTED_BY: suggested_by}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.trial_to_params:
            if trial_id in self.params:  # revived (resume_errored): the same trial id
                self.trial_to_params[trial_id] = copy.deepcopy(self.params[trial_id])
            else:  # restarted (restart_errored): Tune's copy of the trial has a new id
                config = _result_config(result)
                self.params[trial_id] = self._restarted_params(config)
                self.sources[trial_id] = config.get(SUGGESTED_BY, "given")
                self.trial_to_params[trial_id] = copy.deepcopy(self.params[trial_id])
        super().on_trial_result(trial_id, result)

    def _restarted_params(self, config: dict) -> dict:
        """The configuration of a trial Tune restarted from scratch under a new id, cut to this
        searcher's space, so that BOHB learns from it as from the trial it replaces."""
        names = set(searcher_space(self).keys())
        return {k: v for k, v in plain_config(config).items() if k in names}

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        # Ray's deletes the trial's parameters unconditionally; a trial Tune stops twice (or
        # one revived and ended again) must not raise KeyError here.
        self.trial_to_params.setdefault(trial_id, self.params.get(trial_id))
        super().on_trial_complete(trial_id, result, error)


def _result_config(result: dict) -> dict:
    """A trial's configuration from a result Tune hands the searcher: nested under ``config``,
    or flattened into ``config/<name>`` keys."""
    config = result.get("config")
    if isinstance(config, dict):
        return config
    return {k.split("/", 1)[1]: v for k, v in result.items()
            if isinstance(k, str) and k.startswith("config/")}


def save_wrapped(checkpoint_path: str, inner: Searcher, inner_key: str, state: dict) -> None:
    """Writes a wrapping searcher's ``state`` with ``inner``'s saved bytes under ``inner_key``,
    atomically. The inner file goes to a private temporary folder: Tune uploads the folder
    ``checkpoint_path`` is in while the sweep runs, and a file appearing and vanishing there
    breaks its copy."""
    with tempfile.TemporaryDirectory(prefix="automl-chars-searcher-") as tmp_dir:
        path = os.path.join(tmp_dir, "inner.pkl")
        inner.save(path)
        with open(path, "rb") as f:
            state = {**state, inner_key: f.read()}
    tmp = checkpoint_path + ".tmp"
    with open(tmp, "wb") as f:
        cloudpickle.dump(state, f)
    os.replace(tmp, checkpoint_path)


def restore_wrapped(checkpoint_path: str, inner: Searcher, inner_key: str, fmt: int,
                    what: str) -> dict:
    """The state :func:`save_wrapped` wrote (``inner`` restored from its bytes); another
    ``format`` than ``fmt`` is refused naming the file and what to do."""
    with open(checkpoint_path, "rb") as f:
        state = cloudpickle.load(f)
    if state.get("format") != fmt:
        raise ExperimentStateError(
            f"{checkpoint_path}: a {what} state of format {state.get('format')!r}; this version "
            f"reads {fmt}. Start the sweep again under another name (its finished trials stay "
            f"in the old folder).")
    with tempfile.TemporaryDirectory(prefix="automl-chars-searcher-") as tmp_dir:
        path = os.path.join(tmp_dir, "inner.pkl")
        with open(path, "wb") as f:
            f.write(state[inner_key])
        inner.restore(path)
    return state
