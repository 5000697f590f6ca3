"""Claims on sampled design points (platform/study/claims.py): when several workers draw the same design point at
once, exactly one trial runs it, on real Optuna trials (an in-memory storage shared by threads, as workers share
a database; the race test adds a database's round-trip time to its reads and writes)."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from platform.records import ATTR_POINT, ATTR_REPEAT, ATTR_SEED, ATTR_SPURIOUS
from platform.study.claims import claim_sampled_point
from tests.support.limits import HANG_S

KEY = "window_size=5"


class RoundTrips(optuna.storages.InMemoryStorage):
    """Optuna's in-memory storage with 2 ms per read of the trials and per attribute write, as over a network:
    without it the GIL makes a check-then-write nearly atomic and no race shows (measured: with it, the former
    check-then-write gave 40 of 40 points two or three winners)."""

    def set_trial_user_attr(self, *args: object, **kwargs: object) -> None:
        time.sleep(0.002)
        super().set_trial_user_attr(*args, **kwargs)

    def get_all_trials(self, *args: object, **kwargs: object) -> list[optuna.trial.FrozenTrial]:
        time.sleep(0.002)
        return super().get_all_trials(*args, **kwargs)


@pytest.fixture()
def study() -> optuna.Study:
    return optuna.create_study(storage=optuna.storages.InMemoryStorage())


def _stepped_aside(trial: optuna.Trial) -> bool:
    attrs = trial.study.trials[trial.number].user_attrs
    return bool(attrs.get(ATTR_SPURIOUS)) and bool(attrs.get(ATTR_REPEAT))


def test_a_point_already_in_the_study_is_not_claimed_again(study: optuna.Study) -> None:
    study.enqueue_trial({}, user_attrs={ATTR_POINT: KEY, ATTR_SEED: 1})  # another seed's copy, waiting
    trial = study.ask()  # pops the enqueued copy
    fresh = study.ask()
    assert trial.user_attrs[ATTR_POINT] == KEY
    assert not claim_sampled_point(fresh, KEY)
    assert _stepped_aside(fresh)
    assert claim_sampled_point(study.ask(), "window_size=7")  # another point is free


def test_the_lower_undecided_claimant_goes_first(study: optuna.Study) -> None:
    lower, higher = study.ask(), study.ask()
    lower.set_user_attr(ATTR_POINT, KEY)  # claimed, has not looked yet
    assert not claim_sampled_point(higher, KEY, patience_s=0.5)
    assert claim_sampled_point(lower, KEY, patience_s=0.5)  # the higher one stepped aside
    assert not _stepped_aside(lower)


def test_a_lower_claimant_waits_for_a_higher_one_to_decide(study: optuna.Study) -> None:
    lower, higher = study.ask(), study.ask()
    higher.set_user_attr(ATTR_POINT, KEY)  # claimed first, undecided

    def decide() -> None:
        higher.set_user_attr(ATTR_SEED, 0)  # it looked before the lower claim was written, and won

    timer = threading.Timer(0.3, decide)
    timer.start()
    won = claim_sampled_point(lower, KEY, poll_s=0.05, patience_s=10.0)
    timer.join()
    assert not won and _stepped_aside(lower)


def test_a_claimant_whose_worker_died_does_not_block_the_point(study: optuna.Study) -> None:
    dead = study.ask()
    dead.set_user_attr(ATTR_POINT, KEY)
    study.tell(dead, state=TrialState.FAIL)  # recovered as failed before it decided (no seed written)
    assert claim_sampled_point(study.ask(), KEY, patience_s=0.5)


def test_concurrent_claims_of_the_same_points_have_one_winner_each() -> None:
    study = optuna.create_study(storage=RoundTrips())
    keys = [f"p{i}" for i in range(40)]
    winners: dict[str, list[int]] = {k: [] for k in keys}
    barrier = threading.Barrier(3)
    lock = threading.Lock()

    def worker() -> None:
        for key in keys:
            trial = study.ask()
            barrier.wait()  # all three draw the same point at the same moment
            if claim_sampled_point(trial, key, poll_s=0.001, patience_s=10.0):
                trial.set_user_attr(ATTR_SEED, 0)  # decided, as the objective does
                with lock:
                    winners[key].append(trial.number)
            study.tell(trial, state=TrialState.PRUNED)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HANG_S)
    assert {k: len(v) for k, v in winners.items()} == dict.fromkeys(keys, 1)
