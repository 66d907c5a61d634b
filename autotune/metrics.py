"""Metric names → scoring functions and directions, with defaults per task.

A metric scores one set of out-of-fold predictions. Classifiers always predict class
probabilities (columns in the order of the profile's classes, targets as class indices),
so the primary and secondary metrics are all computed from one prediction per fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

from autotune.exceptions import ConfigError

__all__ = [
    "DEFAULT_METRICS",
    "Metric",
    "get_metric",
    "implied_task",
    "metric_names",
    "secondary_metrics",
]

Needs = Literal["proba", "label", "value"]
_EPS = 1e-15


@dataclass(frozen=True)
class Metric:
    """A named score with its direction.

    Args:
        name: Shown in the leaderboard and stored with the study.
        func: ``func(y_true, y_pred) -> float``. For ``needs="proba"`` the prediction is the
            probability matrix; for ``needs="label"`` it is the predicted labels.
        greater_is_better: Decides whether the study maximizes or minimizes.
        needs: ``"proba"`` and ``"label"`` for classification, ``"value"`` for regression.
        tasks: The tasks the metric makes sense for.
        on_codes: Built-in metrics see class indices; user metrics see the original labels.

    Example:
        >>> from sklearn.metrics import f1_score
        >>> Metric("f1_macro", lambda y, p: f1_score(y, p, average="macro"), True, "label")
        ... # doctest: +ELLIPSIS
        Metric(name='f1_macro', ...)
    """

    name: str
    func: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    needs: Needs
    tasks: tuple[str, ...] = ("binary", "multiclass", "regression")
    on_codes: bool = False

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"

    def score(self, y_true: np.ndarray, prediction: np.ndarray, classes: np.ndarray) -> float:
        """Score a prediction: a probability matrix for classifiers, values for regressors."""
        if self.needs == "value":
            return float(self.func(y_true, prediction))
        if self.needs == "proba":
            if self.on_codes:
                return float(self.func(y_true, prediction))
            proba = prediction[:, 1] if prediction.shape[1] == 2 else prediction
            return float(self.func(classes[y_true], proba))
        codes = np.argmax(prediction, axis=1)
        if self.on_codes:
            return float(self.func(y_true, codes))
        return float(self.func(classes[y_true], classes[codes]))

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` beats score ``b``."""
        return a > b if self.greater_is_better else a < b


def _clip(proba: np.ndarray) -> np.ndarray:
    proba = np.clip(proba, _EPS, 1 - _EPS)
    return proba / proba.sum(axis=1, keepdims=True)


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic of average ranks: the value scikit-learn's
    ``roc_auc_score`` gives, ties included, at a fraction of its cost, which counts in the
    ensemble selection's hundreds of scorings (1.6 s of a 60 s budget on 426 rows)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return skm.roc_auc_score(positive, score)  # undefined: its warning says why
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    if proba.shape[1] == 2:
        return _binary_auc(np.asarray(y) == 1, proba[:, 1])
    present = np.unique(y)
    if len(present) < proba.shape[1]:
        # a fold lacking some classes: score the classes that are there
        sub = proba[:, present]
        sub = sub / np.clip(sub.sum(axis=1, keepdims=True), _EPS, None)
        if len(present) == 2:
            return _binary_auc(y == present[1], sub[:, 1])
        return skm.roc_auc_score(np.searchsorted(present, y), sub, multi_class="ovr")
    return skm.roc_auc_score(y, proba, multi_class="ovr")


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    return skm.log_loss(y, _clip(proba), labels=np.arange(proba.shape[1]))


def _f1(y: np.ndarray, labels: np.ndarray) -> float:
    binary = max(int(y.max()), int(labels.max())) <= 1
    return skm.f1_score(y, labels, average="binary" if binary else "macro", zero_division=0)


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(skm.mean_squared_error(y, p)))


_CLS = ("binary", "multiclass")
_REG = ("regression",)

_BUILTIN: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("roc_auc", _roc_auc, True, "proba", _CLS, on_codes=True),
        Metric("log_loss", _log_loss, False, "proba", _CLS, on_codes=True),
        Metric("accuracy", skm.accuracy_score, True, "label", _CLS, on_codes=True),
        Metric("balanced_accuracy", skm.balanced_accuracy_score, True, "label", _CLS, True),
        Metric("f1", _f1, True, "label", _CLS, on_codes=True),
        Metric(
            "f1_macro",
            lambda y, p: skm.f1_score(y, p, average="macro", zero_division=0),
            True,
            "label",
            _CLS,
            on_codes=True,
        ),
        Metric(
            "f1_weighted",
            lambda y, p: skm.f1_score(y, p, average="weighted", zero_division=0),
            True,
            "label",
            _CLS,
            on_codes=True,
        ),
        Metric(
            "average_precision",
            lambda y, p: skm.average_precision_score(y, p[:, 1]),
            True,
            "proba",
            ("binary",),
            on_codes=True,
        ),
        Metric("rmse", _rmse, False, "value", _REG),
        Metric("mse", skm.mean_squared_error, False, "value", _REG),
        Metric("mae", skm.mean_absolute_error, False, "value", _REG),
        Metric("median_ae", skm.median_absolute_error, False, "value", _REG),
        Metric("mape", skm.mean_absolute_percentage_error, False, "value", _REG),
        Metric("r2", skm.r2_score, True, "value", _REG),
    ]
}

