"""Preprocessing that lives inside every model, so ``predict`` takes raw data.

A pipeline is ``SchemaAdapter → preprocessor → model``. The adapter gives each column the
dtype of its kind; the preprocessor imputes, encodes and scales as the family needs.
Unseen categories and missing values at predict time are handled by the encoders.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

from autotune.data import DataProfile, coerce_frame

__all__ = [
    "CODE_READINGS",
    "PREPROCESSINGS",
    "EmptyAsZero",
    "SchemaAdapter",
    "code_readings",
    "has_many_level_categoricals",
    "make_pipeline_for",
    "make_preprocessor",
    "native_categorical_columns",
    "native_kind",
    "split_kind",
]

PREPROCESSINGS = ("scaled", "trees", "native")
#: How the ``"native"`` preprocessing reads integer columns that may be codes (see
#: :func:`autotune.data.code_columns`): as numbers, as categories (those of at most
#: ``NATIVE_MAX_LEVELS`` values), or as numbers with target-encoded columns beside them.
#: With a fixed boosting configuration (3 seeds), categories took r_star_classk's test log
#: loss from 0.259 to 0.202 (the school id) and target encoding r_tuna_tuna.choice's from
#: 0.630 to 0.452 (the household id), while categories cost r_train_choice's roc_auc
#: 0.727 to 0.630: which reading fits is the data's, so it is tuned.
CODE_READINGS = ("numeric", "category", "target")
#: Categoricals with at most this many levels are one-hot encoded.
ONE_HOT_MAX_LEVELS = 10
#: Histogram gradient boosting handles at most this many categories natively.
NATIVE_MAX_LEVELS = 250


class SchemaAdapter(TransformerMixin, BaseEstimator):
    """Selects the tuned columns and gives each the dtype of its kind.

    Args:
        kinds: Column name → kind, from the data profile.
    """

    def __init__(self, kinds: dict[str, str] | None = None) -> None:
        self.kinds = kinds

    def fit(self, X: Any, y: Any = None) -> SchemaAdapter:
        self.n_features_in_ = len(self.kinds or {})
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        frame = (
            X
            if isinstance(X, pd.DataFrame)
            else pd.DataFrame(np.asarray(X), columns=list(self.kinds or {}))
        )
        return coerce_frame(frame, self.kinds or {})


class EmptyAsZero(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Numeric columns with no value at fit time become zeros; the others pass unchanged.

    A model learns nothing from a column it never saw a value of, so such a column must
    not move its predictions when values turn up later. scikit-learn's
    ``HistGradientBoosting*`` also fails to bin a column that is entirely missing ("window
    shape cannot be larger than input array shape"), which a sparse column can be in the
    training part of one fold; a constant column it simply leaves unused.
    """

    def fit(self, X: Any, y: Any = None) -> EmptyAsZero:
        values = np.asarray(X, dtype=float)
        self.n_features_in_ = values.shape[1]
        self.empty_ = np.isnan(values).all(axis=0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        values = np.array(X, dtype=float)
        values[:, self.empty_] = 0.0
        return values


def _split_categoricals(profile: DataProfile) -> tuple[list[str], list[str], list[str]]:
    """Categorical columns as (one-hot sized, native sized, high cardinality)."""
    low, mid, high = [], [], []
    for col in profile.columns_of("categorical", "text"):
        levels = profile.cardinality.get(col, 0)
        if levels <= ONE_HOT_MAX_LEVELS:
            low.append(col)
        elif levels <= NATIVE_MAX_LEVELS:
            mid.append(col)
        else:
            high.append(col)
    return low, mid, high


def _numeric(profile: DataProfile) -> list[str]:
    return profile.columns_of("numeric", "boolean", "datetime")


def native_kind(codes: str) -> str:
    """The ``"native"`` preprocessing's name with one of :data:`CODE_READINGS`."""
    if codes not in CODE_READINGS:
        raise ValueError(f"unknown reading of codes {codes!r}; choose one of {CODE_READINGS}")
    return "native" if codes == "numeric" else f"native+{codes}"


def code_readings(profile: DataProfile) -> list[str]:
    """The readings of :data:`CODE_READINGS` that differ on this data: none without codes,
    and no categories where every code has more values than native splits take."""
    if not profile.codes:
        return []
    fits = any(n <= NATIVE_MAX_LEVELS for n in profile.codes.values())
    return [codes for codes in CODE_READINGS if codes != "category" or fits]


def split_kind(kind: str) -> tuple[str, str]:
    """A preprocessing's name as (its base in :data:`PREPROCESSINGS`, its reading of codes)."""
    base, _, codes = kind.partition("+")
    return base, codes or "numeric"


def _code_split(profile: DataProfile, codes: str) -> tuple[list[str], list[str], list[str]]:
    """The numeric columns as (numbers, codes read as categories, codes target-encoded)."""
    numeric = _numeric(profile)
    if codes == "category":
        categories = [c for c in numeric if 0 < profile.codes.get(c, 0) <= NATIVE_MAX_LEVELS]
        return [c for c in numeric if c not in categories], categories, []
    if codes == "target":
        return numeric, [], [c for c in numeric if c in profile.codes]
    return numeric, [], []


def _one_hot(min_frequency: int = 5) -> OneHotEncoder:
    return OneHotEncoder(
        handle_unknown="infrequent_if_exist", min_frequency=min_frequency, sparse_output=False
    )


def _ordinal(missing: float | int) -> OrdinalEncoder:
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=missing,
        encoded_missing_value=missing,
    )


