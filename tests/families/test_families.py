"""One test over every registered family: sample, build, fit, predict, save and reload."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
import skops.io as sio

from autotune.data import profile_data
from autotune.engine import encode_target, family_params, predict_scores
from autotune.families import FitContext, ModelFamily, Space, make_pipeline_for, registered_families
from autotune.families._portfolio import PORTFOLIO, SMALL_ROWS, portfolio
from autotune.families.hgb import CATEGORY_SPLITS, VALIDATION_ROWS
from tests.conftest import make_mixed

FAMILIES = sorted(registered_families())


def _task_data(task: str):
    X, y = make_mixed(n=160)
    if task == "regression":
        y = X["x2"].fillna(0) * 2 + np.random.default_rng(1).normal(size=len(X))
    elif task == "multiclass":
        y = np.where(X["x2"] > 6.6, "hi", np.where(X["x2"] > 3.3, "mid", "lo"))
    return X, y


def _fit(family: ModelFamily, task: str, seed: int = 0):
    X, y = _task_data(task)
    frame, target, profile = profile_data(X, y)
    study = optuna.create_study()
    trial = study.ask()
    params = family.suggest(Space(trial, family.name), profile)
    model = make_pipeline_for(
        family.preprocessing, family.build(params, profile, seed), profile, seed
    )
    model.fit(frame, encode_target(target, profile))
    return model, frame, profile


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", FAMILIES)
def test_family_fits_predicts_and_reloads(name, task, tmp_path):
    family = registered_families()[name]
    if task not in family.tasks:
        pytest.fail(f"built-in family {name} should serve {task}")
    model, frame, profile = _fit(family, task)
    unseen = frame.head(20).copy()
    unseen["city"] = "a city never seen"
    unseen.loc[:5, "x2"] = np.nan
    scores = predict_scores(model, unseen, profile)
    if task == "regression":
        assert scores.shape == (20,) and np.isfinite(scores).all()
    else:
        assert scores.shape == (20, profile.n_classes)
        assert np.allclose(scores.sum(axis=1), 1.0)
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    reloaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    np.testing.assert_allclose(predict_scores(reloaded, unseen, profile), scores)


@pytest.mark.parametrize("name", FAMILIES)
def test_starting_points_replay_to_the_same_parameters(name):
    family = registered_families()[name]
    X, y = _task_data("binary")
    _, _, profile = profile_data(X, y)
    for point in family.starting_points(profile):
        stored = {"family": name, **{f"{name}.{k}": v for k, v in point.items()}}
        replayed = family_params(stored, family, profile)
        study = optuna.create_study()
        study.enqueue_trial(stored)
        trial = study.ask()
        sampled = family.suggest(Space(trial, name), profile)
        assert sampled == replayed
        assert set(trial.params) == set(stored) - {"family"}


@pytest.mark.parametrize("name", FAMILIES)
def test_grid_space_is_finite(name):
    family = registered_families()[name]
    X, y = _task_data("regression")
    _, _, profile = profile_data(X, y)
    study = optuna.create_study(sampler=optuna.samplers.BruteForceSampler(seed=0))
    trial = study.ask()
    family.suggest(Space(trial, name, grid=True), profile)
    kinds = {type(d).__name__ for d in trial.distributions.values()}
    assert kinds <= {"CategoricalDistribution"}


@pytest.mark.parametrize("name", ["hgb", "svm", "linear", "rf", "et"])
def test_class_weighting_is_tuned_on_imbalanced_classes(name):
    X, _ = make_mixed(n=200)
    balanced = np.arange(200) % 2
    skewed = (np.arange(200) % 10 == 0).astype(int)  # one positive in ten
    family = registered_families()[name]
    for y, expect in [(skewed, True), (balanced, name in {"linear", "rf", "et"})]:
        profile = profile_data(X, y)[2]
        trial = optuna.create_study().ask()
        params = family.suggest(Space(trial, family.name), profile)
        assert ("class_weight" in params) is expect
        assert profile.is_imbalanced is (y is skewed)
        # starting points name every parameter, so the first trials are fully fixed
        for point in family.starting_points(profile):
            assert {f"{name}.{k}" for k in point} >= set(trial.params) - {f"{name}.model"}


def test_portfolio_points_are_clipped_into_a_small_datasets_space():
    family = registered_families()["hgb"]
    X, y = make_mixed(n=60)
    profile = profile_data(X, y)[2]
    proven = {"max_leaf_nodes": 200, "min_samples_leaf": 150, "learning_rate": 5.0}
    point = family.fit_point(proven, profile)
    study = optuna.create_study()
    study.enqueue_trial({f"hgb.{k}": v for k, v in point.items()})
    trial = study.ask()
    family.suggest(Space(trial, "hgb"), profile)
    for key, value in point.items():  # every value lies in this data's ranges
        distribution = trial.distributions[f"hgb.{key}"]
        assert distribution._contains(distribution.to_internal_repr(value))
    assert point["max_leaf_nodes"] == 15 and point["learning_rate"] == 0.3
    assert set(point) == {k.removeprefix("hgb.") for k in trial.params}


def test_the_portfolio_follows_the_size_of_the_data():
    small = profile_data(*make_mixed(n=300))[2]
    large = profile_data(*make_mixed(n=SMALL_ROWS + 1))[2]
    assert portfolio("hgb", small) == PORTFOLIO["hgb"]["small"]
    assert portfolio("hgb", large) == PORTFOLIO["hgb"]["large"] != PORTFOLIO["hgb"]["small"]


def test_hgb_tunes_how_categoricals_of_many_levels_are_split():
    family = registered_families()["hgb"]
    X, y = make_mixed(n=300)  # "colour" has 4 levels, "city" 30
    profile = profile_data(X, y)[2]
    point = family.starting_points(profile)[0]
    assert point[CATEGORY_SPLITS] == "ordinal"  # what the portfolio opens with

    def categorical_columns(choice: str) -> list[str]:
        model = make_pipeline_for(
            family.preprocessing,
            family.build({**point, CATEGORY_SPLITS: choice}, profile, 0),
            profile,
        ).fit(profile_data(X, y)[0], encode_target(profile_data(X, y)[1], profile))
        names = model.named_steps["prep"].get_feature_names_out()
        return [
            n.split("__")[-1] for n, c in zip(names, model[-1].is_categorical_, strict=True) if c
        ]

    assert categorical_columns("ordinal") == ["colour"]
    assert categorical_columns("native") == ["colour", "city"]
    few_levels = profile_data(X.drop(columns="city"), y)[2]
    assert CATEGORY_SPLITS not in family.starting_points(few_levels)[0]


def test_scaled_families_keep_each_rare_level_of_a_many_level_column():
    X, y = make_mixed(n=90)  # "city": 30 levels of about 3 rows each; "colour": 4 levels
    X["colour"] = X["colour"].cat.add_categories("mauve")
    X.loc[:2, "colour"] = "mauve"  # a rare level of a few-level column
    frame, _, profile = profile_data(X, y)
    prep = make_pipeline_for("scaled", "passthrough", profile)[:-1].fit(frame)
    names = list(prep.named_steps["prep"].get_feature_names_out())
    cities = frame["city"].value_counts()
    assert (cities < 5).any()  # the old encoding lumped these into one column
    assert sorted(n for n in names if n.startswith("levels__")) == sorted(
        f"levels__city_{c}" for c in cities.index[cities > 0]
    )
    assert "onehot__colour_mauve" not in names  # rare levels of few-level columns are lumped
    assert "onehot__colour_infrequent_sklearn" in names


@pytest.mark.parametrize("name", ["hgb", "lgbm"])
def test_boosting_fits_multiclass_data_with_columns_of_many_levels(name):
    # a column of over 250 levels is target-encoded: one output per class, after the others
    rng = np.random.default_rng(0)
    X, _ = make_mixed(n=900)
    X["member"] = pd.Categorical([f"m{i}" for i in rng.integers(0, 300, len(X))])
    y = pd.Series(rng.choice(["a", "b", "c"], len(X)))
    frame, target, profile = profile_data(X, y)
    family = registered_families()[name]
    for point in family.starting_points(profile)[:2]:
        params = {**point, **({CATEGORY_SPLITS: "native"} if name == "hgb" else {})}
        model = make_pipeline_for(
            family.preprocessing, family.build(params, profile, 0), profile
        ).fit(frame, encode_target(target, profile))
        names = model.named_steps["prep"].get_feature_names_out()
        assert sum(n.startswith("high__") for n in names) == 3
        assert predict_scores(model, frame.head(5), profile).shape == (5, 3)


def test_svm_multiclass_probabilities_beat_one_vs_rest_sigmoids():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_wine
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.svm import SVC

    X, y = load_wine(return_X_y=True, as_frame=True)
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    family = registered_families()["svm"]
    point = family.starting_points(profile)[0]
    ovr = CalibratedClassifierCV(SVC(**point, random_state=0), cv=3, ensemble=False)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    losses = [
        log_loss(
            codes,
            cross_val_predict(
                make_pipeline_for("scaled", model, profile),
                frame,
                codes,
                cv=folds,
                method="predict_proba",
            ),
        )
        for model in (family.build(point, profile, 0), ovr)
    ]
    assert losses[0] < losses[1]


def test_hgb_tunes_a_poisson_loss_on_non_negative_regression_targets():
    family = registered_families()["hgb"]
    X, _ = make_mixed(n=300)
    counts = pd.Series(np.random.default_rng(0).poisson(np.exp(X["x2"].fillna(5) / 5)))
    profile = profile_data(X, counts, task="regression")[2]
    points = family.starting_points(profile)
    assert [p["loss"] for p in points[:3]] == ["squared_error", "squared_error", "poisson"]
    frame, target, _ = profile_data(X, counts, task="regression")
    model = make_pipeline_for(
        family.preprocessing, family.build(points[2], profile, 0), profile
    ).fit(frame, encode_target(target, profile))
    assert model[-1].loss == "poisson" and (model.predict(frame) > 0).all()
    signed = profile_data(X, counts - 3, task="regression")[2]
    assert "loss" not in family.starting_points(signed)[0]


def test_hgb_refits_as_long_as_its_folds_stopped_early():
    family = registered_families()["hgb"]
    X, y = _task_data("regression")
    frame, target, profile = profile_data(X, y)
    params = family.starting_points(profile)[0]  # many iterations: it stops early

    def fitted(point: dict) -> object:
        model = make_pipeline_for(family.preprocessing, family.build(point, profile, 0), profile)
        return model.fit(frame, encode_target(target, profile))[-1]

    stopped = family.stopped_at(fitted(params))
    assert stopped is not None and stopped < params["max_iter"]
    refit = fitted(family.trained_for(params, stopped))
    assert refit.n_iter_ == stopped and family.stopped_at(refit) is None


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_hgb_stops_early_on_the_folds_own_validation_rows(task):
    family = registered_families()["hgb"]
    X, y = make_mixed(n=4 * VALIDATION_ROWS)
    if task == "regression":
        y = X["x2"].fillna(0) * 2 + np.random.default_rng(1).normal(size=len(X))
    frame, y_series, profile = profile_data(X, y)
    prep = make_pipeline_for(family.preprocessing, "passthrough", profile)[:-1]
    X_ready = np.asarray(prep.fit_transform(frame, y_series), dtype=float)
    target = encode_target(y_series, profile)
    train, valid = np.arange(len(target)) % 4 != 0, np.arange(len(target)) % 4 == 0
    params = family.starting_points(profile)[0]

    def fold_fit(rows: np.ndarray | None) -> object:
        model = family.build(params, profile, 0)
        y_valid = None if rows is None else target[rows]
        context = FitContext(
            X_valid=None if rows is None else X_ready[rows],
            y_valid=y_valid,
            n_classes=profile.n_classes,
        )
        return family.fit(model, X_ready[train], target[train], context)

    watched = family.build(params, profile, 0).fit(
        X_ready[train], target[train], X_val=X_ready[valid], y_val=target[valid]
    )
    own = family.build(params, profile, 0).fit(X_ready[train], target[train])
    assert fold_fit(valid).n_iter_ == watched.n_iter_ != own.n_iter_
    assert fold_fit(None).n_iter_ == own.n_iter_  # a refit has no validation rows
    too_few = np.flatnonzero(valid)[: VALIDATION_ROWS - 1]  # the stop would be luck
    assert fold_fit(too_few).n_iter_ == own.n_iter_


def _household_data(n: int = 8_000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Each of 1,000 households mostly buys its own brand: the id decides, its order not;
    the store (30 values) is noise."""
    rng = np.random.default_rng(seed)
    brand = rng.choice(["a", "b", "c"], 1_000)
    household = rng.integers(0, 1_000, n)
    loyal = rng.random(n) < 0.8
    y = np.where(loyal, brand[household], rng.choice(["a", "b", "c"], n))
    X = pd.DataFrame(
        {
            "household": household * 7 + 1000,
            "store": rng.integers(0, 30, n),
            "price": rng.normal(size=n),
        }
    )
    return X, pd.Series(y)