_ALIASES = {
    "auc": "roc_auc",
    "roc_auc_ovr": "roc_auc",
    "neg_log_loss": "log_loss",
    "logloss": "log_loss",
    "cross_entropy": "log_loss",
    "acc": "accuracy",
    "neg_root_mean_squared_error": "rmse",
    "root_mean_squared_error": "rmse",
    "neg_mean_squared_error": "mse",
    "mean_squared_error": "mse",
    "neg_mean_absolute_error": "mae",
    "mean_absolute_error": "mae",
    "neg_median_absolute_error": "median_ae",
    "neg_mean_absolute_percentage_error": "mape",
    "mean_absolute_percentage_error": "mape",
}

DEFAULT_METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}

_SECONDARY = {
    "binary": ("accuracy", "log_loss", "f1", "roc_auc"),
    "multiclass": ("accuracy", "balanced_accuracy", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}


def metric_names(task: str | None = None) -> list[str]:
    """The built-in metric names, optionally only those that fit a task."""
    return [n for n, m in _BUILTIN.items() if task is None or task in m.tasks]


def _from_callable(func: Callable[..., Any], task: str) -> Metric:
    score_func = getattr(func, "_score_func", None)
    if score_func is not None:  # a scikit-learn scorer from make_scorer
        kwargs = dict(getattr(func, "_kwargs", {}))
        response = getattr(func, "_response_method", "predict")
        wants_proba = "predict" not in np.atleast_1d(response)
        return Metric(
            name=getattr(score_func, "__name__", "custom"),
            func=lambda y, p: score_func(y, p, **kwargs),
            greater_is_better=getattr(func, "_sign", 1) > 0,
            needs="proba" if wants_proba else ("value" if task == "regression" else "label"),
        )
    name = getattr(func, "__name__", "custom")
    lower_is_better = name.endswith(("_error", "_loss", "_deviance")) or name in ("rmse", "mae")
    return Metric(
        name=name,
        func=func,
        greater_is_better=not lower_is_better,
        needs="value" if task == "regression" else "label",
    )


def get_metric(metric: str | Metric | Callable[..., Any], task: str) -> Metric:
    """Resolve ``metric=`` for a task.

    A string names a built-in metric or a scikit-learn scorer name (``neg_…`` names are
    accepted and reported as the positive loss). A callable ``f(y_true, y_pred)`` is
    treated as greater-is-better unless its name ends in ``_error`` or ``_loss``; pass a
    :class:`Metric` to say so explicitly.

    Raises:
        ConfigError: the metric is unknown or does not fit the task.
    """
    if isinstance(metric, Metric):
        resolved = metric
    elif callable(metric):
        resolved = _from_callable(metric, task)
    elif isinstance(metric, str):
        name = DEFAULT_METRICS[task] if metric == "auto" else _ALIASES.get(metric, metric)
        if name not in _BUILTIN:
            raise ConfigError(
                f"Unknown metric {metric!r}; for a {task} task choose one of "
                f"{metric_names(task)}, or pass a callable f(y_true, y_pred)."
            )
        resolved = _BUILTIN[name]
    else:
        raise ConfigError(f"metric must be a name or a callable; got {type(metric).__name__}.")
    if task not in resolved.tasks:
        raise ConfigError(
            f"Metric {resolved.name!r} does not fit a {task} task; choose one of "
            f"{metric_names(task)}."
        )
    return resolved


def implied_task(metric: str | Metric | Callable[..., Any]) -> tuple[str, str] | None:
    """The kind of task a metric settles (``"regression"`` or ``"classification"``) and why.

    An integer target of a few values is a set of classes by default; ``metric="rmse"``
    says it is a score to regress. ``None`` for metrics of both kinds and callables.
    """
    if isinstance(metric, str):
        resolved = _BUILTIN.get(_ALIASES.get(metric, metric))
    else:
        resolved = metric if isinstance(metric, Metric) else None
    tasks = set(resolved.tasks) if resolved is not None else set()
    if tasks == {"regression"}:
        kind = "regression"
    elif tasks and tasks <= {"binary", "multiclass"}:
        kind = "classification"
    else:
        return None
    return kind, f"metric {resolved.name!r} is a {kind} metric"


def secondary_metrics(task: str, primary: Metric) -> list[Metric]:
    """Two or three common metrics shown beside the primary one in the leaderboard."""
    names = [n for n in _SECONDARY[task] if n != primary.name][:3]
    return [_BUILTIN[n] for n in names]
