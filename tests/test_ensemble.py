"""Greedy ensemble selection on out-of-fold predictions, and the ensemble as final model."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution
from sklearn.datasets import load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import autotune
from autotune.artifacts import (
    SAVE_SECONDS_PER_BOOSTED_TREE,
    SAVE_SECONDS_PER_MB,
    SAVE_SECONDS_PER_MODEL,
    SAVE_SECONDS_PER_TREE,
    estimated_bytes,
    estimated_save_seconds,
)
from autotune.data import profile_data
from autotune.engine import Listener, Objective, encode_target, make_splits
from autotune.engine._ensemble import (
    EnsembleModel,
    OutOfFold,
    choose_ensemble,
    holds_out,
    select_ensemble,
)
from autotune.engine._refit import affordable, fit_bagged_model
from autotune.engine._run import FINAL_FIT_MARGIN, Run
from autotune.metrics import get_metric


def test_selection_prefers_complementary_models():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    noise_a = rng.normal(scale=1.0, size=400)
    noise_b = rng.normal(scale=1.0, size=400)
    # two equally good, independently noisy models: their average is better than either
    a = 1 / (1 + np.exp(-(2 * (y - 0.5) * 2 + noise_a)))
    b = 1 / (1 + np.exp(-(2 * (y - 0.5) * 2 + noise_b)))
    bad = np.full(400, 0.5)
    oof = OutOfFold(get_metric("log_loss", "binary"))
    for number, p in enumerate([a, b, bad]):
        oof.add(number, 0.0, np.c_[1 - p, p], fit_time=0.1)
    weights, score, single = select_ensemble(oof, y, np.array([0, 1]))
    assert set(weights) == {0, 1}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert score < single
    assert holds_out(oof, y, np.array([0, 1]))
    assert choose_ensemble(oof, y, np.array([0, 1])) is not None
    # a better trial scored without out-of-fold predictions (say, a network on a holdout)
    assert choose_ensemble(oof, y, np.array([0, 1]), rival=score / 2) is None


@pytest.mark.parametrize("seed", range(5))
def test_ensemble_that_only_fits_its_own_rows_is_refused(seed):
    # one good model and variants of it with independent noise added: on 40 rows the greedy
    # selection finds noise that happens to cancel the good model's errors there
    rng = np.random.default_rng(seed)
    y = rng.normal(size=40)
    good = y + rng.normal(scale=0.3, size=40)
    oof = OutOfFold(get_metric("rmse", "regression"))
    oof.add(0, 0.0, good, fit_time=0.1)
    for number in range(1, 20):
        oof.add(number, 0.0, good + rng.normal(size=40), fit_time=0.1)
    weights, score, single = select_ensemble(oof, y, np.array([]))
    assert len(weights) > 1 and score < single  # out of fold, the ensemble looks better
    assert not holds_out(oof, y, np.array([]), seed)
    assert choose_ensemble(oof, y, np.array([]), seed=seed) is None


def test_out_of_fold_keeps_only_the_best_candidates():
    oof = OutOfFold(get_metric("roc_auc", "binary"), limit=3)
    for number in range(6):
        oof.add(number, number / 10, np.zeros((2, 2)), fit_time=float(number))
    assert sorted(oof.items) == [3, 4, 5]
    assert oof.best(2) == [5, 4]


def test_each_familys_best_trials_stay_candidates():
    # many near-equal trials of one family must not push the others out of the ensemble
    oof = OutOfFold(get_metric("roc_auc", "binary"), limit=3)
    for number, score in enumerate([0.5, 0.4, 0.3]):
        oof.add(number, score, np.zeros((2, 2)), 0.1, family="hgb")
    for number in range(3, 9):
        oof.add(number, 0.6 + number / 100, np.zeros((2, 2)), 0.1, family="linear")
    assert sorted(oof.items) == [0, 1, 6, 7, 8]  # the 3 best, and hgb's 2 best besides
    assert sorted(oof.fit_times) == sorted(oof.items)
    assert oof.family_bests(2) == [8, 0]
    assert oof.family_bests(5) == [8, 0]


def test_fold_models_are_kept_for_the_best_candidates_within_memory(monkeypatch):
    from autotune.engine import _ensemble

    monkeypatch.setattr(_ensemble, "KEEP_MODELS", 2)
    oof = OutOfFold(get_metric("roc_auc", "binary"))
    model = LinearRegressionLike(np.zeros(1000))  # 8,000 bytes of coefficients
    for number in range(4):
        oof.add(number, number / 10, np.zeros((2, 2)), 0.1, models=[model, model])
    assert sorted(oof.models) == [2, 3]  # the two best
    monkeypatch.setattr(_ensemble, "MAX_MODEL_BYTES", 20_000)
    oof.add(4, 0.9, np.zeros((2, 2)), 0.1, models=[model, model])
    assert sorted(oof.models) == [4]  # 16,000 bytes each: only the best fits
    assert oof.save_seconds(4) == 2 * SAVE_SECONDS_PER_MODEL  # kept: its two fold models
    assert oof.save_seconds(0) == 0.0  # not kept: nothing to save


class LinearRegressionLike:
    def __init__(self, coef: np.ndarray) -> None:
        self.coef_ = coef


def test_large_data_final_model_is_the_kept_fold_models(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(1500, 4)), columns=list("abcd"))
    y = (X["a"] + rng.normal(scale=0.5, size=1500) > 0).astype(int)
    url = f"sqlite:///{tmp_path / 'k.db'}"
    # an SVM's fold fit costs more than saving it: the bag is kept, not refitted
    result = autotune.auto_tune(X, y, n_trials=1, families=["svm"], storage=url, show=False)
    assert result.final_["bagged"] is True
    bag = result.model_
    cv = result.study.user_attrs["autotune"]["cv"]
    n_folds = cv["n_splits"]
    assert type(bag).__name__ == "EnsembleModel" and len(bag.members) == n_folds
    # each member takes raw data and was fitted on its fold's rows only: they differ
    first, second = (m.predict_proba(X) for m in bag.members[:2])
    assert not np.allclose(first, second)
    expected = np.mean([m.predict_proba(X) for m in bag.members], axis=0)
    np.testing.assert_allclose(result.predict_proba(X), expected)
    loaded = autotune.load(result.study.study_name, url)
    np.testing.assert_allclose(loaded.predict_proba(X), expected)


def test_data_of_three_folds_refits_on_all_rows_with_its_rounds_grown(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(10_500, 4)), columns=list("abcd"))
    y = X["a"] * X["b"] + rng.normal(scale=0.5, size=len(X))
    url = f"sqlite:///{tmp_path / 'r.db'}"
    result = autotune.auto_tune(X, y, n_trials=1, families=["hgb"], storage=url, show=False)
    assert result.study.user_attrs["autotune"]["cv"]["n_splits"] == 3
    # each fold model saw two-thirds of the rows: the final model is one refit on all
    assert result.final_ == {"kind": "trial", "trial": 0, "bagged": False}
    booster = result.model_[-1]
    stopped = result.study.trials[0].user_attrs["stopped_at"]
    assert booster.n_iter_ == round(stopped * 1.5)  # half as many rows again, as many rounds


def _mixed_objective(families: list[str], **options: Any) -> Objective:
    """An objective over 3 folds of 1,200 mixed rows (roc_auc), for a ``Run`` to hold."""
    from autotune.families import get_family
    from tests.conftest import make_mixed

    X, y = make_mixed(n=1200)
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    metric = get_metric("roc_auc", profile.task)
    splits = make_splits(profile, codes, 3, seed=0)
    chosen = [get_family(name) for name in families]
    return Objective(frame, codes, profile, chosen, metric, [], splits, seed=0, **options)


def _run_over(objective: Objective, study: optuna.Study, timeout: float) -> Run:
    """A run of ``objective`` from now, counting the study's trials so far."""
    run = Run(
        objective,
        objective.metric,
        Listener(),
        started=time.monotonic(),
        timeout=timeout,
        n_trials=None,
        n_splits=3,
    )
    run.seed_from(study.trials)
    return run


