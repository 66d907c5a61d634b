"""The first trials of a new study: portfolio configurations and similar studies' winners."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from autotune.data import DataProfile
from autotune.engine._objective import FAMILY_PARAM, STARTING_POINT_KEY
from autotune.engine._run import quiet_optuna
from autotune.engine._warmstart import WarmStart, find_warm_start
from autotune.families import ModelFamily
from autotune.metrics import Metric

__all__ = ["OPENING_POINTS", "enqueue_starting_points", "warm_start"]

#: How many configurations of the opening family run before the other families' first:
#: for gradient boosting, the portfolio's pick and scikit-learn's defaults.
OPENING_POINTS = 2


def warm_start(
    storage: optuna.storages.BaseStorage,
    name: str,
    profile: DataProfile,
    metric: Metric,
    families: Sequence[ModelFamily],
    strategy: str,
) -> WarmStart | None:
    """The winners of the most similar earlier studies in the store, or None.

    Only a new study is warm-started: a resumed one learns from its own trials, and its
    next trials should not change because other studies were added to the store since.
    """
    try:
        return find_warm_start(
            storage,
            profile,
            profile.task,
            metric.name,
            [f.name for f in families],
            exclude_study=name,
            direction=metric.direction,
            strategy=strategy,
        )
    except Exception:  # a hint, never a reason to fail the run
        return None


def enqueue_starting_points(
    study: optuna.Study,
    families: Sequence[ModelFamily],
    profile: DataProfile,
    warm: WarmStart | None = None,
    short_budget: bool = False,
) -> int:
    """Queue each family's strong configurations, round-robin, once per study.

    A family that opens searches (gradient boosting) goes first, else the cheapest, with
    its first ``OPENING_POINTS`` configurations: a run must end with a model, so its first
    trial is allowed to finish past the budget, and that trial should be both strong and
    quick. Then the families take turns, the opener's next configuration first: giving
    every other family its turn first instead cost 3 % log loss on multiclass_mixed at
    60 s and did not help digits. The winners of similar earlier studies (``warm``) come
    right after the first trial, because on similar data they are the best bets, and a
    short budget may not reach the rest.

    Under a ``short_budget`` the opener's two configurations swap: for gradient boosting
    scikit-learn's defaults then open, which on 15,000 rows of 4 classes cost a third of
    the portfolio's pick (5 s against 14 s), a pick that alone overran a 10 s budget.

    Returns:
        How many of the warm configurations were newly queued.
    """
    first = min(families, key=lambda f: (not f.opens_search, f.relative_cost))
    ordered = [first, *[f for f in families if f is not first]]
    queues = [
        [(family.name, point) for point in family.starting_points(profile)] for family in ordered
    ]
    pairs, queues[0] = queues[0][:OPENING_POINTS], queues[0][OPENING_POINTS:]
    if short_budget:
        pairs.reverse()
    for level in range(max((len(q) for q in queues), default=0)):
        pairs += [queue[level] for queue in queues if level < len(queue)]
    points = [
        {FAMILY_PARAM: name, **{f"{name}.{k}": v for k, v in point.items()}}
        for name, point in pairs
    ]
    waiting = (TrialState.WAITING,)
    portfolio, earlier = {STARTING_POINT_KEY: "portfolio"}, {STARTING_POINT_KEY: "similar study"}
    with quiet_optuna():
        for params in points[:1]:
            study.enqueue_trial(params, user_attrs=portfolio, skip_if_exists=True)
        before = len(study.get_trials(deepcopy=False, states=waiting))
        for params in warm.configs if warm else []:
            study.enqueue_trial(params, user_attrs=earlier, skip_if_exists=True)
        added = len(study.get_trials(deepcopy=False, states=waiting)) - before
        for params in points[1:]:
            study.enqueue_trial(params, user_attrs=portfolio, skip_if_exists=True)
    return added
