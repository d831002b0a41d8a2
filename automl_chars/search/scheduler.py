"""``HyperBandForBOHB`` that honours a minimum budget and survives a killed driver.

Ray's ``HyperBandForBOHB`` has no ``save``/``restore`` and ``Tuner.restore`` of a BOHB sweep
re-adds every trial to fresh brackets (ray issue 39900). This subclass snapshots its bracket state
as plain data (trial ids, budgets, metrics) and :class:`SchedulerStateCallback` stores that
snapshot beside Ray's experiment state, in the same ``save_to_dir`` call. On restore, each
re-added trial is put back into its bracket; trials that were waiting for their bracket's halving
are set ``PAUSED`` again instead of being rerun past their rung. Tune copies its state files to
storage one after the other, so a kill can leave them a moment apart: a trial that Tune records as
finished (or errored) is never revived, whatever the snapshot says; it leaves its bracket as it
would have had the scheduler seen it end. A trial that a graceful stop caught at its rung before
its checkpoint was saved waits PAUSED without it; promoted, Tune resumes it from its previous
checkpoint (or the start), and the PAUSE Tune saved for it is dropped
(:func:`~automl_chars.ray_compat.drop_stale_decisions`), or it would stop below its next rung. At
``max_t``, where nothing promotes it, it trains the lost units again instead of waiting.

Ray's ``HyperBand`` also assumes a minimum budget of 1 (``s_max = round(log_eta(max_t))``) and
builds its rungs by flooring the first budget and multiplying by ``eta``, so some presets never
reach ``max_t`` (``3_2_20_20`` halves at 2, 6, 18). The subclass computes ``s_max`` from ``min_t``
and halves at hpbandster's budgets rounded to whole units (:func:`rung_budgets`: 2, 7, 20).
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from ray.tune.callback import Callback
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, HyperBandForBOHB, TrialScheduler

from automl_chars import ray_compat as compat
from automl_chars.search.presets import rung_budgets
from automl_chars.trainables.keys import FAILURE, INFEASIBLE

SNAPSHOT_VERSION = 3  # 2: brackets carry their rungs; 3: errored trials
logger = logging.getLogger(__name__)


class _Slot(NamedTuple):
    """Where a restored trial belongs, until Tune re-adds it."""

    bracket: compat.RungBracket
    band_idx: int
    live: bool
    result: dict | None
    to_unpause: bool
    errored: bool


class ResumableHyperBandForBOHB(HyperBandForBOHB):
    """``HyperBandForBOHB`` with ``min_t`` and :meth:`snapshot` / :meth:`load_snapshot`.

    Its uses of Ray's private HyperBand internals are in :mod:`automl_chars.ray_compat`.
    """

    #: Trials of the lead bracket (0: none); a class default for schedulers pickled before it.
    _lead: int = 0

    def __init__(self, *, min_t: int = 1, max_t: int = 81, reduction_factor: float = 3,
                 lead: int = 0, **kwargs: Any):
        super().__init__(max_t=max_t, reduction_factor=reduction_factor, **kwargs)
        if not 1 <= min_t <= max_t:
            raise ValueError(f"need 1 <= min_t <= max_t, got min_t={min_t}, max_t={max_t}")
        self._min_t = min_t
        # lead: the sweep's first `lead` trials (a warm start's seeds) form a bracket of their
        # own that trains them to max_t at once (hpbandster's smallest bracket, s = 0), before
        # the HyperBand iterations; a seed then need not wait for a rung of others to fill.
        if isinstance(lead, bool) or not isinstance(lead, int) or lead < 0:
            raise ValueError(f"lead must be a whole number of trials >= 0, got {lead!r}")
        self._lead = lead
        compat.set_budget_range(self, min_t, lambda s: self.rungs(s)[0])
        self._restored: dict[str, _Slot] = {}
        self._errored: set[str] = set()  # trial ids that ended in an error (Tune may revive them)

    def rungs(self, s: int) -> list[int]:
        """The budgets at which bracket ``s`` halves (hpbandster's, whole units)."""
        eta, max_t = compat.budget_settings(self)
        return rung_budgets(eta, max_t, s)

    def _create_bracket(self, s: int) -> compat.RungBracket:  # Ray's hook for a new bracket
        return compat.make_bracket(self, s, self.rungs(s))

    def _cur_band_filled(self) -> bool:  # Ray's hook: does the next bracket start a new band?
        # The lead bracket is a band of its own: once it is full, the first iteration begins.
        return (self._lead > 0 and compat.bands(self)[2] == 0) or super()._cur_band_filled()

    # -- snapshot -------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The bracket state as JSON-able data keyed by trial id."""
        hyperbands, current_bracket, band_idx, num_stopped = compat.bands(self)
        keys = compat.result_keys(self)
        current = None
        out = []
        for bi, band in enumerate(hyperbands):
            states = []
            for pos, b in enumerate(band):
                if b is current_bracket and b is not None:
                    current = [bi, pos]
                states.append(None if b is None else compat.bracket_state(b, keys))
            out.append(states)
        return {"version": SNAPSHOT_VERSION, "bands": out, "current": current,
                "band_idx": band_idx, "num_stopped": num_stopped,
                "errored": sorted(self._errored)}

    def load_snapshot(self, snap: dict) -> None:
        """Rebuilds the brackets; trials rejoin them as Tune re-adds them (:meth:`on_trial_add`)."""
        if snap.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported scheduler snapshot version {snap.get('version')}")
        self._restored = {}
        self._errored = set(snap["errored"])
        hyperbands = []
        for bi, band in enumerate(snap["bands"]):
            rebuilt = []
            for data in band:
                if data is None:
                    rebuilt.append(None)
                    continue
                b = compat.make_bracket(self, data["halves"], data["rungs"], state=data)
                for tid in data["all"]:
                    self._restored[tid] = _Slot(b, bi, tid in data["live"], data["live"].get(tid),
                                                tid in data["to_unpause"], tid in self._errored)
                rebuilt.append(b)
            hyperbands.append(rebuilt)
        current = None
        if snap["current"] is not None:
            bi, pos = snap["current"]
            current = hyperbands[bi][pos]
        compat.set_bands(self, hyperbands, current, snap["band_idx"], snap["num_stopped"])

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        """Ray's decision, plus two things BOHB needs from the scheduler.

        - A failed result (:data:`FAILURE`: a configuration that cannot be built, a diverged
          loss) stops the trial at once and reaches the searcher at the budget of the rung the
          trial was heading for, so BOHB's model counts it as bad (its metric is NaN, which
          hpbandster scores as ``+inf`` loss). So does an infeasible one (:data:`INFEASIBLE`:
          a model over the sweep's cost limits), whose objective is its graded violation.
        - When Ray's decision for a result at a rung is STOP, Tune does not pass that result to
          the searcher (only non-STOP results reach it), so BOHB would never see the last
          trial of a rung, nor one halved away on arrival; it is passed on here.
        """
        if result.get(FAILURE) or result.get(INFEASIBLE):
            result["hyperband_info"] = {"budget": compat.rung_budget(compat.bracket_of(self, trial))}
            compat.controller_searcher(tune_controller).on_trial_result(trial.trial_id, result)
            return TrialScheduler.STOP
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and "budget" in result.get("hyperband_info", {}):
            compat.controller_searcher(tune_controller).on_trial_result(trial.trial_id, result)
        return decision

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self._errored.add(trial.trial_id)
        super().on_trial_error(tune_controller, trial)

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        compat.forget_deleted_checkpoints(trial)
        compat.drop_stale_decisions(tune_controller, trial)
        entry = self._restored.pop(trial.trial_id, None)
        ended = trial.status in (Trial.TERMINATED, Trial.ERROR)
        if entry is None:
            if self._lead > 0 and not ended and compat.bands(self)[0] == [[]]:
                # the sweep's first trial: open the lead bracket
                lead = compat.make_bracket(self, 0, self.rungs(0), max_trials=self._lead)
                compat.set_bands(self, [[lead]], lead, 0, 0)
            if ended:
                # Re-added by a restore, but unknown to the snapshot: it finished after the last
                # one. As a live member of a fresh bracket it would hold that bracket's halving.
                logger.warning("Trial %s finished after the scheduler's last snapshot; "
                               "it keeps its result but joins no bracket.", trial.trial_id)
                return None
            return super().on_trial_add(tune_controller, trial)
        bracket, band_idx = entry.bracket, entry.band_idx
        if ended:
            # Ended after the snapshot that still counts it live: leave it out of the bracket's
            # live trials, as on_trial_remove would have (halving then goes on without it).
            compat.rejoin(self, trial, bracket, band_idx)
            return
        if entry.errored:
            # It had failed, and Tune revives it from its last checkpoint (resume_errored): it
            # rejoins its bracket as an extra member and takes part in the next halving.
            self._errored.discard(trial.trial_id)
            compat.rejoin(self, trial, bracket, band_idx, result=None, extra=True)
            return
        if not entry.live:
            # Halving had already stopped it; Tune's graceful stop had not finished when the
            # state was saved, so it came back PAUSED/PENDING. It must not run again.
            compat.rejoin(self, trial, bracket, band_idx)
            trial.set_status(Trial.TERMINATED)
            return
        result = self._resumed_result(trial, entry)
        compat.rejoin(self, trial, bracket, band_idx, result=result, to_unpause=entry.to_unpause)
        time_attr = compat.result_keys(self)[0]
        if (not entry.to_unpause and result is not None
                and result.get(time_attr, 0) >= compat.rung_budget(bracket)):
            # It had reached its rung and was waiting for the halving: keep it waiting.
            trial.set_status(Trial.PAUSED)

    def _resumed_result(self, trial: Trial, entry: _Slot) -> dict | None:
        """The snapshot's last result of a live trial, or its checkpoint's when it reached max_t
        (its bracket's last rung) past its checkpoint. A stop between its last result and
        that result's checkpoint loses the checkpoint; waiting at max_t, it would be stopped
        there without it (a sweep's incumbent evaluated from fewer budget units than its
        result's, or from none). So it trains those units again from its checkpoint. At a
        lower rung it waits: promoted, Tune resumes it from its checkpoint anyway."""
        keys = compat.result_keys(self)
        time_attr, result = keys[0], entry.result
        if result is None or result.get(time_attr, 0) < compat.budget_settings(self)[1]:
            return result
        saved = compat.checkpointed_result(trial)
        if result.get(time_attr, 0) <= (saved or {}).get(time_attr, 0):
            return result
        return None if saved is None else {k: saved[k] for k in keys if k in saved}


class ResumableFIFOScheduler(FIFOScheduler):
    """Tune's FIFO scheduler (``run_trials``' jobs) for runs that are resumed: a restored trial
    whose saved checkpoint Tune deleted before the driver died (``num_to_keep``) forgets it and
    starts over, instead of failing every retry on a checkpoint that is gone
    (:func:`~automl_chars.ray_compat.forget_deleted_checkpoints`), and forgets the decision Tune
    saved for it before a stop (:func:`~automl_chars.ray_compat.drop_stale_decisions`), as
    the BOHB scheduler does."""

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        compat.forget_deleted_checkpoints(trial)
        compat.drop_stale_decisions(tune_controller, trial)
        super().on_trial_add(tune_controller, trial)


class SchedulerStateCallback(Callback):
    """Saves the scheduler's snapshot with Tune's experiment state and restores it first.

    Tune saves callback state in the same ``save_to_dir`` call as the trials and the searcher, and
    restores it before re-adding trials, which is exactly the order the scheduler needs.
    """

    def __init__(self, scheduler: ResumableHyperBandForBOHB):
        self.scheduler = scheduler

    def get_state(self) -> dict | None:
        return {"scheduler": self.scheduler.snapshot()}

    def set_state(self, state: dict) -> None:
        self.scheduler.load_snapshot(state["scheduler"])
