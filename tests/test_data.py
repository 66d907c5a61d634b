from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from autotune.data import DataProfile, coerce_frame, profile_data
from autotune.exceptions import AutotuneError, ConfigError, DataError, DataTypeError
from tests.conftest import make_mixed


@pytest.mark.parametrize(
    ("y", "task"),
    [
        (np.r_[np.zeros(50), np.ones(50)].astype(int), "binary"),
        (np.repeat(["a", "b", "c"], 30), "multiclass"),
        (np.repeat([True, False], 40), "binary"),
        (pd.Series(np.repeat(["x", "y", "z", "w"], 20), dtype="category"), "multiclass"),
        (np.linspace(0, 1, 100), "regression"),
        (np.arange(100), "regression"),
        (np.repeat([1.0, 2.0, 3.0], 30), "multiclass"),
    ],
)
def test_task_inference(y, task):
    X = np.random.default_rng(0).normal(size=(len(y), 3))
    _, _, profile = profile_data(X, y)
    assert profile.task == task


@pytest.mark.parametrize(
    ("y", "kind", "task", "settled"),
    [
        (np.tile(np.arange(11), 10), "regression", "regression", True),  # scores 0..10
        (np.tile(np.arange(30), 4), "classification", "multiclass", True),  # 30 codes
        (np.tile(["a", "b"], 50), "regression", "binary", False),  # labels cannot regress
        (np.linspace(0, 1, 100), "classification", "regression", False),  # nor floats be classes
    ],
)
def test_the_metric_settles_the_task_the_values_leave_open(y, kind, task, settled):
    X = np.random.default_rng(0).normal(size=(len(y), 3))
    profile = profile_data(X, y, implied=(kind, f"the metric is a {kind} metric"))[2]
    assert profile.task == task
    assert ("the metric" in profile.task_reason) == settled


def test_task_override_and_bad_overrides():
    X = np.random.default_rng(0).normal(size=(60, 2))
    y = np.tile([0, 1, 2], 20)
    assert profile_data(X, y, task="regression")[2].task == "regression"
    with pytest.raises(ConfigError, match="binary"):
        profile_data(X, y, task="binary")
    with pytest.raises(ConfigError, match="numeric target"):
        profile_data(X, np.tile(["a", "b"], 30), task="regression")
    with pytest.raises(ConfigError, match="Unknown task"):
        profile_data(X, y, task="ranking")


def test_column_kinds_missing_and_balance():
    X, y = make_mixed()
    X = X.assign(
        note=[f"a long free text comment number {i} about the item" for i in range(len(X))]
    )
    _, _, profile = profile_data(X, y)
    assert profile.kinds == {
        "x1": "numeric",
        "x2": "numeric",
        "colour": "categorical",
        "city": "categorical",
        "flag": "boolean",
        "when": "datetime",
        "note": "text",
    }
    assert profile.n_missing["x1"] > 0 and "x2" not in profile.n_missing
    assert profile.cardinality["city"] == 30
    assert sum(profile.class_counts.values()) == len(y)
    assert profile.classes == ("no", "yes")
    assert 0 < profile.minority_share <= 0.5


def test_fingerprint_depends_on_content_and_names():
    X, y = make_mixed()
    base = profile_data(X, y)[2].fingerprint
    assert profile_data(X.copy(), y.copy())[2].fingerprint == base
    changed = X.copy()
    changed.loc[0, "x2"] = changed.loc[0, "x2"] + 1
    assert profile_data(changed, y)[2].fingerprint != base
    assert profile_data(X.rename(columns={"x2": "z"}), y)[2].fingerprint != base
    assert profile_data(X, y.iloc[::-1].reset_index(drop=True))[2].fingerprint != base


def test_fingerprint_survives_a_csv_round_trip(tmp_path):
    X, y = make_mixed()
    X = X.drop(columns=["when", "flag"])
    path = tmp_path / "d.csv"
    X.assign(buy=y).to_csv(path, index=False)
    back = pd.read_csv(path)
    assert profile_data(back.drop(columns="buy"), back["buy"])[2].fingerprint == (
        profile_data(X, y)[2].fingerprint
    )


def test_profile_round_trips_through_dict():
    X, y = make_mixed()
    profile = profile_data(X, y)[2]
    assert DataProfile.from_dict(profile.to_dict()) == profile


def test_coerce_handles_unseen_dtypes():
    X, y = make_mixed()
    profile = profile_data(X, y)[2]
    as_object = X.astype({"colour": object, "city": object})
    a = coerce_frame(X, profile.schema)
    b = coerce_frame(as_object, profile.schema)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(DataError, match="lacks column"):
        coerce_frame(X.drop(columns="x1"), profile.schema)


X_OK = np.random.default_rng(0).normal(size=(20, 2))
Y_OK = np.tile([0, 1], 10)


@pytest.mark.parametrize(
    ("X", "y", "error", "words"),
    [
        (X_OK, Y_OK[:-1], DataError, "19"),
        (np.empty((0, 3)), np.array([]), DataError, "empty"),
        (X_OK, np.r_[np.zeros(19), 1], DataError, "only one row"),
        (X_OK, np.zeros(20), DataError, "single class"),
        (X_OK, np.r_[np.full(3, np.nan), np.tile([0.0, 1.0], 8), 1.0], DataError, "3 missing"),
        (np.r_[X_OK[:-1], [[np.inf, 0]]], Y_OK, DataError, "infinite"),
        (np.zeros(20), Y_OK, DataError, "2-D"),
        (np.zeros((20, 2, 2)), Y_OK, DataError, "2-D"),
        (pd.DataFrame(X_OK, columns=["a", "a"]), Y_OK, DataError, "duplicate"),
        ("not data", Y_OK, DataTypeError, "DataFrame"),
        (X_OK, {"a": 1}, DataTypeError, "Series"),
        (X_OK, np.zeros((20, 2)), DataError, "1-D"),
    ],
)
def test_bad_input_is_a_clear_error(X, y, error, words):
    with pytest.raises(error, match=words) as info:
        profile_data(X, y)
    assert isinstance(info.value, AutotuneError)
    assert isinstance(info.value, ValueError | TypeError)


def test_integer_columns_whose_values_repeat_may_be_codes():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "household": rng.integers(0, 60, n),  # 60 values, each on about 7 rows
            "row_id": np.arange(n),  # every value once: nothing to learn per value
            "age": rng.integers(18, 30, n),  # 12 values: a scale, as digits' pixels
            "income": rng.normal(size=n),  # not integers
            "score": rng.integers(0, 100, n).astype(float),  # integral floats with gaps
            "member": pd.Categorical(rng.integers(0, 60, n)),  # a category already
        }
    )
    X.loc[:5, "score"] = np.nan
    profile = profile_data(X, rng.integers(0, 2, n))[2]
    assert profile.codes == {
        "household": X["household"].nunique(),
        "score": X["score"].nunique(),
    }
    assert DataProfile.from_dict(profile.to_dict()).codes == profile.codes
    older = {k: v for k, v in profile.to_dict().items() if k != "codes"}
    assert DataProfile.from_dict(older).codes == {}  # a study stored before codes were read


def test_only_the_codes_of_the_most_values_are_kept():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({f"c{k}": rng.integers(0, 30 + 5 * k, 600) for k in range(12)})
    codes = profile_data(X, rng.normal(size=600))[2].codes
    assert sorted(codes) == sorted(f"c{k}" for k in range(4, 12))  # the 8 of most values
