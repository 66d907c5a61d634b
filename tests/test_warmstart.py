"""Warm start from similar earlier studies, on a real SQLite store filled by auto_tune."""

from __future__ import annotations

import math
import sqlite3
import time
import warnings
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from sklearn.datasets import load_breast_cancer, load_diabetes

from autotune import auto_tune
from autotune.data import DataProfile, profile_data
from autotune.engine import family_params
from autotune.engine._objective import FAMILY_PARAM
from autotune.engine._warmstart import (
    MAX_DISTANCE,
    find_warm_start,
    meta_features,
)
from autotune.families import Space, get_family
from autotune.store import load_study, open_storage, read_meta, sqlite_path, write_meta
from tests.conftest import make_mixed

BINARY_FAMILIES = ["knn", "linear"]


def _cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:, :10], y


def _diabetes() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with three real studies: two binary datasets unlike each other, and a
    regression one."""
    url = f"sqlite:///{tmp_path_factory.mktemp('history')}/autotune.db"
    X, y = _cancer()
    auto_tune(
        X.iloc[:400],
        y.iloc[:400],
        n_trials=5,
        families=BINARY_FAMILIES,
        storage=url,
        study_name="cancer",
        show=False,
    )
    X_mixed, y_mixed = make_mixed(300, seed=1)
    auto_tune(
        X_mixed,
        y_mixed,
        n_trials=8,
        families=["knn"],
        storage=url,
        study_name="mixed",
        show=False,
    )
    X_reg, y_reg = _diabetes()
    auto_tune(
        X_reg.iloc[:200],
        y_reg.iloc[:200],
        n_trials=3,
        families=["knn"],
        storage=url,
        study_name="diabetes",
        show=False,
    )
    return url


def _profile(X: pd.DataFrame, y: pd.Series) -> DataProfile:
    return profile_data(X, y)[2]


def _cancer_like() -> DataProfile:
    """Other rows of the same dataset, as many as the cancer study had."""
    X, y = _cancer()
    return _profile(X.iloc[100:500], y.iloc[100:500])


def _best_trials(url: str, name: str, families: list[str]) -> list[optuna.trial.FrozenTrial]:
    study = load_study(name, url)
    complete = [
        t
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if t.params[FAMILY_PARAM] in families
    ]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(complete, key=lambda t: (-t.value if maximize else t.value, t.number))


def _replays_cleanly(config: dict[str, Any], profile: DataProfile) -> bool:
    """The config rebuilds the family's parameters, every value inside its range."""
    family = get_family(config[FAMILY_PARAM])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FixedTrial warns about out-of-range values
        params = family_params(config, family, profile)
    return {f"{family.name}.{k}" for k in params} == set(config) - {FAMILY_PARAM}


def test_meta_features_agree_for_profile_and_stored_dict(history):
    X, y = _cancer()
    live = _profile(X.iloc[:400], y.iloc[:400])
    stored = read_meta(load_study("cancer", history))["profile"]
    assert meta_features(live) == meta_features(stored)
    assert meta_features(DataProfile.from_dict(stored)) == meta_features(stored)
    features = meta_features(live)
    assert features.task == "binary"
    assert features.log_rows == pytest.approx(math.log10(400))
    assert features.numeric_share == 1.0 and features.categorical_share == 0.0
    minority = min(live.class_counts.values())
    assert features.class_balance == pytest.approx(2 * minority / 400)

    mixed = meta_features(read_meta(load_study("mixed", history))["profile"])
    assert mixed.categorical_share == pytest.approx(2 / 6)
    assert mixed.missing_share > 0
    regression = meta_features(read_meta(load_study("diabetes", history))["profile"])
    assert (regression.task, regression.log_classes, regression.class_balance) == (
        "regression",
        0.0,
        1.0,
    )


def test_only_studies_of_similar_data_lend_configurations(history):
    # other rows of the same data are near; the binary study of unlike data lends nothing
    warm = find_warm_start(history, _cancer_like(), "binary", "roc_auc", BINARY_FAMILIES)
    assert [s.name for s in warm.sources] == ["cancer"]

    X_mixed, y_mixed = make_mixed(200, seed=7)
    mixed_like = _profile(X_mixed, y_mixed)
    warm = find_warm_start(history, mixed_like, "binary", "roc_auc", BINARY_FAMILIES)
    assert [s.name for s in warm.sources] == ["mixed"]
    assert warm.sources[0].distance <= MAX_DISTANCE

    # the same kind of data, grown twenty-fold, is no longer similar
    X_big, y_big = make_mixed(6000, seed=7)
    big = find_warm_start(history, _profile(X_big, y_big), "binary", "roc_auc", BINARY_FAMILIES)
    assert big.sources == [] and big.configs == []


