"""Fixed cross-validation splits, the same for every trial of a study."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from autotune.data import DataProfile

__all__ = ["choose_n_splits", "make_splits"]


def choose_n_splits(profile: DataProfile) -> int:
    """Five folds on small data, three on large data where each fit is costly."""
    n_splits = 5 if profile.n_rows <= 10_000 else 3
    if profile.class_counts:
        n_splits = min(n_splits, min(profile.class_counts.values()))
    return max(2, n_splits)


def make_splits(
    profile: DataProfile, y: np.ndarray, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/validation index pairs; stratified for classification.

    The same profile, target, ``n_splits`` and ``seed`` always give the same splits, so
    a resumed study or a remote worker scores trials on exactly the same folds.
    """
    splitter = (
        StratifiedKFold(n_splits, shuffle=True, random_state=seed)
        if profile.is_classification
        else KFold(n_splits, shuffle=True, random_state=seed)
    )
    return list(splitter.split(np.zeros(len(y)), y))
