"""The extension point every model family implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from sklearn.base import BaseEstimator

from autotune.data import DataProfile
from autotune.families._space import Space

__all__ = ["ModelFamily"]


class ModelFamily(ABC):
    """A kind of model with its own search space.

    A family declares which tasks it serves, how its input is preprocessed, how it samples
    its hyperparameters, how it builds an estimator from them, and a few strong starting
    configurations that are tried before any sampling. Subclass it and pass an instance to
    :func:`autotune.register_family` to add your own.

    Attributes:
        name: Short, unique, used as the parameter namespace (``name.param``).
        tasks: Any of ``"binary"``, ``"multiclass"``, ``"regression"``.
        preprocessing: ``"scaled"`` (impute, one-hot, scale), ``"trees"`` (impute, one-hot
            or ordinal codes) or ``"native"`` (missing values and categories kept for
            models that handle them natively).
    """

    name: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]] = ("binary", "multiclass", "regression")
    preprocessing: ClassVar[str] = "scaled"

    def suitability(self, profile: DataProfile) -> str | None:
        """Why the family should be left out of ``families="auto"`` for this data, if it should."""
        return None

    @abstractmethod
    def suggest(self, space: Space, profile: DataProfile) -> dict[str, Any]:
        """Sample this family's hyperparameters (unprefixed names → values)."""

    @abstractmethod
    def build(self, params: dict[str, Any], profile: DataProfile, seed: int) -> BaseEstimator:
        """An unfitted estimator for the given hyperparameters.

        Classifiers are fitted on class indices ``0..K-1`` and must offer ``predict_proba``.
        """

    def starting_points(self, profile: DataProfile) -> list[dict[str, Any]]:
        """Strong configurations tried first, keyed by unprefixed search-space names."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
