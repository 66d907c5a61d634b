"""Cost-aware choice of families: FLAML's estimated cost for improvement, on real studies."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier

from autotune import auto_tune
from autotune.engine._allocation import CostAwareSampler, choose_family, family_progress
from autotune.families import ModelFamily, register_family
from autotune.families._registry import _REGISTRY

FAMILIES = CategoricalDistribution(["fast", "slow"])


def _trial(number: int, family: str, seconds: float, value: float | None) -> FrozenTrial:
    state = TrialState.COMPLETE if value is not None else TrialState.PRUNED
    trial = create_trial(
        params={"family": family},
        distributions={"family": FAMILIES},
        value=value,
        state=state,
    )
    trial.number = number
    trial.datetime_start = datetime(2026, 1, 1)
    trial.datetime_complete = trial.datetime_start + timedelta(seconds=seconds)
    return trial


def _history() -> list[FrozenTrial]:
    """``fast`` improves every second on cheap trials; ``slow`` is behind after 20 s."""
    trials = [_trial(0, "fast", 1.0, 0.80), _trial(1, "slow", 10.0, 0.70)]
    trials += [_trial(2 + i, "fast", 1.0, 0.81 + 0.01 * i) for i in range(5)]
    trials += [_trial(7, "slow", 10.0, None)]
    return trials


def test_a_cheap_improving_family_costs_less_to_improve_than_a_slow_one_behind() -> None:
    progress = family_progress(_history(), StudyDirection.MAXIMIZE)
    best = min(p.best for p in progress.values())
    assert progress["fast"].best == pytest.approx(1 - 0.85)
    assert progress["slow"].time_used == pytest.approx(20.0)  # pruned trials cost time too
    assert progress["fast"].eci(best) < progress["slow"].eci(best) / 10


def test_families_are_drawn_by_their_estimated_cost() -> None:
    progress = family_progress(_history(), StudyDirection.MAXIMIZE)
    rng = np.random.default_rng(0)
    drawn = [choose_family(["fast", "slow"], progress, {}, rng) for _ in range(400)]
    assert 0.9 < drawn.count("fast") / 400 < 1.0  # the slow family is not shut out


def test_untried_families_come_first_cheapest_first_and_dropped_ones_never() -> None:
    progress = family_progress(_history(), StudyDirection.MAXIMIZE)
    rng = np.random.default_rng(0)
    costs = {"big": 5.0, "small": 0.5}
    assert choose_family(["fast", "slow", "big", "small"], progress, costs, rng) == "small"
    skipped = _trial(8, "fast", 0.0, None)
    skipped.set_user_attr("skipped", "failed 3 times")
    progress = family_progress([*_history(), skipped], StudyDirection.MAXIMIZE)
    assert {choose_family(["fast", "slow"], progress, {}, rng) for _ in range(50)} == {"slow"}


def test_minimised_losses_are_compared_directly() -> None:
    trials = [_trial(0, "fast", 1.0, 0.3), _trial(1, "slow", 1.0, 0.9)]
    progress = family_progress(trials, StudyDirection.MINIMIZE)
    assert progress["fast"].best == 0.3
    assert progress["fast"].eci(0.3) < progress["slow"].eci(0.3)


class _Sleepy(ClassifierMixin, BaseEstimator):
    """A model that is both slow and no better than chance."""

    def __init__(self, strategy: str = "prior") -> None:
        self.strategy = strategy

    def fit(self, X, y):
        time.sleep(0.2)
        self.model_ = DummyClassifier(strategy=self.strategy).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


class _SleepyFamily(ModelFamily):
    name = "sleepy"
    tasks = ("binary",)

    def suggest(self, space, profile):
        return {"strategy": space.categorical("strategy", ["prior", "stratified"])}

    def build(self, params, profile, seed):
        return _Sleepy(**params)


@pytest.fixture
def sleepy_family():
    register_family(_SleepyFamily())
    yield
    _REGISTRY.pop("sleepy", None)


def test_auto_gives_most_trials_to_the_family_that_pays_off(sleepy_family, binary_data, storage):
    X, y = binary_data
    result = auto_tune(
        X, y, families=["linear", "sleepy"], n_trials=20, storage=storage, show=False
    )
    assert isinstance(result.study.sampler, CostAwareSampler)
    families = [t.params["family"] for t in result.study.trials]
    assert 1 <= families.count("sleepy") < families.count("linear") / 2


def test_explicit_tpe_leaves_the_family_to_tpe(binary_data, storage):
    X, y = binary_data
    result = auto_tune(
        X, y, families=["linear", "knn"], strategy="tpe", n_trials=3, storage=storage, show=False
    )
    assert isinstance(result.study.sampler, optuna.samplers.TPESampler)
