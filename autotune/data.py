"""Validate and profile X and y: task, column kinds, missing values and a fingerprint.

Everything downstream (families, engine, store) works from a :class:`DataProfile`, so
bad input is rejected here, once, with a message that says how to fix it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from autotune.exceptions import ConfigError, DataError, DataTypeError

__all__ = [
    "TASKS",
    "DataProfile",
    "code_columns",
    "coerce_frame",
    "profile_data",
    "to_frame",
    "to_target",
]

Task = Literal["binary", "multiclass", "regression"]
ColumnKind = Literal["numeric", "categorical", "boolean", "datetime", "text"]
TASKS: tuple[str, ...] = ("auto", "binary", "multiclass", "regression", "classification")

#: An integer or integral-float target with at most this many distinct values is a class label.
MAX_CLASSES_FOR_NUMERIC_TARGET = 20
#: Strings longer than this on average, mostly with spaces and mostly distinct, are free text.
TEXT_MIN_MEAN_LENGTH = 30
#: A rarest class below this share of the commonest counts as imbalanced.
IMBALANCE_RATIO = 0.25
#: An integer column with more distinct values than an integer target read as classes,
#: each repeated on average, may be a code (a household, a school, a person) rather than a
#: quantity. Columns of fewer values (digits' pixel intensities, 0-16) read as scales.
CODE_MIN_LEVELS = MAX_CLASSES_FOR_NUMERIC_TARGET
#: At most this many columns are read as codes, those of the most values: each one that
#: is target-encoded adds a column per class.
MAX_CODES = 8


@dataclass(frozen=True)
class DataProfile:
    """What autotune learned about a dataset before tuning on it.

    It is stored with the study, so that a study explains itself and can be resumed or
    joined by a worker that re-reads the data from a file.
    """

    task: Task
    task_reason: str
    n_rows: int
    columns: tuple[str, ...]
    kinds: dict[str, ColumnKind]
    n_missing: dict[str, int]
    cardinality: dict[str, int]
    fingerprint: str
    target_name: str | None = None
    classes: tuple[Any, ...] = ()
    class_counts: dict[str, int] = field(default_factory=dict)
    target_min: float | None = None
    #: Integer columns that may be codes (see :func:`code_columns`) → their distinct values.
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def n_cols(self) -> int:
        return len(self.columns)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    def columns_of(self, *kinds: str) -> list[str]:
        """Column names of the given kinds, in their original order."""
        return [c for c in self.columns if self.kinds[c] in kinds]

    @property
    def categorical_share(self) -> float:
        n_cat = len(self.columns_of("categorical", "text"))
        return n_cat / max(self.n_cols, 1)

    @property
    def minority_share(self) -> float:
        """Share of the rarest class (1.0 for regression)."""
        if not self.class_counts:
            return 1.0
        return min(self.class_counts.values()) / self.n_rows

    @property
    def is_non_negative(self) -> bool:
        """Whether a regression target is never below zero (counts, amounts, durations):
        then a Poisson loss, whose predictions stay positive, becomes a tuned choice."""
        return self.target_min is not None and self.target_min >= 0

    @property
    def is_imbalanced(self) -> bool:
        """Whether the rarest class has under a quarter of the commonest class's rows: then
        class weighting becomes a tuned choice in the families that support it."""
        if not self.class_counts:
            return False
        counts = self.class_counts.values()
        return min(counts) < IMBALANCE_RATIO * max(counts)

    @property
    def schema(self) -> dict[str, str]:
        """Column name → kind, the part of the profile that predict-time data must match."""
        return {c: self.kinds[c] for c in self.columns}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["columns"] = list(self.columns)
        data["classes"] = [_jsonable(c) for c in self.classes]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataProfile:
        values = dict(data)
        values["columns"] = tuple(values["columns"])
        values["classes"] = tuple(values.get("classes", ()))
        return cls(**values)

    def summary(self) -> str:
        """One line a person can read: task, size and column kinds."""
        counts: dict[str, int] = {}
        for kind in self.kinds.values():
            counts[kind] = counts.get(kind, 0) + 1
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        missing = sum(self.n_missing.values())
        text = (
            f"{self.task} ({self.task_reason}); {self.n_rows} rows × {self.n_cols} columns: {kinds}"
        )
        if missing:
            text += f"; {missing} missing values"
        return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_frame(X: Any) -> pd.DataFrame:
    """Turn X into a DataFrame with unique string column names, or say why it cannot be.

    Raises:
        DataTypeError: X is not a DataFrame, array or list of rows.
        DataError: X is empty, not 2-D, has duplicate column names or infinite values.
    """
    if isinstance(X, pd.Series):
        raise DataError(
            "X is a pandas Series (one column); X must be 2-D. Use X.to_frame() for a single "
            "feature."
        )
    if isinstance(X, pd.DataFrame):
        frame = X
    elif isinstance(X, np.ndarray | list | tuple):
        array = np.asarray(X, dtype=object if _has_strings(X) else None)
        if array.ndim != 2:
            hint = " Use X.reshape(-1, 1) for a single feature." if array.ndim == 1 else ""
            raise DataError(f"X must be 2-D (rows × columns); got shape {array.shape}.{hint}")
        frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
        if array.dtype == object:
            frame = frame.infer_objects()
    else:
        raise DataTypeError(
            f"X must be a pandas DataFrame or a 2-D numpy array; got {type(X).__name__}."
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"X is empty (shape {frame.shape}); it needs at least one row and column.")
    names = [str(c) for c in frame.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(
            f"X has duplicate column names {duplicates}; rename them so each column is unique."
        )
    if list(frame.columns) != names:
        frame = frame.set_axis(names, axis=1)
    numeric = frame.select_dtypes(include="number")
    if numeric.shape[1]:
        values = numeric.to_numpy(dtype=float, na_value=np.nan)
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            bad = [
                c for c, n in zip(numeric.columns, np.isinf(values).sum(axis=0), strict=False) if n
            ]
            raise DataError(
                f"X has {n_inf} infinite value(s) in column(s) {bad[:10]}; replace them with "
                "NaN, e.g. X.replace([np.inf, -np.inf], np.nan), or with finite values."
            )
    return frame.reset_index(drop=True)


def _has_strings(X: Any) -> bool:
    if isinstance(X, np.ndarray):
        return X.dtype == object or X.dtype.kind in "US"
    return any(isinstance(v, str) for row in X[:50] for v in np.atleast_1d(row))


def to_target(y: Any, n_rows: int) -> pd.Series:
    """Turn y into a Series aligned with X's rows, or say why it cannot be.

    Raises:
        DataTypeError: y is not a Series, array or list.
        DataError: y has the wrong length, several columns, or missing values.
    """
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise DataError(
                f"y has {y.shape[1]} columns; autotune tunes one target. Pass a single column."
            )
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        series = y.reset_index(drop=True)
    elif isinstance(y, np.ndarray | list | tuple):
        array = np.asarray(y)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array.ravel()
        if array.ndim != 1:
            raise DataError(f"y must be 1-D; got shape {array.shape}.")
        series = pd.Series(array, name=None)
    else:
        raise DataTypeError(f"y must be a pandas Series or a 1-D array; got {type(y).__name__}.")
    if len(series) != n_rows:
        raise DataError(
            f"X has {n_rows} rows but y has {len(series)}; they must describe the same rows."
        )
    n_missing = int(series.isna().sum())
    if n_missing:
        raise DataError(
            f"y has {n_missing} missing value(s) out of {len(series)} rows; drop those rows "
            "from X and y (e.g. mask = y.notna(); X, y = X[mask], y[mask])."
        )
    return series


def _infer_task(
    y: pd.Series, task: str, implied: tuple[str, str] | None = None
) -> tuple[Task, str]:
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; choose one of {list(TASKS)}.")
    n_unique = int(y.nunique())
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if task == "regression":
        if not numeric:
            raise ConfigError(
                f"task='regression' needs a numeric target; y has dtype {y.dtype}. "
                "Use task='auto' or convert y to numbers."
            )
        return "regression", "task='regression' given"
    if task in ("binary", "multiclass", "classification"):
        kind: Task = "binary" if n_unique == 2 else "multiclass"
        if task == "binary" and n_unique != 2:
            raise ConfigError(f"task='binary' needs 2 classes; y has {n_unique}.")
        if task == "multiclass" and n_unique < 3:
            raise ConfigError(
                f"task='multiclass' needs at least 3 classes; y has {n_unique}. Use task='binary'."
            )
        return kind, f"task={task!r} given"
    integral = numeric and bool(np.all(np.mod(y.to_numpy(dtype=float), 1) == 0))
    classes: Task = "binary" if n_unique == 2 else "multiclass"
    # A metric settles what the values cannot: rmse on integer scores asks for regression,
    # log_loss on 30 integer codes for classification.
    if implied is not None and implied[0] == "regression" and numeric:
        return "regression", implied[1]
    if implied is not None and implied[0] == "classification" and (integral or not numeric):
        return classes, implied[1]
    if not numeric:
        return classes, f"{y.dtype} target with {n_unique} classes"
    if not integral:
        return "regression", "float target"
    if n_unique > MAX_CLASSES_FOR_NUMERIC_TARGET:
        return "regression", f"numeric target with {n_unique} distinct values"
    return classes, f"integer target with {n_unique} distinct values"


def code_columns(frame: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, int]:
    """Numeric columns of integers that repeat, with more than ``CODE_MIN_LEVELS`` values.

    Such a column may be an identifier whose order means nothing: on r_tuna_tuna.choice the
    household id (3,093 values on 13,705 rows) decides the brand a household buys, which
    splits on the id's order barely find. Whether a column is a code or a quantity (an
    age, a count) the data cannot tell, so the boosting families tune how to read them.
    """
    codes: dict[str, int] = {}
    for name, kind in kinds.items():
        if kind != "numeric":
            continue
        values = pd.to_numeric(frame[name], errors="coerce").dropna().to_numpy(dtype=float)
        if not len(values) or not np.array_equal(values, np.round(values)):
            continue
        n_levels = len(np.unique(values))
        if CODE_MIN_LEVELS < n_levels <= len(values) // 2:
            codes[name] = n_levels
    kept = sorted(codes, key=lambda name: -codes[name])[:MAX_CODES]
    return {name: n for name, n in codes.items() if name in kept}


def _column_kind(column: pd.Series) -> ColumnKind:
    if pd.api.types.is_bool_dtype(column):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime"
    if isinstance(column.dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    values = column.dropna()
    if len(values) and values.map(lambda v: isinstance(v, bool)).all():
        return "boolean"
    strings = values.astype(str)
    if (
        len(strings) >= 20
        and strings.str.len().mean() > TEXT_MIN_MEAN_LENGTH
        and strings.str.contains(" ").mean() > 0.5
        and strings.nunique() > 0.5 * len(strings)
    ):
        return "text"
    return "categorical"


def coerce_frame(X: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """Give each column the one dtype its kind is modelled with, whatever dtype it came in.

    Numeric and boolean columns become float, datetimes become seconds since the epoch,
    categorical and text columns become strings (missing stays missing). The same values
    read from a CSV file or from a typed DataFrame therefore come out identical.

    Raises:
        DataError: a column of the schema is missing from X.
    """
    missing = [c for c in kinds if c not in X.columns]
    if missing:
        raise DataError(
            f"X lacks column(s) {missing[:10]} that the model was tuned on; pass data with the "
            "same columns as the training data."
        )
    out: dict[str, Any] = {}
    for name, kind in kinds.items():
        column = X[name]
        if kind in ("numeric", "boolean"):
            if column.dtype == object or isinstance(column.dtype, pd.CategoricalDtype):
                column = pd.to_numeric(column.astype(object), errors="coerce")
            out[name] = column.astype("float64").to_numpy(na_value=np.nan)
        elif kind == "datetime":
            stamps = pd.to_datetime(column, errors="coerce")
            seconds = stamps.astype("int64").astype("float64") / 1e9
            out[name] = np.where(stamps.isna(), np.nan, seconds)
        else:
            values = column.astype(object)
            mask = values.isna()
            out[name] = values.astype(str).where(~mask, np.nan).to_numpy(dtype=object)
    return pd.DataFrame(out, index=X.index)


def _fingerprint(X: pd.DataFrame, y: pd.Series, kinds: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(list(kinds.items())).encode())
    coerced = coerce_frame(X, kinds)
    digest.update(pd.util.hash_pandas_object(coerced, index=False).to_numpy().tobytes())
    target = y.astype(str) if not pd.api.types.is_numeric_dtype(y) else y.astype("float64")
    digest.update(pd.util.hash_pandas_object(target, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def profile_data(
    X: Any, y: Any, task: str = "auto", implied: tuple[str, str] | None = None
) -> tuple[pd.DataFrame, pd.Series, DataProfile]:
    """Validate X and y and describe them.

    ``implied`` is the kind of task the chosen metric settles (``"regression"`` or
    ``"classification"``) and why; it decides the task where ``task="auto"`` and the target
    allows it.

    Returns:
        X as a DataFrame, y as a Series, and the :class:`DataProfile`.

    Raises:
        DataError, DataTypeError, ConfigError: the data or the task cannot be used; the
        message says how to fix it.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y, profile = profile_data(*load_iris(return_X_y=True))
        >>> profile.task, profile.n_rows
        ('multiclass', 150)
    """
    frame = to_frame(X)
    target = to_target(y, len(frame))
    task_name, reason = _infer_task(target, task, implied)
    kinds = {c: _column_kind(frame[c]) for c in frame.columns}
    n_missing = {c: int(n) for c, n in frame.isna().sum().items() if n}
    cardinality = {
        c: int(frame[c].nunique()) for c, k in kinds.items() if k in ("categorical", "text")
    }
    classes: tuple[Any, ...] = ()
    counts: dict[str, int] = {}
    if task_name != "regression":
        value_counts = target.value_counts()
        if len(value_counts) < 2:
            raise DataError(
                f"y has a single class ({value_counts.index[0]!r}); classification needs at "
                "least two."
            )
        rare = value_counts[value_counts < 2]
        if len(rare):
            raise DataError(
                f"class(es) {list(rare.index)[:10]} have only one row; each class needs at least "
                "2 rows for cross-validation. Drop or merge the rare classes."
            )
        classes = tuple(_jsonable(c) for c in sorted(value_counts.index, key=_sort_key))
        counts = {str(k): int(v) for k, v in value_counts.items()}
    elif target.nunique() < 2:
        raise DataError("y is constant; there is nothing to learn. Check the target column.")
    name = str(target.name) if target.name is not None else None
    profile = DataProfile(
        task=task_name,
        task_reason=reason,
        n_rows=len(frame),
        columns=tuple(frame.columns),
        kinds=kinds,
        n_missing=n_missing,
        cardinality=cardinality,
        fingerprint=_fingerprint(frame, target, kinds),
        target_name=name,
        classes=classes,
        class_counts=counts,
        target_min=float(target.min()) if task_name == "regression" else None,
        codes=code_columns(frame, kinds),
    )
    return frame, target, profile


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float | np.number):
        return (0, float(value))
    return (1, str(value))
