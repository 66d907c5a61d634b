"""Cost-aware choice of families: FLAML's estimated cost for improvement, on real studies."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from autotune import auto_tune
from autotune.engine._allocation import CostAwareSampler, choose_family, family_progress
from autotune.engine._objective import BEHIND_KEY, PASSED_OVER_KEY

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


def test_a_family_clearly_behind_gets_no_trials_while_another_is_not() -> None:
    behind = _trial(1, "slow", 1.0, None)
    behind.set_user_attr(BEHIND_KEY, True)
    progress = family_progress([_trial(0, "fast", 5.0, 0.8), behind], StudyDirection.MAXIMIZE)
    assert progress["slow"].clearly_behind and not progress["fast"].clearly_behind
    rng = np.random.default_rng(0)
    assert {choose_family(["fast", "slow"], progress, {}, rng) for _ in range(50)} == {"fast"}
    # a family with one trial close to the best is not behind, and when every family is,
    # they all stay in the draw
    progress = family_progress([*_history(), behind], StudyDirection.MAXIMIZE)
    assert not progress["slow"].clearly_behind
    alone = family_progress([behind], StudyDirection.MAXIMIZE)
    assert choose_family(["slow"], alone, {}, rng) == "slow"


def test_minimised_losses_are_compared_directly() -> None:
    trials = [_trial(0, "fast", 1.0, 0.3), _trial(1, "slow", 1.0, 0.9)]
    progress = family_progress(trials, StudyDirection.MINIMIZE)
    assert progress["fast"].best == 0.3
    assert progress["fast"].eci(0.3) < progress["slow"].eci(0.3)


def test_the_sampler_draws_families_by_cost_and_leaves_the_rest_to_tpe() -> None:
    study = optuna.create_study(
        direction="maximize",
        sampler=CostAwareSampler(optuna.samplers.TPESampler(seed=0), {"fast": 1, "slow": 1}),
    )
    study.add_trials(_history())
    drawn = []
    for _ in range(200):
        trial = study.ask()  # left running: only finished trials count
        drawn.append(trial.suggest_categorical("family", ["fast", "slow"]))
        trial.suggest_float("fast.x", 0.0, 1.0)
    assert 0.9 < drawn.count("fast") / 200 < 1.0


def test_auto_tries_every_family_then_shares_by_cost(binary_data, storage):
    X, y = binary_data
    result = auto_tune(X, y, families=["linear", "knn"], n_trials=6, storage=storage, show=False)
    assert isinstance(result.study.sampler, CostAwareSampler)
    assert {t.params["family"] for t in result.study.trials} == {"linear", "knn"}


def test_explicit_tpe_leaves_the_family_to_tpe(binary_data, storage):
    X, y = binary_data
    result = auto_tune(
        X, y, families=["linear", "knn"], strategy="tpe", n_trials=3, storage=storage, show=False
    )
    assert isinstance(result.study.sampler, optuna.samplers.TPESampler)


def test_a_family_clearly_behind_passes_over_its_queued_points(storage):
    """On data a linear model fits exactly, a forest's first point trails on every fold:
    it runs every fold, as a family's first trial does, but counts as clearly behind, its
    second point is passed over (and not counted), and the allocation gives the rest to
    the linear model."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=list("abcd"))
    y = X @ np.array([3.0, -2.0, 1.0, 0.5]) + rng.normal(0, 0.01, 600)
    # a budget under 30 s scores each trial on one round of folds
    result = auto_tune(
        X, y, families=["linear", "rf"], n_trials=4, timeout=25, storage=storage, show=False
    )
    trials = result.study.get_trials(deepcopy=False)
    forests = [t for t in trials if t.params["family"] == "rf"]
    first, second = forests[0], forests[1]
    assert first.state == TrialState.COMPLETE and len(first.intermediate_values) == 5
    assert first.user_attrs[BEHIND_KEY]
    assert PASSED_OVER_KEY in second.user_attrs and not second.intermediate_values
    later = [t for t in trials if t.number > second.number]
    assert later and all(t.params["family"] == "linear" for t in later)
    assert len([t for t in trials if PASSED_OVER_KEY not in t.user_attrs]) == 4
