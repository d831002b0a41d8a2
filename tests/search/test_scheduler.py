"""The resumable HyperBandForBOHB, driven by hand (no Ray cluster needed)."""

from types import SimpleNamespace

import pytest
from pyarrow.fs import LocalFileSystem
from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandForBOHB, TrialScheduler
from support import FakeController

from automl_chars.ray_compat import forget_deleted_checkpoints
from automl_chars.search.scheduler import ResumableFIFOScheduler, ResumableHyperBandForBOHB


def _scheduler():
    return ResumableHyperBandForBOHB(time_attr="training_iteration", metric="val_acc", mode="max",
                                     min_t=1, max_t=9, reduction_factor=3)


def _trials(n):
    return [Trial("CNNTrainable", stub=True, trial_id=f"t{i}") for i in range(n)]


def _report(sched, ctrl, trial, it, acc):
    trial.set_status(Trial.RUNNING)
    action = sched.on_trial_result(ctrl, trial, {"training_iteration": it, "val_acc": acc})
    if action == TrialScheduler.PAUSE:
        trial.set_status(Trial.PAUSED)
    return action


def test_min_budget_sets_the_brackets_like_hpbandster():
    ours = ResumableHyperBandForBOHB(metric="m", mode="max", min_t=2, max_t=20, reduction_factor=3)
    ray_s = HyperBandForBOHB(metric="m", mode="max", max_t=20, reduction_factor=3)
    assert ours._s_max_1 == 3  # hpbandster: floor(log3(20 / 2)) + 1
    assert ray_s._s_max_1 == 4  # Ray assumes min budget 1
    assert ours._get_n0(2) == 9 and ours._get_r0(2) == 2


def test_snapshot_restores_brackets_and_keeps_waiting_trials_paused():
    accs = [0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.7, 0.4, 0.6]
    # Reference: one scheduler, no interruption.
    ref, ref_trials = _scheduler(), _trials(9)
    ref_ctrl = FakeController(ref)
    for t in ref_trials:
        ref.on_trial_add(ref_ctrl, t)
    ref_actions = [_report(ref, ref_ctrl, t, 1, a) for t, a in zip(ref_trials, accs)]

    # Interrupted after four results; the snapshot goes through JSON like Tune's state does.
    import json

    first, ctrl, trials = _scheduler(), FakeController(), _trials(9)
    for t in trials:
        first.on_trial_add(ctrl, t)
    for t, a in zip(trials[:4], accs[:4]):
        _report(first, ctrl, t, 1, a)
    snap = json.loads(json.dumps(first.snapshot()))

    restored = _scheduler()
    ctrl2 = FakeController(restored)
    restored.load_snapshot(snap)
    again = _trials(9)
    for t in reversed(again):  # Tune re-adds trials by recency, not in their original order
        t.set_status(Trial.PENDING)
        restored.on_trial_add(ctrl2, t)
    assert [t.status for t in again[:4]] == [Trial.PAUSED] * 4  # waiting at their rung
    assert all(t.status == Trial.PENDING for t in again[4:])
    bracket, _ = restored._trial_info[again[0]]
    assert all(restored._trial_info[t][0] is bracket for t in again)
    assert restored._state["bracket"] is bracket

    actions = [_report(restored, ctrl2, t, 1, a) for t, a in zip(again[4:], accs[4:])]
    assert actions == ref_actions[4:]
    assert sorted(ctrl2.stopped) == sorted(ref_ctrl.stopped)  # same trials halved away
    # The next trial opens the second bracket in both.
    extra_ref, extra = _trials(10)[9], _trials(10)[9]
    ref.on_trial_add(ref_ctrl, extra_ref)
    restored.on_trial_add(ctrl2, extra)
    assert ref._trial_info[extra_ref][0]._n0 == restored._trial_info[extra][0]._n0 == 5


def test_trial_stopped_before_the_snapshot_does_not_run_again():
    sched, ctrl, trials = _scheduler(), FakeController(), _trials(3)
    for t in trials:
        sched.on_trial_add(ctrl, t)
    bracket, _ = sched._trial_info[trials[0]]
    bracket.cleanup_trial(trials[0])  # halving removed it; Tune had not finished stopping it
    restored = _scheduler()
    restored.load_snapshot(sched.snapshot())
    again = _trials(3)
    for t in again:
        t.set_status(Trial.PENDING)
        restored.on_trial_add(ctrl, t)
    assert again[0].status == Trial.TERMINATED
    assert again[1].status == Trial.PENDING