def _target_encoder(profile: DataProfile, seed: int) -> TargetEncoder:
    """Encodes each level by the target's mean there, shrunk toward the overall mean; its
    ``fit_transform`` encodes each row by the levels' means on the other folds' rows."""
    target_type = {"binary": "binary", "multiclass": "multiclass"}.get(profile.task, "continuous")
    folds = StratifiedKFold if profile.is_classification else KFold
    return TargetEncoder(target_type=target_type, cv=folds(5, shuffle=True, random_state=seed))


def make_preprocessor(kind: str, profile: DataProfile, seed: int = 0) -> ColumnTransformer:
    """The preprocessing step for one of :data:`PREPROCESSINGS`, or for ``"native"`` with
    a reading of codes (:func:`native_kind`)."""
    numeric = _numeric(profile)
    low, mid, high = _split_categoricals(profile)
    steps: list[tuple[str, Any, list[str]]] = []
    kind, codes = split_kind(kind)
    if codes not in CODE_READINGS or (codes != "numeric" and kind != "native"):
        raise ValueError(f"unknown preprocessing {kind}+{codes}; only 'native' reads codes")
    if kind == "native":
        numbers, categories, encoded = _code_split(profile, codes)
        if numbers:
            steps.append(("num", EmptyAsZero(), numbers))
        if categories:
            steps.append(("coded", _ordinal(np.nan), categories))
        if low + mid:
            steps.append(("cat", _ordinal(np.nan), low + mid))
        if high:
            steps.append(("high", _target_encoder(profile, seed), high))
        if encoded:
            steps.append(("codes", _target_encoder(profile, seed), encoded))
    elif kind == "trees":
        if numeric:
            steps.append(
                (
                    "num",
                    make_pipeline(EmptyAsZero(), SimpleImputer(strategy="median")),
                    numeric,
                )
            )
        if low:
            steps.append(("onehot", _one_hot(), low))
        if mid + high:
            steps.append(("ord", _ordinal(-1), mid + high))
    elif kind == "scaled":
        if numeric:
            steps.append(
                (
                    "num",
                    make_pipeline(
                        EmptyAsZero(),
                        SimpleImputer(strategy="median", add_indicator=True),
                        StandardScaler(),
                    ),
                    numeric,
                )
            )
        if low:
            steps.append(("onehot", _one_hot(), low))
        if mid:
            # Every level of a many-level column keeps its own indicator: the scaled
            # families' regularisation shrinks a rare level's weight, where lumping it
            # into "infrequent" loses it (galton's 205 families of 4-5 rows each).
            steps.append(("levels", _one_hot(min_frequency=1), mid))
        if high:
            steps.append(
                ("high", make_pipeline(_target_encoder(profile, seed), StandardScaler()), high)
            )
    else:
        raise ValueError(f"unknown preprocessing {kind!r}; choose one of {PREPROCESSINGS}")
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)


def has_many_level_categoricals(profile: DataProfile) -> bool:
    """Whether some categorical column has more levels than one-hot encoding takes."""
    return bool(_split_categoricals(profile)[1])


def native_categorical_columns(
    profile: DataProfile, many_levels: bool = True, codes: str = "numeric"
) -> list[int] | None:
    """Positions in the ``"native"`` output of the columns split as categories, or None.

    With ``many_levels=False`` only columns of at most ``ONE_HOT_MAX_LEVELS`` levels are
    split as categories; the others are split as their ordinal codes. A categorical split
    may group any subset of levels, so on a column of dozens of levels it fits noise: on
    the benchmark's mixed tasks, whose 40-level column carries no signal, native splits
    on it cost 7 % log loss against ordinal codes (multiclass_mixed). The target-encoded
    columns of more levels come after these, one per class on multiclass data, so
    positions, not a mask of every column, say which are categories. Codes read as
    categories (``codes="category"``) come first among the categories.
    """
    low, mid, _ = _split_categoricals(profile)
    numbers, categories, _ = _code_split(profile, codes)
    native = categories + (low + mid if many_levels else low)
    if not native:
        return None
    first = len(numbers)  # the numeric columns come first
    return list(range(first, first + len(native)))


def make_pipeline_for(
    preprocessing: str, model: BaseEstimator, profile: DataProfile, seed: int = 0
) -> Pipeline:
    """The full model a user gets: schema adapter, preprocessor and estimator."""
    return Pipeline(
        [
            ("schema", SchemaAdapter(dict(profile.schema))),
            ("prep", make_preprocessor(preprocessing, profile, seed)),
            ("model", model),
        ]
    )
