"""One model fit and its prediction: the step shared by folds, early looks and refits."""

from __future__ import annotations

import contextlib
import time
import warnings
from typing import Any

import numpy as np
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from autotune.data import DataProfile
from autotune.families import FitContext, ModelFamily

__all__ = ["SERIAL_ROWS", "fit_predict", "fit_threads", "predict_scores"]

#: Up to this many rows, models fit and predict on one thread (OpenMP and BLAS).
SERIAL_ROWS = 10_000


def fit_threads(profile: DataProfile) -> contextlib.AbstractContextManager[Any]:
    """One thread on small data: there, starting and synchronising threads costs more than
    it saves, and spinning OpenMP threads slow a fit tenfold when other processes share
    the cores."""
    if profile.n_rows <= SERIAL_ROWS:
        return threadpool_limits(1)
    return contextlib.nullcontext()


def predict_scores(model: Any, X: Any, profile: DataProfile) -> np.ndarray:
    """Class probabilities aligned to all classes, or regression values."""
    if profile.task == "regression":
        return np.asarray(model.predict(X), dtype=float).ravel()
    proba = np.asarray(model.predict_proba(X), dtype=float)
    seen = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])), dtype=int)
    if proba.shape[1] == profile.n_classes and np.array_equal(seen, np.arange(len(seen))):
        return proba
    full = np.zeros((proba.shape[0], profile.n_classes))
    full[:, seen] = proba
    return full


def fit_predict(
    family: ModelFamily,
    params: dict[str, Any],
    profile: DataProfile,
    seed: int,
    X_train: np.ndarray,
    y_train: np.ndarray,
    context: FitContext,
) -> tuple[Any, np.ndarray, float]:
    """Fit a fresh model of the configuration; return it, its prediction of
    ``context.X_valid`` and the seconds both took. Runs in the tuning process or in a
    fold worker (``FoldPool``), so it takes everything it needs as arguments."""
    started = time.monotonic()
    model = clone(family.build(params, profile, seed))
    with warnings.catch_warnings(), fit_threads(profile):
        warnings.simplefilter("ignore")
        family.fit(model, X_train, y_train, context)
        prediction = predict_scores(model, context.X_valid, profile)
    return model, prediction, time.monotonic() - started