def _split_as_category(estimator, position: int) -> bool:
    if hasattr(estimator, "booster_"):
        booster = estimator.booster_
        info = booster.dump_model()["feature_infos"][booster.feature_name()[position]]
        return bool(info.get("values"))
    return bool(estimator.is_categorical_[position])


@pytest.mark.parametrize("name", ["hgb", "lgbm"])
def test_boosting_tunes_how_integer_codes_are_read(name):
    from sklearn.metrics import log_loss

    from autotune.families.hgb import CODES

    family = registered_families()[name]
    X, y = _household_data()
    frame, target, profile = profile_data(X.iloc[:6_000], y.iloc[:6_000])
    assert sorted(profile.codes) == ["household", "store"]
    readings = [p.get(CODES, "numeric") for p in family.starting_points(profile)]
    assert readings[0] == "numeric"  # the portfolio's pick opens as it was chosen
    assert {"numeric", "category", "target"} <= set(readings)
    new = X.iloc[6_000:].copy()
    new.iloc[:5, :2] = 5  # a household and a store never seen
    losses = {}
    for reading in ("numeric", "category", "target"):
        params = {**family.starting_points(profile)[1], CODES: reading}
        kind = family.preprocessing_for(params)
        model = make_pipeline_for(kind, family.build(params, profile, 0), profile)
        prep, estimator = model[:-1], model[-1]
        encoded = encode_target(target, profile)
        X_ready = prep.fit_transform(frame, encoded)
        family.fit(estimator, X_ready, encoded, FitContext(profile=profile, preprocessing=kind))
        names = list(prep.named_steps["prep"].get_feature_names_out())
        # one target-encoded column per class and code
        assert sum(n.startswith("codes__") for n in names) == (6 if reading == "target" else 0)
        # too many households for category splits: only the store is read as categories
        assert "num__household" in names
        assert ("coded__store" in names) == (reading == "category")
        if reading == "category":
            assert _split_as_category(estimator, names.index("coded__store"))
        scores = predict_scores(model, new, profile)
        assert np.isfinite(scores).all() and np.allclose(scores.sum(axis=1), 1.0)
        losses[reading] = log_loss(y.iloc[6_000:], scores, labels=list(profile.classes))
    # read as numbers, a thousand households fall into a few hundred bins; encoded, each
    # household's own brand shows
    assert losses["target"] < 0.8 * losses["numeric"]


