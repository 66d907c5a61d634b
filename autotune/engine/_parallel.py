"""Cross-validation folds fitted side by side in worker processes, on small data.

Up to ``SERIAL_ROWS`` rows every model fits on one thread (see ``fit_threads``), so on a
machine with several cores the others would sit idle during a trial. Threads do not help
there: on small data scikit-learn's fits spend much of their time in Python, under the GIL
(HistGradientBoosting on 1,000 rows, 5 folds on 2 cores: 0.85 times the serial speed with
threads, 1.8 times with processes). So folds go to a pool of reusable worker processes,
started once and warmed up while the run prepares, and their fitted models come back for
the out-of-fold predictions and the kept fold models.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any

import numpy as np

from autotune.data import DataProfile
from autotune.engine._fit import SERIAL_ROWS, fit_predict
from autotune.exceptions import ConfigError
from autotune.families import FitContext, ModelFamily

__all__ = ["FOLD_WORKERS_VARIABLE", "FoldPool", "fold_workers"]

#: Sets how many processes fit folds side by side; 1 fits them in the tuning process.
FOLD_WORKERS_VARIABLE = "AUTOTUNE_FOLD_WORKERS"
#: Processes are not worth their start-up when the folds are this few.
MIN_SPLITS = 2
#: Modules every worker imports before its first fold, so that no fold pays for them.
WARM_MODULES = (
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.neighbors",
    "sklearn.svm",
    "autotune.families",
)


def fold_workers(profile: DataProfile, n_splits: int) -> int:
    """How many processes fit folds side by side: the usable cores on small data, else 1.

    ``AUTOTUNE_FOLD_WORKERS`` overrides it (1 turns the pool off). Cores come from
    ``joblib.cpu_count``, which honours ``LOKY_MAX_CPU_COUNT``, CPU affinity and cgroups.
    """
    setting = os.environ.get(FOLD_WORKERS_VARIABLE, "").strip()
    if setting:
        try:
            return max(1, int(setting))
        except ValueError:
            raise ConfigError(
                f"{FOLD_WORKERS_VARIABLE}={setting!r} is not a whole number; set it to the "
                "number of processes that fit folds (1 for none), or unset it."
            ) from None
    if profile.n_rows > SERIAL_ROWS or n_splits < MIN_SPLITS:
        return 1  # large data: each fit already uses every core
    import joblib

    return max(1, min(int(joblib.cpu_count()), n_splits))


def _warm_up(modules: tuple[str, ...]) -> int:
    import importlib

    for module in modules:
        importlib.import_module(module)
    return os.getpid()


class FoldPool:
    """A pool of worker processes (joblib's reusable loky executor) for fold fits.

    The executor outlives the run, so a second ``auto_tune`` in the same session starts at
    once; its idle workers exit on their own after ``idle_timeout`` seconds.
    """

    def __init__(self, n_workers: int, idle_timeout: float = 300.0) -> None:
        from joblib.externals.loky import get_reusable_executor

        self.n_workers = n_workers
        self._executor = get_reusable_executor(max_workers=n_workers, timeout=idle_timeout)
        for _ in range(n_workers):
            self._executor.submit(_warm_up, WARM_MODULES)

    def submit(
        self,
        family: ModelFamily,
        params: dict[str, Any],
        profile: DataProfile,
        seed: int,
        X_train: np.ndarray,
        y_train: np.ndarray,
        context: FitContext,
    ) -> Future[tuple[Any, np.ndarray, float]]:
        return self._executor.submit(
            fit_predict, family, params, profile, seed, X_train, y_train, context
        )
