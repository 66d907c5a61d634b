"""``TuneResult``: the tuned model as a scikit-learn estimator, with its study."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from autotune.data import DataProfile
from autotune.engine import Listener, TuneOutcome, family_params, predict_scores, tune
from autotune.exceptions import ConfigError
from autotune.families import get_family
from autotune.leaderboard import leaderboard
from autotune.metrics import Metric

__all__ = ["TuneResult"]


class TuneResult(BaseEstimator):
    """A scikit-learn estimator whose ``fit`` runs a whole autotune study.

    ``auto_tune(X, y, **options)`` is ``TuneResult(**options).fit(X, y)``. The arguments
    are those of :func:`autotune.auto_tune`.

    Attributes:
        model_: The fitted final pipeline (raw data in, predictions out).
        study_: The ``optuna.Study``; also available as ``study``.
        best_params_: The best trial's estimator parameters.
        best_score_: Its cross-validated score in the study's metric.
        best_family_: Its family's name.
        classes_: The class labels (classification only).
        profile_: What autotune learned about the training data.
        metric_: The metric the study optimises.
    """

    def __init__(
        self,
        *,
        timeout: float | None = None,
        n_trials: int | None = None,
        metric: str | Metric | Callable[..., Any] = "auto",
        task: str = "auto",
        families: str | Sequence[str] = "auto",
        strategy: str = "auto",
        storage: str | None = None,
        study_name: str | None = None,
        n_jobs: int = 1,
        seed: int = 0,
        show: bool | str = "auto",
    ) -> None:
        self.timeout = timeout
        self.n_trials = n_trials
        self.metric = metric
        self.task = task
        self.families = families
        self.strategy = strategy
        self.storage = storage
        self.study_name = study_name
        self.n_jobs = n_jobs
        self.seed = seed
        self.show = show

    # -- fitting -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, listener: Listener | None = None) -> TuneResult:
        """Tune on X, y (resuming the study if it exists) and fit the best model.

        Returns:
            self, fitted.
        """
        started = time.monotonic()
        if self.show not in (True, False, "auto"):
            raise ConfigError(f"show must be True, False or 'auto'; got {self.show!r}.")
        if (
            isinstance(self.n_jobs, bool)
            or not isinstance(self.n_jobs, int)
            or (self.n_jobs < 1 and self.n_jobs != -1)
        ):
            raise ConfigError(f"n_jobs must be a positive integer or -1; got {self.n_jobs!r}.")
        if listener is None:
            from autotune.ui import make_listener

            listener = make_listener(self.show)
        outcome = tune(
            X,
            y,
            timeout=self.timeout,
            n_trials=self.n_trials,
            metric=self.metric,
            task=self.task,
            families=self.families,
            strategy=self.strategy,
            storage=self.storage,
            study_name=self.study_name,
            seed=self.seed,
            listener=listener,
            started=started,
        )
        self._set_outcome(outcome)
        return self

    def _set_outcome(self, outcome: TuneOutcome) -> None:
        profile = outcome.profile
        best = outcome.best_trial
        family = get_family(best.params["family"])
        self.model_ = outcome.model
        self.study_ = outcome.study
        self.profile_: DataProfile = profile
        self.metric_ = outcome.metric
        self.best_trial_ = best
        self.best_family_ = family.name
        self.best_score_ = float(best.value)
        self.best_params_ = family_params(best, family, profile)
        self.resumed_ = outcome.resumed
        self.n_new_trials_ = outcome.n_new_trials
        self.elapsed_ = outcome.elapsed
        self.storage_url_ = outcome.storage_url
        self.n_features_in_ = profile.n_cols
        self.feature_names_in_ = np.asarray(profile.columns, dtype=object)
        if profile.is_classification:
            self.classes_ = np.asarray(profile.classes)

    # -- prediction ----------------------------------------------------------------------
    def _frame(self, X: Any) -> pd.DataFrame:
        from autotune.data import to_frame

        frame = to_frame(X)
        if not isinstance(X, pd.DataFrame) and frame.shape[1] == self.profile_.n_cols:
            frame.columns = list(self.profile_.columns)
        return frame

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (classification) or values (regression) for raw X."""
        check_is_fitted(self, "model_")
        scores = predict_scores(self.model_, self._frame(X), self.profile_)
        if self.profile_.task == "regression":
            return scores
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "model_")
        if not self.profile_.is_classification:
            raise AttributeError("predict_proba is only available for classification tasks.")
        return predict_scores(self.model_, self._frame(X), self.profile_)

    def score(self, X: Any, y: Any) -> float:
        """The study's metric on X, y, signed so that higher is better (losses negated),
        as scikit-learn's model selection expects."""
        check_is_fitted(self, "model_")
        from autotune.engine import encode_target

        target = pd.Series(np.asarray(y))
        prediction = predict_scores(self.model_, self._frame(X), self.profile_)
        truth = encode_target(target, self.profile_)
        classes = np.asarray(self.profile_.classes, dtype=object)
        value = self.metric_.score(truth, prediction, classes)
        return value if self.metric_.greater_is_better else -value

    # -- the study -----------------------------------------------------------------------
    @property
    def study(self) -> optuna.Study:
        """The Optuna study behind this result."""
        check_is_fitted(self, "study_")
        return self.study_

    @property
    def leaderboard(self) -> pd.DataFrame:
        """Every trial of the study, best first (see :func:`autotune.leaderboard.leaderboard`)."""
        return leaderboard(self.study)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        profile = getattr(self, "profile_", None)
        if profile is not None:
            tags.estimator_type = "regressor" if profile.task == "regression" else "classifier"
        return tags