def test_configs_are_the_best_trials_of_the_nearest_study(history):
    profile = _cancer_like()
    configs = find_warm_start(
        history, profile, "binary", "roc_auc", BINARY_FAMILIES, k_studies=1, per_study=2
    ).configs
    expected = [dict(t.params) for t in _best_trials(history, "cancer", BINARY_FAMILIES)[:2]]
    assert configs == expected
    assert all(FAMILY_PARAM in c and _replays_cleanly(c, profile) for c in configs)

    # ready for enqueue_trial: the next trial samples exactly this configuration
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(configs[0], skip_if_exists=True)
    trial = study.ask()
    family = get_family(trial.suggest_categorical(FAMILY_PARAM, BINARY_FAMILIES))
    family.suggest(Space(trial, family.name), profile)
    assert trial.params == configs[0]


def test_only_families_of_this_run_and_no_duplicates(history):
    profile = _cancer_like()
    linear = find_warm_start(
        history, profile, "binary", "roc_auc", ["linear"], k_studies=1, per_study=1
    ).configs
    best_linear = _best_trials(history, "cancer", ["linear"])
    assert best_linear, "the cancer study should have a finished linear trial"
    assert linear == [dict(best_linear[0].params)]

    configs = find_warm_start(
        history, profile, "binary", "roc_auc", ["knn"], k_studies=3, per_study=3
    ).configs
    assert configs and all(c[FAMILY_PARAM] == "knn" for c in configs)
    keys = [tuple(sorted(c.items())) for c in configs]
    assert len(set(keys)) == len(keys)


def test_other_tasks_directions_and_the_same_data_are_ignored(history):
    X_reg, y_reg = _diabetes()
    regression = _profile(X_reg.iloc[150:400], y_reg.iloc[150:400])
    warm = find_warm_start(history, regression, "regression", "rmse", ["knn"], k_studies=10)
    assert [s.name for s in warm.sources] == ["diabetes"]
    assert all(_replays_cleanly(c, regression) for c in warm.configs)

    binary = find_warm_start(history, _cancer_like(), "binary", "roc_auc", ["knn"], k_studies=10)
    assert "diabetes" not in {s.name for s in binary.sources}
    # log_loss is minimised: studies that maximised roc_auc rank their trials the other way
    assert find_warm_start(history, _cancer_like(), "binary", "log_loss", ["knn"]).configs == []
    # accuracy is maximised too: the roc_auc studies still lend their best configurations
    assert find_warm_start(history, _cancer_like(), "binary", "accuracy", ["knn"]).sources

    X, y = _cancer()
    same_data = _profile(X.iloc[:400], y.iloc[:400])
    assert find_warm_start(history, same_data, "binary", "roc_auc", ["knn"]).sources == []
    excluded = find_warm_start(
        history, _cancer_like(), "binary", "roc_auc", ["knn"], exclude_study="cancer"
    )
    assert excluded.sources == []


def _copy_store(url: str, folder) -> str:
    """A copy of an SQLite store (WAL included), so that a test may add studies to it."""
    target = folder / "copy.db"
    with sqlite3.connect(sqlite_path(url)) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    return f"sqlite:///{target}"


#: Choices of the string parameters of hand-made trials; one study needs one space.
_CHOICES = {
    "family": ["knn", "linear", "xgb"],
    "knn.weights": ["uniform", "distance", "bogus"],
    "knn.n_neighbors": ["five"],
}


def _add_trial(study: optuna.Study, params: dict[str, Any], value: float) -> None:
    distributions = {
        name: CategoricalDistribution(_CHOICES[name])
        if isinstance(v, str)
        else IntDistribution(1, 1000)
        for name, v in params.items()
    }
    study.add_trial(
        optuna.trial.create_trial(params=params, distributions=distributions, value=value)
    )


