"""The fold-wise pruner: Optuna's Wilcoxon decisions with SciPy's exact distribution, and
before the test can decide, the clear-loss rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial
from scipy import stats

from autotune.engine._objective import BEHIND_KEY
from autotune.engine._pruning import (
    HOPELESS_EPOCHS,
    WILCOXON_MIN_STEPS,
    FoldWilcoxonPruner,
    clearly_worse,
    hopeless,
    hopeless_bar,
)


def _study(direction: str, best: np.ndarray, current: np.ndarray) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    study.add_trial(
        create_trial(
            value=float(np.mean(best)),
            intermediate_values=dict(enumerate(best.tolist())),
            state=TrialState.COMPLETE,
        )
    )
    study.add_trial(
        create_trial(
            intermediate_values=dict(enumerate(current.tolist())), state=TrialState.RUNNING
        )
    )
    return study


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_decides_as_optunas_pruner_where_there_are_no_ties(direction) -> None:
    rng = np.random.default_rng(0)
    ours = FoldWilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    theirs = optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    decisions = []
    for _ in range(60):
        n = int(rng.integers(WILCOXON_MIN_STEPS, 15))
        best = rng.normal(0.8, 0.05, 15)
        current = best[:n] + rng.normal(rng.normal(0, 0.02), 0.02, n)
        study = _study(direction, best, current)
        trial = study.trials[-1]
        decisions.append(ours.prune(study, trial))
        assert decisions[-1] == theirs.prune(study, trial)
    assert 0 < sum(decisions) < len(decisions)  # both outcomes were exercised


def test_with_a_tied_fold_uses_the_exact_distribution() -> None:
    best = np.array([0.99, 1.0, 0.98, 1.0, 0.97, 0.99, 1.0, 0.98, 0.99, 1.0, 0.96, 0.99])
    worse = best - np.array([0.01, 0, 0.02, 0.01, 0.02, 0.01, 0, 0.03, 0.01, 0.02, 0.01, 0.02])
    study = _study("maximize", best, worse)
    differences = worse - best
    exact = stats.wilcoxon(differences, alternative="less", zero_method="zsplit", method="exact")
    assert exact.pvalue < 0.1
    assert FoldWilcoxonPruner(p_threshold=0.1).prune(study, study.trials[-1])
    # a trial as good as the best on average is never pruned (Optuna's safety rule)
    level = _study("maximize", best, best[::-1])
    assert not FoldWilcoxonPruner(p_threshold=0.1).prune(level, level.trials[-1])


def test_does_not_prune_without_a_best_trial_or_finite_values() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(intermediate_values={0: 0.5, 1: 0.4}, state=TrialState.RUNNING))
    assert not FoldWilcoxonPruner().prune(study, study.trials[-1])
    nan = _study("maximize", np.full(6, 0.9), np.array([0.1, np.nan, 0.1, 0.1, 0.1, 0.1]))
    assert not FoldWilcoxonPruner().prune(nan, nan.trials[-1])


def test_clearly_worse_means_behind_on_every_fold_by_more_than_the_best_trials_spread() -> None:
    best = np.array([0.20, 0.25, 0.22, 0.18, 0.23])  # losses; standard deviation 0.027
    assert clearly_worse(np.array([0.05, 0.04]), best)
    assert not clearly_worse(np.array([0.05, 0.01]), best)  # close on one fold
    assert not clearly_worse(np.array([0.05, 0.04]), best[:1])  # no spread to judge by


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_before_the_test_can_decide_only_a_clearly_worse_trial_is_pruned(direction) -> None:
    best = np.array([0.80, 0.85, 0.82, 0.78, 0.83])
    behind = -0.08 if direction == "maximize" else 0.08
    far = _study(direction, best, best[:2] + behind)
    assert FoldWilcoxonPruner(n_startup_steps=2).prune(far, far.trials[-1])
    close = _study(direction, best, best[:3] + np.array([behind, behind, behind / 10]))
    assert not FoldWilcoxonPruner(n_startup_steps=2).prune(close, close.trials[-1])


def test_a_network_is_hopeless_from_its_fifth_epoch_if_it_closed_under_a_quarter_of_the_gap():
    # log loss: a constant prediction scores 1.1, the best trees 0.3; the bar is 0.9
    bar = hopeless_bar(1.1, 0.3, greater_is_better=False)
    assert bar == pytest.approx(0.9)
    last_early_epoch = HOPELESS_EPOCHS - 2
    assert not hopeless(1.05, last_early_epoch, bar, greater_is_better=False)
    assert hopeless(1.05, last_early_epoch + 1, bar, greater_is_better=False)
    assert not hopeless(0.85, last_early_epoch + 1, bar, greater_is_better=False)
    # roc_auc: a constant prediction scores 0.5, the best 0.9; the bar is 0.6
    auc = hopeless_bar(0.5, 0.9, greater_is_better=True)
    assert auc == pytest.approx(0.6)
    assert hopeless(0.55, HOPELESS_EPOCHS, auc, greater_is_better=True)
    assert not hopeless(0.65, HOPELESS_EPOCHS, auc, greater_is_better=True)


@pytest.mark.parametrize("greater_is_better", [True, False])
def test_no_bar_where_the_best_is_no_better_than_a_constant(greater_is_better) -> None:
    worse = 0.4 if greater_is_better else 0.6
    assert hopeless_bar(0.5, 0.5, greater_is_better) is None
    assert hopeless_bar(0.5, worse, greater_is_better) is None
    assert not hopeless(0.0 if greater_is_better else 9.0, 99, None, greater_is_better)


_WEAK_FOREST = {
    "family": "rf",
    "rf.n_estimators": 50,
    "rf.max_features": 0.05,
    "rf.min_samples_leaf": 15,
    "rf.max_depth": 8,
    "rf.class_weight": None,
}


def _weak_forests(
    binary_data, best: list[float] | None, n_repeats: int, first_prune_step: int
) -> tuple[optuna.Study, Any]:
    """Two trials of the weak forest, against a complete trial with fold scores ``best``
    (none if None), on five folds repeated ``n_repeats`` times."""
    from autotune.data import profile_data
    from autotune.engine import Objective, encode_target, make_splits
    from autotune.families import get_family
    from autotune.metrics import get_metric

    X, y = binary_data
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    splits = make_splits(profile, codes, 5, seed=0, n_repeats=n_repeats)
    metric = get_metric("roc_auc", profile.task)
    objective = Objective(
        frame,
        codes,
        profile,
        [get_family("rf")],
        metric,
        [],
        splits,
        seed=0,
        first_prune_step=first_prune_step,
    )
    study = optuna.create_study(direction="maximize", pruner=FoldWilcoxonPruner(p_threshold=0.1))
    if best is not None:
        study.add_trial(
            create_trial(
                params={"family": "rf"},
                distributions={"family": optuna.distributions.CategoricalDistribution(["rf"])},
                value=float(np.mean(best)),
                intermediate_values=dict(enumerate(best)),
            )
        )
    for _ in range(2):
        study.enqueue_trial(_WEAK_FOREST, skip_if_exists=False)
    study.optimize(objective, n_trials=2, catch=())
    return study, objective


@pytest.mark.parametrize(("n_repeats", "first_prune_step"), [(1, 2), (2, 5)])
def test_a_familys_first_trial_runs_every_fold_and_later_ones_are_pruned(
    binary_data, n_repeats, first_prune_step
) -> None:
    """Against a near-perfect best trial, a weak forest is clearly worse from its first
    judged fold on: fold 2, or with repeated folds the end of the first repeat, where the
    signed-rank test decides. The family's first trial still runs every fold (the
    ensemble may want it) and counts as behind, so the allocation stops giving the family
    trials; its second trial stops where it is first judged."""
    best = [0.9995, 0.9990, 0.9998, 0.9993, 0.9996] * n_repeats
    study, objective = _weak_forests(binary_data, best, n_repeats, first_prune_step)
    first, second = study.trials[1], study.trials[2]
    assert first.state == TrialState.COMPLETE and len(first.intermediate_values) == len(best)
    assert first.user_attrs[BEHIND_KEY] and first.value < study.trials[0].value
    assert second.state == TrialState.PRUNED
    assert len(second.intermediate_values) == first_prune_step
    assert objective.stats["rf"].clearly_behind


def test_a_trial_the_signed_rank_test_stops_when_slightly_worse_is_not_behind(
    binary_data,
) -> None:
    """A best trial ahead by less than its own spread across folds, on every fold, makes
    the test stop the forest, but the forest's family is not behind: it stays in play."""
    alone, _ = _weak_forests(binary_data, None, n_repeats=2, first_prune_step=5)
    own = [alone.trials[0].intermediate_values[k] for k in range(10)]
    best = [v + 0.002 for v in own]
    assert np.std(best, ddof=1) > 0.002  # each fold's lead is within the spread
    study, objective = _weak_forests(binary_data, best, n_repeats=2, first_prune_step=5)
    first, second = study.trials[1], study.trials[2]
    assert first.intermediate_values == alone.trials[0].intermediate_values
    assert second.state == TrialState.PRUNED and len(second.intermediate_values) == 5
    assert not first.user_attrs.get(BEHIND_KEY) and not second.user_attrs.get(BEHIND_KEY)
    assert not objective.stats["rf"].clearly_behind
