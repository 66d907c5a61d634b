"""A define-by-run search space that namespaces a family's parameters.

Families ask for values by short names (``learning_rate``); the study stores them under
the family's name (``hgb.learning_rate``), so that one study holds every family's space
side by side and importance can be computed per family. In grid mode each range becomes a
few fixed values, so that the whole space is finite and can be searched exhaustively.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna

__all__ = ["Space"]

_GRID_POINTS = 3

Choice = None | bool | int | float | str


class Space:
    """Hands out a family's parameters for one trial.

    Args:
        trial: The Optuna trial being sampled.
        prefix: The family's name; parameters are stored as ``prefix.name``.
        grid: Discretise every range into a few values, for exhaustive search.
        strategy: The run's ``strategy=``, for families that adapt to it (``"gradient"``).
    """

    def __init__(
        self, trial: optuna.Trial, prefix: str, *, grid: bool = False, strategy: str = "auto"
    ) -> None:
        self.trial = trial
        self.prefix = prefix
        self.grid = grid
        self.strategy = strategy

    def _key(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        """A real value in ``[low, high]``, on a log scale when ``log``."""
        if self.grid:
            points = (
                np.geomspace(low, high, _GRID_POINTS)
                if log
                else np.linspace(low, high, _GRID_POINTS)
            )
            return float(self.trial.suggest_categorical(self._key(name), _round(points)))
        return self.trial.suggest_float(self._key(name), low, high, log=log)

    def int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        """An integer in ``[low, high]``, on a log scale when ``log``."""
        high = max(high, low)
        if self.grid:
            points = (
                np.geomspace(low, high, _GRID_POINTS)
                if log
                else np.linspace(low, high, _GRID_POINTS)
            )
            values = sorted({round(p) for p in points})
            return int(self.trial.suggest_categorical(self._key(name), values))
        return self.trial.suggest_int(self._key(name), low, high, log=log)

    def categorical(self, name: str, choices: Sequence[Choice]) -> Any:
        """One of ``choices``."""
        return self.trial.suggest_categorical(self._key(name), list(choices))


def _round(points: np.ndarray) -> list[float]:
    return [float(f"{p:.3g}") for p in points]