def test_a_refit_is_costed_the_same_whether_its_boosting_rounds_grow():
    objective = _mixed_objective(["hgb"])
    reserves = []
    for attrs in ({"fit_time": 4.0}, {"fit_time": 4.0, "stopped_at": 120.0}):
        study = optuna.create_study(direction="maximize")
        study.add_trial(
            optuna.trial.create_trial(
                params={"family": "hgb"},
                distributions={"family": CategoricalDistribution(["hgb"])},
                value=0.9,
                user_attrs=attrs,
            )
        )
        reserves.append(_run_over(objective, study, timeout=60.0).final_fit_reserve())
    # a refit on 1.5 times the rows, for 1.5 times the rounds early stopping chose, was
    # measured at 1 to 1.84 fold fits: a fold also scores its validation rows every round
    assert reserves[0] == reserves[1]
    assert reserves[1] < FINAL_FIT_MARGIN * 4.0 * 1.5**2


def test_ensemble_final_model_is_stored_and_reloads(tmp_path):
    X, y = load_wine(return_X_y=True, as_frame=True)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = autotune.auto_tune(
        X, y, n_trials=25, families=["linear", "knn", "svm"], storage=url, show=False
    )
    # a fixed trial budget makes the run deterministic: here the ensemble wins
    info = result.study.user_attrs["autotune_final"]
    assert info["kind"] == "ensemble"
    proba = result.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert info["score"] < info["best_single"]  # log loss: lower is better
    assert len(info["weights"]) >= 2
    assert type(result.model_).__name__ in {"EnsembleModel", "TemperatureScaled"}
    board = result.leaderboard
    assert board.loc[0, "family"] == "ensemble" and board.loc[0, "final"]
    assert board.loc[0, "score"] == pytest.approx(info["score"])
    assert board["final"].sum() == 1 and board["trial"].isna().sum() == 1
    loaded = autotune.load(result.study.study_name, url)
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)