@pytest.mark.parametrize(("checkpointed", "status", "counted"), [
    (2, Trial.PENDING, 2),  # its budget-3 checkpoint was lost to the stop: trains unit 3 again
    (3, Trial.PAUSED, 3),  # checkpointed at max_t: it waits for its bracket to finish
])
def test_a_trial_restored_at_max_t_past_its_checkpoint_trains_again(tmp_path, checkpointed,
                                                                     status, counted):
    from ray.train import Checkpoint
    from ray.train._internal.session import _TrainingResult

    def three_one_three():  # 3_1_3: three trials at budget 1, the best promoted to 3
        return ResumableHyperBandForBOHB(time_attr="training_iteration", metric="val_acc",
                                         mode="max", min_t=1, max_t=3, reduction_factor=3)

    sched = three_one_three()
    ctrl, trials = FakeController(sched), _trials(3)
    for t in trials:
        sched.on_trial_add(ctrl, t)
    for t, acc in zip(trials, [0.1, 0.9, 0.5]):
        _report(sched, ctrl, t, 1, acc)
    best = trials[1]  # promoted to budget 3; the others were halved away
    assert _report(sched, ctrl, best, 2, 0.9) == TrialScheduler.CONTINUE
    assert _report(sched, ctrl, best, 3, 0.95) == TrialScheduler.STOP  # Tune stops it after
    snap = sched.snapshot()  # its save: the stop came first

    restored, again = three_one_three(), _trials(3)
    restored.load_snapshot(snap)
    for i, t in enumerate(again):
        t.set_status(Trial.PENDING if i == 1 else Trial.TERMINATED)
    ckpt = tmp_path / "checkpoint"
    ckpt.mkdir()
    again[1].run_metadata.checkpoint_manager.register_checkpoint(_TrainingResult(
        Checkpoint.from_directory(str(ckpt)), {"training_iteration": checkpointed,
                                                "val_acc": 0.9}))
    for t in again:
        restored.on_trial_add(FakeController(restored), t)
    assert again[1].status == status
    bracket, _ = restored._trial_info[again[1]]
    assert bracket._live_trials[again[1]]["training_iteration"] == counted


@pytest.mark.parametrize("make", [_scheduler, ResumableFIFOScheduler])
def test_a_re_added_trial_forgets_the_decision_tune_saved_for_it(make):
    """A stop between HyperBand's PAUSE and the trial's checkpoint saves that PAUSE with Tune's
    state; restored, it would pause the trial again at its first result once promoted."""
    sched, ctrl, trials = make(), FakeController(), _trials(2)
    ctrl._cached_trial_decisions = {"t0": TrialScheduler.PAUSE, "t1": TrialScheduler.PAUSE}
    ctrl._queued_trial_decisions = {}
    sched.on_trial_add(ctrl, trials[0])
    assert ctrl._cached_trial_decisions == {"t1": TrialScheduler.PAUSE}


def test_forget_deleted_checkpoints(tmp_path):
    kept = tmp_path / "checkpoint_000002"
    kept.mkdir()
    fs = LocalFileSystem()

    def result(path):
        return SimpleNamespace(checkpoint=SimpleNamespace(filesystem=fs, path=str(path)))

    manager = SimpleNamespace(_checkpoint_results=[result(tmp_path / "checkpoint_000001"), result(kept)])
    trial = SimpleNamespace(run_metadata=SimpleNamespace(checkpoint_manager=manager))
    assert forget_deleted_checkpoints(trial) == 1
    assert [r.checkpoint.path for r in manager._checkpoint_results] == [str(kept)]