def test_codes_of_more_values_than_native_splits_take_are_not_read_as_categories():
    from autotune.families._preprocess import NATIVE_MAX_LEVELS, code_readings

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"member": rng.integers(0, 2 * NATIVE_MAX_LEVELS, 3_000)})
    profile = profile_data(X, rng.normal(size=3_000))[2]
    assert profile.codes["member"] > NATIVE_MAX_LEVELS
    assert code_readings(profile) == ["numeric", "target"]  # categories would read as numbers
    X["age"] = rng.integers(18, 90, 3_000)
    assert code_readings(profile_data(X, rng.normal(size=3_000))[2]) == [
        "numeric",
        "category",
        "target",
    ]


@pytest.mark.parametrize("name", FAMILIES)
def test_a_column_missing_throughout_training_is_ignored(name):
    # scikit-learn's gradient boosting cannot bin a column with no value at all, which a
    # sparse column can be in the training part of a fold; every family must still fit
    X, y = _task_data("binary")
    X["sparse"] = np.nan
    frame, target, profile = profile_data(X, y)
    family = registered_families()[name]
    params = family.suggest(Space(optuna.create_study().ask(), family.name), profile)
    model = make_pipeline_for(family.preprocessing, family.build(params, profile, 0), profile)
    model.fit(frame, encode_target(target, profile))
    unseen = frame.head(20).assign(sparse=np.arange(20.0))
    np.testing.assert_allclose(
        predict_scores(model, unseen, profile), predict_scores(model, frame.head(20), profile)
    )
