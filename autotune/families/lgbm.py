"""LightGBM: gradient boosting that trains several times faster than scikit-learn's.

On large data a fit's cost decides how many configurations a budget tries. On 15,000
rows of r_doctorcontacts_health (4 classes), a deep configuration (depth 8, 259
iterations) took 14.6 s as ``HistGradientBoostingClassifier`` and 4.1 s as LightGBM, at
the same test log loss (0.176 and 0.174); scikit-learn's defaults took 1.8 s and
LightGBM's 0.6 s. LightGBM is imported only when the family runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from autotune.data import DataProfile
from autotune.families._base import FitContext, ModelFamily
from autotune.families._portfolio import portfolio
from autotune.families._preprocess import (
    code_readings,
    native_categorical_columns,
    native_kind,
    split_kind,
)
from autotune.families._space import Space
from autotune.families.hgb import CODES, read_codes_each_way, watches_its_fold

__all__ = ["MIN_ROWS", "MIN_TIMEOUT", "LightGBMFamily"]

#: The family joins ``families="auto"`` from this many rows. On r_star_classk (4,311
#: rows, 3 classes) the portfolio's first pick took 15.4 s as scikit-learn's boosting and
#: 10.7 s as LightGBM. With LightGBM from 2,000 rows, 60 s runs (seed 0) improved on
#: r_star_classk (test log loss 0.222 to 0.209), r_computers_price (4,694 rows, RMSE
#: 144.7 to 142.4), r_medexp_med and fair_affairs (0.3 % and 0.1 %), and were 0.5 %
#: worse on 2,196 and 2,469 rows (r_train_choice, r_cracker_choice): there scikit-learn's
#: boosting, for which the portfolios were chosen, is as quick. Taking hgb's place from
#: 2,000 rows was no better either (60 s, seeds 0-2, seven tasks of 2,132 to 3,270
#: rows): r_cracker_choice's log loss 0.4058 to 0.4026 and r_slid_wages' RMSE 6.351 to
#: 6.310, but r_males_union's roc_auc 0.8295 to 0.8255, r_aids2_status's 0.8427 to
#: 0.8418 and r_wages_lwage's RMSE 0.2847 to 0.2859; r_train_choice and
#: r_workinghours_occupation within 0.05 %.
MIN_ROWS = 4_000
#: Budgets below this many seconds leave LightGBM out: scikit-learn's defaults then open
#: (see ``enqueue_starting_points``), and on multiclass_mixed at 10 s they ended at a test
#: log loss of 0.551 where LightGBM's ended at 0.569.
MIN_TIMEOUT = 30.0
#: Rounds without improvement on the validation rows before a fit stops early.
STOPPING_ROUNDS = 15


class _Deadline:
    """A LightGBM callback that ends training, keeping the trees so far, at a deadline."""

    order = 40  # after early stopping's own check

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, env: Any) -> None:
        if time.monotonic() >= self.deadline:
            from lightgbm.callback import EarlyStopException

            raise EarlyStopException(env.iteration, env.evaluation_result_list or [])


class LightGBMFamily(ModelFamily):
    """``lightgbm.LGBM*`` with native missing values and categories, from ``MIN_ROWS`` rows."""

    name = "lgbm"
    preprocessing = "native"
    resource = "n_estimators"
    opens_search = True
    #: Measured against histogram gradient boosting on the same configurations (above).
    relative_cost = 0.3

    def suitability(self, profile: DataProfile, timeout: float | None) -> str | None:
        if profile.n_rows < MIN_ROWS:
            return f"under {MIN_ROWS:,} rows hgb is as quick"
        if timeout is not None and timeout < MIN_TIMEOUT:
            return f"a {timeout:.0f} s budget opens with hgb's defaults (needs {MIN_TIMEOUT:.0f} s)"
        return None

    def suggest(self, space: Space, profile: DataProfile) -> dict[str, Any]:
        max_leaves = max(4, min(1024, profile.n_rows // 4))
        params: dict[str, Any] = {
            "learning_rate": space.float("learning_rate", 0.01, 0.3, log=True),
            "n_estimators": space.int("n_estimators", 50, 2000, log=True),
            "num_leaves": space.int("num_leaves", 4, max_leaves, log=True),
            "min_child_samples": space.int(
                "min_child_samples", 2, max(2, min(200, profile.n_rows // 10)), log=True
            ),
            "reg_lambda": space.float("reg_lambda", 1e-6, 10.0, log=True),
            "reg_alpha": space.float("reg_alpha", 1e-6, 10.0, log=True),
            "colsample_bynode": space.float("colsample_bynode", 0.3, 1.0),
        }
        if profile.is_imbalanced:
            params["class_weight"] = space.categorical("class_weight", [None, "balanced"])
        if profile.is_non_negative:
            params["objective"] = space.categorical("objective", ["regression", "poisson"])
        if readings := code_readings(profile):
            params[CODES] = space.categorical(CODES, readings)
        return params

    def preprocessing_for(self, params: Mapping[str, Any]) -> str:
        return native_kind(params.get(CODES, "numeric"))

    def build(self, params: dict[str, Any], profile: DataProfile, seed: int) -> BaseEstimator:
        import lightgbm

        cls = lightgbm.LGBMRegressor if profile.task == "regression" else lightgbm.LGBMClassifier
        params = {k: v for k, v in params.items() if k != CODES}  # read by the preprocessing
        # Zero threads follows OpenMP's limit, which the engine sets to one on small data
        # (the import above loads OpenMP before the limit is set, so the limit reaches it).
        # LightGBM's own default, every physical core, ignores the limit: in two fold
        # workers on r_star_classk (4,311 rows), a first trial took 162 s instead of 9 s.
        return cls(**params, random_state=seed, verbose=-1, n_jobs=0)

    def fit_params(self, model: Any, y: np.ndarray, context: FitContext) -> dict[str, Any]:
        # Categories as the preprocessing left them: columns of few levels are split as
        # categories, the others as ordinal codes, as histogram gradient boosting's default;
        # integer codes as the tuned reading of them (see ``CODE_READINGS``).
        extra: dict[str, Any] = {}
        profile = context.profile
        codes = split_kind(context.preprocessing or self.preprocessing)[1]
        columns = native_categorical_columns(profile, False, codes) if profile else None
        if columns is not None:
            extra["categorical_feature"] = columns
        # Early stopping watches the fold's own validation rows, as for gradient boosting.
        if not watches_its_fold(y, context):
            return extra
        from lightgbm import early_stopping

        extra["eval_X"], extra["eval_y"] = context.X_valid, context.y_valid
        extra["callbacks"] = [early_stopping(STOPPING_ROUNDS, verbose=False)]
        return extra

    def fit(self, model: Any, X: Any, y: np.ndarray, context: FitContext) -> Any:
        """Fit ``model``, ending at the context's deadline with the trees trained so far."""
        extra = self.fit_params(model, y, context)
        if context.deadline is not None:
            extra["callbacks"] = [*extra.get("callbacks", []), _Deadline(context.deadline)]
        return model.fit(X, y, **extra)

    def stopped_at(self, model: Any) -> int | None:
        best = int(getattr(model, "best_iteration_", 0) or 0)
        return best or None

    def trained_for(self, params: dict[str, Any], amount: int) -> dict[str, Any]:
        return {**params, "n_estimators": max(1, amount)}

    def starting_points(self, profile: DataProfile) -> list[dict[str, Any]]:
        # As for gradient boosting: the portfolio's first pick, then LightGBM's own
        # defaults (which open under a short budget), then the pick made deeper, then the
        # rest. LightGBM scales a multiclass hessian by K/(K-1), so the pick learns more
        # slowly than in scikit-learn's boosting; at LightGBM's own learning rate and with
        # 63 leaves, on the seed-0 training splits of the benchmark's six tasks of 10,000
        # rows or more (3 folds), it was better on multiclass_mixed (log loss 0.567
        # against 0.569, in half the time), large_mixed (roc_auc 0.9815 against 0.9814)
        # and r_doctorcontacts_health (0.319 against 0.399), and worse on r_diamonds_cut
        # and r_hi_whi. In 60 s runs (seed 0) it took r_doctorcontacts_health's test log
        # loss from 0.351 to 0.251 and multiclass_mixed's from 0.543 to 0.534.
        defaults = {
            "learning_rate": 0.1,
            "n_estimators": 100,
            "num_leaves": 31,
            "min_child_samples": 20,
            "colsample_bynode": 1.0,
        }
        first, *rest = portfolio(self.name, profile)
        deeper = {**first, "learning_rate": 0.1, "num_leaves": 63}
        points = [first, defaults, *read_codes_each_way(first, profile), deeper, *rest]
        return [self.fit_point(point, profile) for point in points]
