"""Local steps around a family's best trial, alone and inside the cost-aware sampler."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from autotune.engine._allocation import CostAwareSampler
from autotune.engine._local import FIRST_STEP, SMALLEST_STEP, incumbent, local_step
from autotune.engine._objective import SEARCH_KEY

SPACE = {
    "family": CategoricalDistribution(["a", "b"]),
    "a.rate": FloatDistribution(1e-3, 1.0, log=True),
    "a.leaves": IntDistribution(4, 1024, log=True),
    "a.kind": CategoricalDistribution(["x", "y", "z"]),
}


def _trial(
    number: int, family: str, value: float | None, **params: object
) -> optuna.trial.FrozenTrial:
    names = {"family": family, **{f"{family}.{k}": v for k, v in params.items()}}
    trial = create_trial(
        params=names,
        distributions={k: SPACE[k] for k in names},
        value=value,
        state=TrialState.COMPLETE if value is not None else TrialState.PRUNED,
    )
    trial.number = number
    return trial


def test_the_incumbent_is_the_family_best_and_counts_the_trials_after_it() -> None:
    trials = [
        _trial(0, "a", 0.5, rate=0.1, leaves=31, kind="x"),
        _trial(1, "a", 0.3, rate=0.2, leaves=64, kind="y"),
        _trial(2, "b", 0.1),
        _trial(3, "a", None, rate=0.3, leaves=8, kind="x"),
        _trial(4, "a", 0.4, rate=0.05, leaves=16, kind="z"),
    ]
    low = incumbent(trials, "a", "family", StudyDirection.MINIMIZE)
    assert low is not None and low.trial.number == 1 and low.n_since == 2
    high = incumbent(trials, "a", "family", StudyDirection.MAXIMIZE)
    assert high is not None and high.trial.number == 0 and high.n_since == 3
    assert incumbent(trials[3:4], "a", "family", StudyDirection.MINIMIZE) is None
    assert high.step < low.step < FIRST_STEP  # more trials since the best: a smaller step


def test_a_local_step_stays_in_range_near_the_best_on_the_range_scale() -> None:
    best = incumbent(
        [_trial(0, "a", 0.5, rate=0.01, leaves=31, kind="x")],
        "a",
        "family",
        StudyDirection.MINIMIZE,
    )
    assert best is not None and best.n_since == 0
    rng = np.random.default_rng(0)
    steps = [local_step(best, "a", rng) for _ in range(500)]
    assert all(set(s) == {"a.rate", "a.leaves", "a.kind"} for s in steps)
    rates = np.log10([s["a.rate"] for s in steps])
    leaves = np.array([s["a.leaves"] for s in steps])
    assert all(isinstance(s["a.leaves"], int) for s in steps)
    assert rates.min() >= -3 and leaves.min() >= 4 and leaves.max() <= 1024
    # on a log scale, a standard deviation of FIRST_STEP of 3 decades is about 0.45 decades
    assert np.std(rates) == pytest.approx(FIRST_STEP * 3, rel=0.2)
    assert abs(np.median(rates) + 2) < 0.1 and 20 <= np.median(leaves) <= 48
    kept = np.mean([s["a.kind"] == "x" for s in steps])
    assert 0.75 < kept < 0.95  # a categorical is rarely redrawn


def test_the_step_never_shrinks_below_its_floor() -> None:
    trials = [_trial(0, "a", 0.1, rate=0.1, leaves=8, kind="x")]
    trials += [_trial(i, "a", 0.9, rate=0.1, leaves=8, kind="x") for i in range(1, 200)]
    point = incumbent(trials, "a", "family", StudyDirection.MINIMIZE)
    assert point is not None and point.step == SMALLEST_STEP


def _sampled_study(local_share: float) -> optuna.Study:
    sampler = CostAwareSampler(
        optuna.samplers.TPESampler(seed=0), {"a": 1.0}, seed=0, local_share=local_share
    )
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"family": "a", "a.x": -4.0})

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_categorical("family", ["a"])
        return (trial.suggest_float("a.x", -5.0, 5.0) - 1.0) ** 2

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=40)
    return study


def test_the_sampler_steps_from_the_best_trial_and_says_so() -> None:
    study = _sampled_study(local_share=1.0)
    trials = study.trials
    assert SEARCH_KEY not in trials[0].user_attrs  # a queued trial is run as queued
    assert trials[0].params["a.x"] == -4.0
    assert all(SEARCH_KEY in t.user_attrs for t in trials[1:])
    for trial in trials[1:]:
        start = int(trial.user_attrs[SEARCH_KEY].rsplit(" ", 1)[1])
        assert start == min(trials[: trial.number], key=lambda t: (t.value, t.number)).number
        # five standard deviations of the first step on a range 10 long
        assert abs(trial.params["a.x"] - trials[start].params["a.x"]) < 5 * FIRST_STEP * 10
    assert abs(study.best_params["a.x"] - 1.0) < 0.25  # the walk from -4 reached the minimum


def test_without_local_steps_every_value_comes_from_the_base_sampler() -> None:
    study = _sampled_study(local_share=0.0)
    assert not any(SEARCH_KEY in t.user_attrs for t in study.trials)