def test_every_preset_halves_at_hpbandster_budgets_and_reaches_max():
    from automl_chars.search import PRESETS

    for name in PRESETS.names():
        p = PRESETS.get(name)
        sched = ResumableHyperBandForBOHB(metric="val_acc", mode="max", min_t=p.min_budget,
                                          max_t=p.max_budget, reduction_factor=p.eta)
        assert sched._s_max_1 == p.s_max + 1
        for s in range(p.s_max, -1, -1):
            bracket = sched._create_bracket(s)
            trials = _trials(bracket._n0)
            for t in trials:
                bracket.add_trial(t)
            seen = [bracket._cumul_r]
            while bracket._halves > 0:
                for i, t in enumerate(bracket._live_trials):
                    bracket._live_trials[t] = {"val_acc": i, "training_iteration": bracket._cumul_r}
                good, bad = bracket.successive_halving("val_acc", 1.0)
                for t in bad:
                    bracket.cleanup_trial(t)
                seen.append(bracket._cumul_r)
            hpbandster = [p.max_budget * p.eta ** (-i) for i in range(s, -1, -1)]
            assert seen[-1] == p.max_budget, (name, s, seen)
            assert seen == sorted(set(seen)), (name, s, seen)
            assert all(abs(a - b) <= 0.5 + 1e-9 or a == b + 1 for a, b in zip(seen, hpbandster)), \
                (name, s, seen, hpbandster)
    assert ResumableHyperBandForBOHB(metric="m", mode="max", min_t=2, max_t=20,
                                     reduction_factor=3)._create_bracket(2).rungs == [2, 7, 20]


def test_trial_unknown_to_the_snapshot():
    sched, ctrl, trials = _scheduler(), FakeController(), _trials(2)
    for t in trials:
        sched.on_trial_add(ctrl, t)
    restored = _scheduler()
    restored.load_snapshot(sched.snapshot())
    for t in _trials(2):
        t.set_status(Trial.PENDING)
        restored.on_trial_add(ctrl, t)
    late_finished = Trial("CNNTrainable", stub=True, trial_id="late")
    late_finished.set_status(Trial.TERMINATED)
    restored.on_trial_add(ctrl, late_finished)
    assert late_finished not in restored._trial_info  # must not hold a bracket's halving
    newer = Trial("CNNTrainable", stub=True, trial_id="newer")
    restored.on_trial_add(ctrl, newer)
    assert newer in restored._trial_info


def test_trial_that_ended_after_the_snapshot_is_not_revived_and_halving_goes_on():
    """The snapshot counts the trials live; Tune's newer state has them finished or errored."""
    sched, ctrl, trials = _scheduler(), FakeController(), _trials(9)
    for t in trials:
        sched.on_trial_add(ctrl, t)
    for i, t in enumerate(trials[:8]):
        _report(sched, ctrl, t, 1, 0.1 * i)  # eight wait at the first rung; t8 is still running
    restored = _scheduler()
    ctrl2 = FakeController(restored)
    restored.load_snapshot(sched.snapshot())
    again = _trials(9)
    for t in again[:7]:
        t.set_status(Trial.PENDING)
    again[7].set_status(Trial.TERMINATED)  # had reached its rung, then ended
    again[8].set_status(Trial.ERROR)  # had no result yet, then failed
    for t in again:
        restored.on_trial_add(ctrl2, t)
    assert again[7].status == Trial.TERMINATED and again[8].status == Trial.ERROR
    bracket, _ = restored._trial_info[again[0]]
    assert again[7] not in bracket._live_trials and again[8] not in bracket._live_trials
    # Nothing runs, so the scheduler halves the seven waiting trials and resumes the best.
    chosen = restored.choose_trial_to_run(ctrl2)
    assert chosen is not None and chosen.status == Trial.PAUSED
    assert len(ctrl2.stopped) > 0 and "t7" not in ctrl2.stopped and "t8" not in ctrl2.stopped


