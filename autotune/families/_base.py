"""The extension point every model family implements."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import optuna
from sklearn.base import BaseEstimator

from autotune.data import DataProfile
from autotune.families._in_time import fit_in_time
from autotune.families._space import Space

__all__ = ["FitContext", "ModelFamily"]


class _PointTrial:
    """Answers a family's ``suggest`` with a given point's values, clipped to each range."""

    def __init__(self, point: Mapping[str, Any], prefix: str) -> None:
        self.point = point
        self.prefix = prefix
        self.params: dict[str, Any] = {}

    def _answer(self, key: str, value: Any) -> Any:
        self.params[key.removeprefix(self.prefix)] = value
        return value

    def suggest_float(self, key: str, low: float, high: float, *, log: bool = False) -> float:
        value = self.point.get(key.removeprefix(self.prefix), low)
        return self._answer(key, float(min(max(value, low), high)))

    def suggest_int(self, key: str, low: int, high: int, *, log: bool = False) -> int:
        value = self.point.get(key.removeprefix(self.prefix), low)
        return self._answer(key, int(min(max(round(value), low), high)))

    def suggest_categorical(self, key: str, choices: Sequence[Any]) -> Any:
        value = self.point.get(key.removeprefix(self.prefix), choices[0])
        return self._answer(key, value if value in choices else choices[0])


@dataclass
class FitContext:
    """What a family's ``fit`` may use while a trial trains.

    Attributes:
        X_valid, y_valid: The trial's validation data (preprocessed; classes as indices).
        score: Scores a prediction on ``X_valid`` in the study's metric.
        trial: The Optuna trial, or None for the final fit.
        deadline: ``time.monotonic()`` by which training must stop, or None.
        seed: The run's seed.
        n_classes: The number of classes (0 for regression), even if a split misses some.
        profile: The data's profile, for a family whose ``fit`` is told which columns
            are categorical.
        behind: Given an intermediate score and its step, whether the trial is too far
            behind the best to go on (a network's epochs); None to judge only by the pruner.
        preprocessing: The preprocessing the input went through (see
            :meth:`ModelFamily.preprocessing_for`), which says where its categories are.
    """

    X_valid: Any = None
    y_valid: np.ndarray | None = None
    score: Callable[[np.ndarray], float] | None = None
    trial: optuna.Trial | None = None
    deadline: float | None = None
    seed: int = 0
    n_classes: int = 0
    profile: DataProfile | None = None
    behind: Callable[[float, int], bool] | None = None
    preprocessing: str | None = None

    def report(self, value: float, step: int) -> None:
        """Report an intermediate score; raises ``optuna.TrialPruned`` when it is poor."""
        if self.trial is None:
            return
        self.trial.report(value, step)
        if self.behind is not None and self.behind(value, step):
            raise optuna.TrialPruned(f"clearly behind the best trial at step {step}")
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")

    def time_left(self) -> float | None:
        """Seconds until the deadline, or None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()


class ModelFamily(ABC):
    """A kind of model with its own search space.

    A family declares which tasks it serves, how its input is preprocessed, how it samples
    its hyperparameters, how it builds an estimator from them, and a few strong starting
    configurations that are tried before any sampling. Subclass it and pass an instance to
    :func:`autotune.register_family` to add your own.

    Attributes:
        name: Short, unique, used as the parameter namespace (``name.param``).
        tasks: Any of ``"binary"``, ``"multiclass"``, ``"regression"``.
        fidelity: How trials of the family are scored and pruned (see below).
        preprocessing: ``"scaled"`` (impute, one-hot, scale), ``"trees"`` (impute, one-hot
            or ordinal codes) or ``"native"`` (missing values and categories kept for
            models that handle them natively).
    """

    name: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "regression")
    preprocessing: ClassVar[str] = "scaled"
    #: ``"folds"``: scored by cross-validation, reported per fold. ``"epochs"``: trained
    #: once on a holdout (the first fold) and reported per epoch by :meth:`fit`.
    fidelity: ClassVar[str] = "folds"
    #: The parameter that sets how long a fit trains (boosting iterations, trees), which
    #: an early look scales down; None: the look trains on a fraction of the rows instead.
    resource: ClassVar[str | None] = None
    #: Rough cost of one fit relative to histogram gradient boosting's defaults.
    relative_cost: ClassVar[float] = 1.0
    #: Whether the estimator saves itself (not with skops); such models are not ensembled.
    self_saving: ClassVar[bool] = False
    #: Whether the family's first starting point opens a search: a default that is strong
    #: on most data at a moderate cost, so that even a short budget ends with a good model.
    opens_search: ClassVar[bool] = False
    #: A family of the same kind of model that replaces this one in ``families="auto"``
    #: wherever it joins: a second copy of one model only takes trials from the others.
    superseded_by: ClassVar[str | None] = None

    def suitability(self, profile: DataProfile, timeout: float | None) -> str | None:
        """Why the family should be left out of ``families="auto"``, if it should.

        Args:
            profile: The data.
            timeout: The run's time budget in seconds, or None when only trials are counted.
        """
        return None

    @abstractmethod
    def suggest(self, space: Space, profile: DataProfile) -> dict[str, Any]:
        """Sample this family's hyperparameters (unprefixed names → values)."""

    @abstractmethod
    def build(self, params: dict[str, Any], profile: DataProfile, seed: int) -> BaseEstimator:
        """An unfitted estimator for the given hyperparameters.

        Classifiers are fitted on class indices ``0..K-1`` and must offer ``predict_proba``.
        """

    def preprocessing_for(self, params: Mapping[str, Any]) -> str:
        """The preprocessing of a configuration: ``preprocessing`` unless the family tunes
        how its input is read."""
        return self.preprocessing

    def stopped_at(self, model: Any) -> int | None:
        """How much of ``resource`` a fitted model's own early stopping settled on, or None
        where it did not stop early by itself."""
        return None

    def trained_for(self, params: dict[str, Any], amount: int) -> dict[str, Any]:
        """``params`` that train exactly ``amount`` of ``resource``, without early stopping:
        a refit on all the rows trains as long as the folds' early stopping chose, rather
        than set aside rows of its own to choose again."""
        return params

    def import_libraries(self) -> None:
        """Import the libraries the family fits with, before a fit's clock starts: a time
        share given to one trial pays for its training, not for a one-off import."""
        return None

    def fit_params(self, model: Any, y: np.ndarray, context: FitContext) -> dict[str, Any]:
        """Extra arguments for ``model.fit`` while a trial trains, such as the validation
        rows its early stopping watches."""
        return {}

    def fit(self, model: Any, X: Any, y: np.ndarray, context: FitContext) -> Any:
        """Fit ``model``, by the context's deadline when the family's ``resource`` grows
        by warm start; families with epochs override this to report and stop in time."""
        extra = self.fit_params(model, y, context)
        if context.deadline is None or self.resource is None:
            return model.fit(X, y, **extra)
        return fit_in_time(model, X, y, self.resource, context.deadline, **extra)

    def starting_points(self, profile: DataProfile) -> list[dict[str, Any]]:
        """Strong configurations tried first, keyed by unprefixed search-space names."""
        return []

    def fit_point(self, point: Mapping[str, Any], profile: DataProfile) -> dict[str, Any]:
        """``point`` made a point of this data's search space, by replaying :meth:`suggest`.

        Ranges that depend on the data's size shrink on small data, so a configuration
        proven elsewhere is clipped into them; a categorical value the space lacks, or a
        parameter the point lacks, takes the range's first value.
        """
        trial = _PointTrial(point, f"{self.name}.")
        self.suggest(Space(trial, self.name), profile)  # type: ignore[arg-type]
        return trial.params

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
