"""Successive halving after an early look, on data too large for fold-wise pruning."""

from __future__ import annotations

import pandas as pd
import pytest
from optuna.trial import TrialState
from sklearn.datasets import make_classification

from autotune import auto_tune
from autotune.engine._objective import LOOK_KEY
from autotune.engine._pruning import halving_prunes


def test_halving_keeps_the_best_third_once_a_rung_has_enough_looks() -> None:
    assert not halving_prunes(0.5, [0.9], greater_is_better=True)  # too few looks to judge
    assert halving_prunes(0.5, [0.9, 0.8], greater_is_better=True)
    assert not halving_prunes(0.95, [0.9, 0.8], greater_is_better=True)
    assert not halving_prunes(0.85, [0.9, 0.8, 0.7, 0.6, 0.5], greater_is_better=True)
    assert halving_prunes(0.3, [0.1, 0.2], greater_is_better=False)
    assert not halving_prunes(0.05, [0.1, 0.2], greater_is_better=False)


@pytest.fixture(scope="module")
def large_data() -> tuple[pd.DataFrame, pd.Series]:
    X, y = make_classification(10_500, 6, n_informative=4, random_state=0)
    return pd.DataFrame(X).add_prefix("x"), pd.Series(y)


def test_large_data_takes_an_early_look_and_halves(large_data, storage) -> None:
    X, y = large_data
    result = auto_tune(
        X, y, families=["linear", "hgb"], n_trials=9, seed=1, storage=storage, show=False
    )
    trials = sorted(result.study.trials, key=lambda t: t.number)
    looks = [t.user_attrs.get(LOOK_KEY) for t in trials]
    assert all(isinstance(look, float) for look in looks)  # every family looks first
    stopped = [t for t in trials if t.state == TrialState.PRUNED and not t.intermediate_values]
    assert stopped, "no trial was stopped after its look"
    for trial in stopped:  # each one by the rule, against the looks made before it
        assert halving_prunes(looks[trial.number], looks[: trial.number], greater_is_better=True)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert result.best_trial_.number in {t.number for t in complete}


def test_small_data_is_pruned_by_folds_without_looks(binary_data, storage) -> None:
    X, y = binary_data
    result = auto_tune(X, y, families=["linear"], n_trials=3, storage=storage, show=False)
    assert all(LOOK_KEY not in t.user_attrs for t in result.study.trials)


def test_a_family_stopped_at_its_early_looks_is_costed_from_them():
    from autotune.engine._objective import FamilyStats
    from autotune.engine._pruning import HALVING_RATE

    stats = FamilyStats()
    assert stats.expected_fold_time() is None
    stats.look_times += [0.2, 0.4, 0.3]
    # a look trains on a third of the resource: a full fold costs about three times as much
    assert stats.expected_fold_time() == pytest.approx(HALVING_RATE * 0.3)
    stats.fold_times.append(2.0)
    assert stats.expected_fold_time() == 2.0


def test_an_unmeasured_family_gets_its_early_look_when_a_third_of_the_guess_fits():
    import time

    import optuna

    from autotune.data import profile_data
    from autotune.engine import Objective, encode_target, make_splits
    from autotune.families import get_family
    from autotune.metrics import get_metric
    from tests.conftest import make_mixed

    X, y = make_mixed(n=300)
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    families = [get_family("linear"), get_family("rf")]
    splits = make_splits(profile, codes, 3, seed=0)
    metric = get_metric("roc_auc", profile.task)
    objective = Objective(frame, codes, profile, families, metric, [], splits, seed=0)
    objective.early_looks = True
    objective.stats["linear"].fold_times.append(3.0)  # the slowest family measured so far
    objective.stats["linear"].n_ok = 1
    # the cautious guess for a whole first fold of rf is 3 x 3 s = 9 s, more than is left;
    # its look, a third of that, fits: rf is measured instead of never tried
    objective.deadline = time.monotonic() + 5.0
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"family": "rf"})
    study.optimize(objective, n_trials=1, catch=())
    assert len(objective.stats["rf"].look_times) == 1


def test_fold_fits_keep_to_the_deadline_only_once_a_trial_has_finished():
    import time

    from autotune.data import profile_data
    from autotune.engine import Objective, encode_target, make_splits
    from autotune.families import get_family
    from autotune.metrics import get_metric
    from tests.conftest import make_mixed

    X, y = make_mixed(n=200)
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    hgb = get_family("hgb")
    splits = make_splits(profile, codes, 3, seed=0)
    metric = get_metric("roc_auc", profile.task)
    objective = Objective(frame, codes, profile, [hgb], metric, [], splits, seed=0)
    objective.deadline = time.monotonic() + 5.0
    # the run has no model yet: its first trial trains in full, whatever the time
    assert objective._fold_inputs(hgb, {}, 0, None)[2].deadline is None
    objective.stats["hgb"].n_ok = 1
    assert objective._fold_inputs(hgb, {}, 0, None)[2].deadline == objective.deadline


def test_an_early_look_keeps_to_the_deadline(large_data) -> None:
    import time

    import optuna

    from autotune.data import profile_data
    from autotune.engine import Objective, encode_target, make_splits
    from autotune.families import get_family
    from autotune.metrics import get_metric

    X, y = large_data
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    hgb = get_family("hgb")
    splits = make_splits(profile, codes, 3, seed=0)
    objective = Objective(
        frame, codes, profile, [hgb], get_metric("roc_auc", profile.task), [], splits, seed=0
    )
    objective.early_looks = True
    objective.stats["hgb"].fold_times.append(0.01)  # measured on a cheap configuration
    objective.stats["hgb"].n_ok = 1
    costly = {"max_iter": 1000, "max_leaf_nodes": 256, "min_samples_leaf": 2, "learning_rate": 0.01}
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"family": "hgb", **{f"hgb.{k}": v for k, v in costly.items()}})
    # a deadline before the look's first iterations end: with more time, on a quick
    # machine its early stopping ended the look within a second
    objective.deadline = time.monotonic() + 0.2
    study.optimize(objective, n_trials=1, catch=())
    overrun = time.monotonic() - objective.deadline
    # its first tenth of 333 iterations is all it may train: the whole look takes ~10 s
    assert overrun < 3.0
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs.get("stopped") == "time budget reached"
    assert LOOK_KEY not in trial.user_attrs  # a look cut short judges nothing
    assert objective.stats["hgb"].look_times == []