def test_small_data_final_model_averages_the_fold_models(tmp_path):
    X, y = load_wine(return_X_y=True, as_frame=True)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = autotune.auto_tune(X, y, n_trials=1, families=["linear"], storage=url, show=False)
    assert result.final_ == {"kind": "trial", "trial": 0, "bagged": True}
    bag = result.model_
    assert type(bag).__name__ == "EnsembleModel" and len(bag.members) == 5
    assert bag.weights == [0.2] * 5
    # the prediction is the plain average of the fold models
    proba = np.mean([m.predict_proba(X) for m in bag.members], axis=0)
    np.testing.assert_allclose(result.predict_proba(X), proba)
    loaded = autotune.load(result.study.study_name, url)
    np.testing.assert_array_equal(loaded.predict_proba(X), result.predict_proba(X))


def test_bagging_stops_adding_fold_models_at_the_deadline():
    X, y = load_wine(return_X_y=True, as_frame=True)
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    splits = make_splits(profile, codes, 5, seed=0)
    frozen = optuna.trial.create_trial(
        params={"family": "linear", "linear.C": 1.0, "linear.class_weight": None},
        distributions={
            "family": optuna.distributions.CategoricalDistribution(["linear"]),
            "linear.C": optuna.distributions.FloatDistribution(1e-4, 1e3, log=True),
            "linear.class_weight": optuna.distributions.CategoricalDistribution([None]),
        },
        value=0.1,
    )
    _, full = fit_bagged_model(frozen, profile, frame, codes, 0, splits)
    _, cut = fit_bagged_model(frozen, profile, frame, codes, 0, splits, time.monotonic() - 1)
    assert len(full.members) == 5 and len(cut.members) == 1
    assert cut.weights == [1.0]
    assert np.allclose(cut.predict_proba(frame).sum(axis=1), 1.0)


def test_save_time_is_estimated_from_the_trees_a_final_model_holds(multiclass_data):
    X, y = multiclass_data
    boosted = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=20))
    boosted.fit(X, y)
    forest = RandomForestClassifier(n_estimators=7).fit(X, y)
    bag = EnsembleModel([boosted, forest], [0.5, 0.5], regression=False, n_classes=3)
    boosted_trees = boosted[-1].n_iter_ * len(np.unique(y))
    nodes = estimated_bytes(forest) / 1e6
    expected = SAVE_SECONDS_PER_BOOSTED_TREE * boosted_trees + SAVE_SECONDS_PER_TREE * 7
    assert estimated_save_seconds([bag]) == pytest.approx(expected + SAVE_SECONDS_PER_MB * nodes)
    assert estimated_save_seconds([StandardScaler().fit(X)]) == SAVE_SECONDS_PER_MODEL


def test_kept_fold_models_are_cut_to_what_the_time_left_can_save(multiclass_data):
    X, y = multiclass_data
    forests = [RandomForestClassifier(n_estimators=100, random_state=k).fit(X, y) for k in range(5)]
    one = estimated_save_seconds(forests[:1])
    assert affordable(forests, None) == 5
    assert affordable(forests, time.monotonic() + 100) == 5
    assert affordable(forests, time.monotonic() + 2.5 * one) == 2
    assert affordable(forests, time.monotonic() - 1) == 1  # a model is always kept


def test_a_member_that_never_saw_a_rare_class_gives_it_no_probability():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = np.repeat([0, 1, 2], 20)
    full = LogisticRegression().fit(X, y)
    partial = LogisticRegression().fit(X[y < 2], y[y < 2])  # a fold without class 2
    bag = EnsembleModel([full, partial], [0.5, 0.5], n_classes=3).fit(X)
    proba = bag.predict_proba(X)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 2], 0.5 * full.predict_proba(X)[:, 2])


def test_a_network_best_on_its_holdout_does_not_hold_back_the_search():
    objective = _mixed_objective(["linear", "keras"], bag_folds=3)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"family": "linear"})
    study.optimize(objective, n_trials=1)  # cross-validated, its fold models kept
    assert list(objective.oof.models) == [0]
    network = optuna.trial.create_trial(
        params={"family": "keras"},
        distributions={"family": CategoricalDistribution(["linear", "keras"])},
        value=min(max(study.best_value, study.best_trial.intermediate_values[0]) + 0.01, 1.0),
        user_attrs={"fit_time": 100.0},  # one slow fit, scored on its holdout
    )
    study.add_trial(network)
    run = _run_over(objective, study, timeout=30.0)
    assert run.best.number == 1
    assert run.final_fit_reserve() < 5.0  # not the network's refit: 1.5 x 100 s and more
    assert run.stand_in(study, run.best).number == 0  # no time to refit it: trial 0 stands in
    run.deadline = time.monotonic() + 10_000.0
    assert run.stand_in(study, run.best).number == 1  # with the time, the network it is