def test_foreign_and_broken_studies_are_skipped(history, tmp_path):
    url = _copy_store(history, tmp_path)
    storage = open_storage(url)
    profile = _cancer_like()

    foreign = optuna.create_study(storage=storage, study_name="foreign", direction="maximize")
    _add_trial(foreign, {"family": "knn", "knn.n_neighbors": 3}, 0.99)
    not_a_dict = optuna.create_study(storage=storage, study_name="odd", direction="maximize")
    not_a_dict.set_user_attr("autotune", "not a mapping")
    _add_trial(not_a_dict, {"family": "knn", "knn.n_neighbors": 3}, 0.99)
    bad_profile = optuna.create_study(storage=storage, study_name="bad", direction="maximize")
    write_meta(bad_profile, {"task": "binary", "metric": "roc_auc", "profile": {"n_rows": -3}})
    _add_trial(bad_profile, {"family": "knn", "knn.n_neighbors": 3}, 0.99)
    two_goals = optuna.create_study(
        storage=storage, study_name="pareto", directions=["maximize", "maximize"]
    )
    write_meta(two_goals, {**read_meta(load_study("cancer", url)), "fingerprint": "x"})

    # Claims the very same profile (distance 0) under another fingerprint; most of its
    # trials cannot run here, one can once its n_neighbors is clipped to this data's range.
    impostor = optuna.create_study(storage=storage, study_name="impostor", direction="maximize")
    write_meta(
        impostor,
        {
            "task": "binary",
            "metric": "roc_auc",
            "fingerprint": "other",
            "profile": profile.to_dict(),
        },
    )
    _add_trial(impostor, {"family": "xgb", "xgb.depth": 3}, 0.999)
    bogus = {"family": "knn", "knn.n_neighbors": 5, "knn.weights": "bogus", "knn.p": 2}
    _add_trial(impostor, bogus, 0.998)
    _add_trial(impostor, {"family": "knn", "knn.n_neighbors": 5}, 0.997)
    too_many = {"family": "knn", "knn.n_neighbors": 500, "knn.weights": "uniform", "knn.p": 1}
    _add_trial(impostor, too_many, 0.5)
    twin = optuna.create_study(storage=storage, study_name="twin", direction="maximize")
    write_meta(twin, read_meta(impostor))
    _add_trial(
        twin, {"family": "knn", "knn.n_neighbors": "five", "knn.weights": "uniform", "knn.p": 2}, 1
    )
    impostor.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))

    warm = find_warm_start(storage, profile, "binary", "roc_auc", BINARY_FAMILIES, per_study=2)
    assert [s.name for s in warm.sources] == ["impostor", "cancer"]
    assert warm.sources[0].distance == 0.0 and warm.sources[0].n_configs == 1
    high = max(2, min(100, profile.n_rows // 5))
    assert warm.configs[0] == {
        "family": "knn",
        "knn.n_neighbors": high,
        "knn.weights": "uniform",
        "knn.p": 1,
    }
    assert all(_replays_cleanly(c, profile) for c in warm.configs)


def test_empty_store_and_message(storage, history):
    profile = _cancer_like()
    empty = find_warm_start(storage, profile, "binary", "roc_auc", BINARY_FAMILIES)
    assert empty.configs == [] and empty.sources == []
    assert empty.message() is None
    assert find_warm_start(storage, profile, "binary", "roc_auc", ["knn"]).configs == []

    warm = find_warm_start(history, profile, "binary", "roc_auc", BINARY_FAMILIES)
    assert warm.message() == (
        f"warm start: {len(warm.configs)} configurations from 1 similar study: cancer"
    )


def test_fast_on_a_store_of_twenty_studies(history, tmp_path):
    url = _copy_store(history, tmp_path)
    storage = open_storage(url)
    template = read_meta(load_study("cancer", url))
    rng = np.random.default_rng(0)
    for i in range(20):
        rows = int(rng.integers(300, 600))  # near enough to the data below to lend
        study = optuna.create_study(storage=storage, study_name=f"s{i}", direction="maximize")
        profile = {
            **template["profile"],
            "n_rows": rows,
            "class_counts": {"0": rows // 3, "1": rows - rows // 3},
        }
        write_meta(study, {**template, "fingerprint": f"f{i}", "profile": profile})
        for k in range(3):
            _add_trial(
                study,
                {
                    "family": "knn",
                    "knn.n_neighbors": 2 + k + 3 * i,
                    "knn.weights": "uniform",
                    "knn.p": 2,
                },
                0.9 + k / 100,
            )
    profile = _cancer_like()
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        warm = find_warm_start(storage, profile, "binary", "roc_auc", BINARY_FAMILIES)
        timings.append(time.perf_counter() - started)
    assert len(warm.sources) == 3 and 3 <= len(warm.configs) <= 6
    print(f"warm start on 23 studies: {min(timings) * 1000:.0f} ms (best of 3)")
    assert min(timings) < 0.2, timings


def test_a_new_study_starts_from_the_nearest_studys_winners(history, capsys):
    best = load_study("cancer", history).best_trial
    X, y = _cancer()
    warm = find_warm_start(
        history, _profile(X.iloc[150:], y.iloc[150:]), "binary", "roc_auc", BINARY_FAMILIES
    )
    result = auto_tune(
        X.iloc[150:],
        y.iloc[150:],
        n_trials=4,
        families=BINARY_FAMILIES,
        storage=history,
        study_name="cancer_again",
        show=True,
    )
    assert "warm start:" in capsys.readouterr().out
    tried = [t.params for t in result.study.trials]
    assert best.params in tried
    # the earlier winners run right after the first starting point
    fresh = [c for c in warm.configs if c != tried[0]]
    assert fresh and tried[1] == fresh[0]
    # resuming the same study does not queue the history again
    waiting = (optuna.trial.TrialState.WAITING,)
    waiting_before = len(result.study.get_trials(states=waiting))
    again = auto_tune(
        X.iloc[150:], y.iloc[150:], n_trials=1, storage=history, study_name="cancer_again"
    )
    assert "warm start:" not in capsys.readouterr().out
    assert len(again.study.get_trials(states=waiting)) == max(waiting_before - 1, 0)
