"""Which of several workers runs a design point the sampler proposed to more than one of them at once.

Search designs (TPE, random, NSGA-II) ask the sampler in every worker. Two workers can draw the same design point
at the same moment, and the storage (SQLite or PostgreSQL through Optuna) offers no compare-and-set, so "is this
point already in the study?" followed by "it is mine" is a race. The claim protocol settles it with ordinary
writes, each visible to every later read:

1. claim: a trial writes its point key (``ATTR_POINT``) before looking;
2. look at the other trials with that key that are not spurious (stepped aside):
   - one that is *decided* (it holds a seed: a sampled trial that won, or an enqueued copy) → the point is
     taken: step aside;
   - an undecided claimant with a lower trial number → it goes first: step aside;
   - an undecided claimant with a higher number → wait until it decides (it will see this claim and step aside,
     unless it decided before this claim was written — then this trial steps aside), at most ``patience_s``;
   - an undecided claimant that is no longer running (its worker died before deciding) is ignored;
3. win: the caller writes the seed (decided) and runs the point.

Two claimants never both win: the one that looks last sees the other's claim, and either steps aside or waits
for the other's decision. Each step-aside is a spurious trial (it stands for no design point) marked as a repeat.
"""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from ..records import ATTR_ORIGIN, ATTR_POINT, ATTR_REPEAT, ATTR_SEED, ATTR_SPURIOUS, ORIGIN_SAMPLED

POLL_S = 0.2
PATIENCE_S = 30.0


def _rivals(trial: optuna.Trial, key: str) -> list[optuna.trial.FrozenTrial]:
    return [
        other for other in trial.study.get_trials(deepcopy=False)
        if other.number != trial.number and other.user_attrs.get(ATTR_POINT) == key
        and not other.user_attrs.get(ATTR_SPURIOUS)
    ]


def _decided(other: optuna.trial.FrozenTrial) -> bool:
    return ATTR_SEED in other.user_attrs or other.user_attrs.get(ATTR_ORIGIN) == ORIGIN_SAMPLED


def _step_aside(trial: optuna.Trial) -> None:
    trial.set_user_attr(ATTR_SPURIOUS, True)
    trial.set_user_attr(ATTR_REPEAT, True)


def claim_sampled_point(trial: optuna.Trial, key: str, *, poll_s: float = POLL_S,
                        patience_s: float = PATIENCE_S) -> bool:
    """Claim design point ``key`` for ``trial`` (a sampled trial); True when it is this trial's to run.

    Writes ``ATTR_POINT`` (the claim). On True the caller marks the trial decided by writing its seed; on False the
    trial is marked spurious and a repeat here (its caller prunes it without training).
    """
    trial.set_user_attr(ATTR_POINT, key)
    deadline = time.monotonic() + patience_s
    while True:
        waiting_for = False
        for other in _rivals(trial, key):
            if _decided(other) or (other.state == TrialState.RUNNING and other.number < trial.number):
                _step_aside(trial)
                return False
            if other.state != TrialState.RUNNING:
                continue  # a claimant whose worker died before it decided
            if time.monotonic() < deadline:
                waiting_for = True  # a higher-numbered claimant that has not decided yet
        if not waiting_for:
            return True
        time.sleep(poll_s)
