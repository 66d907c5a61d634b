"""Fixed cross-validation splits, the same for every trial of a study."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from autotune.data import DataProfile

__all__ = ["choose_n_repeats", "choose_n_splits", "is_short_budget", "make_splits"]

#: Budgets below this many seconds score each trial on one round of folds and open with
#: the cheaper of the opening configurations (see ``enqueue_starting_points``).
SHORT_BUDGET = 30.0
#: Rows x columns x trees per boosting iteration (classes) above which a fit is costly
#: enough that the folds are not repeated.
COSTLY_CELLS = 250_000


def is_short_budget(timeout: float | None) -> bool:
    """Whether a budget is too short for repeated folds and the costlier opening."""
    return timeout is not None and timeout < SHORT_BUDGET


def choose_n_splits(profile: DataProfile) -> int:
    """Five folds on small data, three on large data where each fit is costly."""
    n_splits = 5 if profile.n_rows <= 10_000 else 3
    if profile.class_counts:
        n_splits = min(n_splits, min(profile.class_counts.values()))
    return max(2, n_splits)


def choose_n_repeats(profile: DataProfile, timeout: float | None = None) -> int:
    """How often the folds are repeated with another shuffle.

    On small data one K-fold score is noisy, and a long search then picks whichever
    configuration was luckiest on those folds. Repeating the folds averages that noise
    away at a cost that small data can afford. A short budget or costly fits leave room
    for few trials, where that luck matters less than reaching the trials at all: on
    digits (1,347 rows, 64 columns, 10 classes) the first boosting trial took 12 s of a
    10 s budget with two repeats.
    """
    if is_short_budget(timeout):
        return 1
    per_iteration = profile.n_classes if profile.n_classes > 2 else 1
    if profile.n_rows * profile.n_cols * per_iteration > COSTLY_CELLS:
        return 1
    if profile.n_rows <= 1_000:
        return 3
    return 2 if profile.n_rows <= 3_000 else 1


def make_splits(
    profile: DataProfile, y: np.ndarray, n_splits: int, seed: int, n_repeats: int = 1
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/validation index pairs, ``n_splits`` per repeat; stratified for classification.

    The same profile, target, ``n_splits``, ``seed`` and ``n_repeats`` always give the same
    splits, so a resumed study or a remote worker scores trials on exactly the same folds.
    """
    splits = []
    for repeat in range(n_repeats):
        splitter = (
            StratifiedKFold(n_splits, shuffle=True, random_state=seed + repeat)
            if profile.is_classification
            else KFold(n_splits, shuffle=True, random_state=seed + repeat)
        )
        splits += list(splitter.split(np.zeros(len(y)), y))
    return splits