def test_an_errored_trial_revived_on_resume_rejoins_its_bracket():
    """resume_errored: Tune brings an errored trial back as PENDING; it must run again (not be
    taken for one that halving stopped) and take part in its bracket's next halving."""
    sched, trials = _scheduler(), _trials(9)
    ctrl = FakeController(sched)
    for t in trials:
        sched.on_trial_add(ctrl, t)
    for i, t in enumerate(trials[:8]):
        _report(sched, ctrl, t, 1, 0.1 * i)
    trials[8].set_status(Trial.ERROR)
    sched.on_trial_error(ctrl, trials[8])  # out of the bracket's live trials
    snap = sched.snapshot()
    assert snap["errored"] == ["t8"]
    restored = _scheduler()
    ctrl2 = FakeController(restored)
    restored.load_snapshot(snap)
    again = _trials(9)
    for t in again:
        t.set_status(Trial.PENDING)  # Tune's resume sets every resumed trial PENDING
        restored.on_trial_add(ctrl2, t)
    bracket, _ = restored._trial_info[again[8]]
    assert again[8].status == Trial.PENDING and again[8] in bracket._live_trials
    assert restored.snapshot()["errored"] == []
    # The bracket had halved without it (to 3 trials heading for budget 3); the revived trial
    # joins that rung as a fourth member and waits there for the others.
    assert bracket._cumul_r == 3 and bracket._n == 4
    assert _report(restored, ctrl2, again[8], 1, 0.95) == TrialScheduler.CONTINUE
    assert _report(restored, ctrl2, again[8], 3, 0.95) == TrialScheduler.PAUSE
    assert not bracket.cur_iter_done()


def test_a_lead_bracket_trains_the_first_trials_to_the_top_budget_then_hyperband_goes_on():
    sched = ResumableHyperBandForBOHB(time_attr="training_iteration", metric="val_acc",
                                      mode="max", min_t=1, max_t=9, reduction_factor=3, lead=2)
    ctrl, trials = FakeController(sched), _trials(2 + 9 + 1)
    for t in trials:
        sched.on_trial_add(ctrl, t)
    lead, _ = sched._trial_info[trials[0]]
    assert [sched._trial_info[t][0] for t in trials[:2]] == [lead] * 2  # the two seeds, s = 0
    assert lead._n0 == 2 and lead._r == 9
    first, band = sched._trial_info[trials[2]]
    assert band == 1 and first._n0 == 9 and first._r == 1  # then the iterations, largest first
    assert sched._trial_info[trials[11]][0]._n0 == 5  # ... and the next bracket of the band
    for epoch in range(1, 9):  # a seed is not paused at budget 1 or 3: it trains on
        assert _report(sched, ctrl, trials[0], epoch, 0.5) == TrialScheduler.CONTINUE
    # at the top budget it waits for the bracket's other trials (Ray's rule at a last rung)
    assert _report(sched, ctrl, trials[0], 9, 0.5) == TrialScheduler.PAUSE
    plain = _scheduler()
    plain.on_trial_add(FakeController(plain), _trials(1)[0])
    assert plain._state["bracket"]._n0 == 9  # without a lead, as before


def test_a_restored_job_whose_checkpoint_is_gone_starts_over(tmp_path):
    """run_trials' scheduler: a trial restored with a checkpoint Tune deleted before the driver
    died (num_to_keep) forgets it, so the trial starts again instead of failing every retry."""
    from ray.train import Checkpoint
    from ray.train._internal.session import _TrainingResult
    from ray.tune.experiment import Trial

    from automl_chars.search.scheduler import ResumableFIFOScheduler

    gone = tmp_path / "checkpoint_000000"
    gone.mkdir()
    trial = Trial("cnn", config={}, stub=True)
    trial.run_metadata.checkpoint_manager.register_checkpoint(
        _TrainingResult(checkpoint=Checkpoint.from_directory(str(gone)), metrics={}))
    assert trial.checkpoint is not None
    gone.rmdir()
    ResumableFIFOScheduler().on_trial_add(None, trial)
    assert trial.checkpoint is None


def test_a_restored_job_falls_back_to_its_newest_checkpoint_that_exists(tmp_path):
    from ray.train import Checkpoint
    from ray.train._internal.session import _TrainingResult
    from ray.tune.experiment import Trial

    from automl_chars.search.scheduler import ResumableFIFOScheduler

    trial = Trial("cnn", config={}, stub=True)
    for i in (1, 2):
        (tmp_path / f"checkpoint_{i}").mkdir()
        trial.run_metadata.checkpoint_manager.register_checkpoint(_TrainingResult(
            checkpoint=Checkpoint.from_directory(str(tmp_path / f"checkpoint_{i}")),
            metrics={"training_iteration": i}))
    (tmp_path / "checkpoint_2").rmdir()
    ResumableFIFOScheduler().on_trial_add(None, trial)
    assert trial.checkpoint.path == str(tmp_path / "checkpoint_1")
