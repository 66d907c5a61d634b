"""``TuneResult``: the tuned model as a scikit-learn estimator, with its study."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from autotune.data import DataProfile
from autotune.engine import (
    Listener,
    TuneOutcome,
    best_trial,
    family_params,
    predict_scores,
    tune,
)
from autotune.exceptions import ConfigError
from autotune.families import get_family
from autotune.leaderboard import leaderboard
from autotune.metrics import Metric
from autotune.store import FINAL_KEY

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
        final_: What ``predict`` uses: ``{"kind": "trial", "trial": n}`` or ``{"kind":
            "ensemble", "weights": {trial: weight}, ...}``, with ``temperature`` when the
            probabilities were calibrated.
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
            n_jobs=self.n_jobs,
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
        self.best_params_ = family_params(best, family, profile, self.strategy)
        self.final_ = dict(outcome.study.user_attrs.get(FINAL_KEY, {}))
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

    def _check_model(self) -> None:
        if hasattr(self, "study_") and not hasattr(self, "model_"):
            raise NotFittedError(
                f"Study {self.study_.study_name!r} has no stored model to predict with; run "
                "auto_tune(X, y) on its data to fit one."
            )
        check_is_fitted(self, "model_")

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (classification) or values (regression) for raw X."""
        self._check_model()
        scores = predict_scores(self.model_, self._frame(X), self.profile_)
        if self.profile_.task == "regression":
            return scores
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        self._check_model()
        if not self.profile_.is_classification:
            raise AttributeError("predict_proba is only available for classification tasks.")
        return predict_scores(self.model_, self._frame(X), self.profile_)

    def score(self, X: Any, y: Any) -> float:
        """The study's metric on X, y, signed so that higher is better (losses negated),
        as scikit-learn's model selection expects."""
        self._check_model()
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

    # -- inspection (plots load plotly lazily) -------------------------------------------
    def plot_importance(self, family: str | None = None) -> Any:
        """Parameter importance: overall (family choice included) or within one family."""
        from autotune import plots

        return plots.plot_importance(self.study, family=family)

    def plot_history(self) -> Any:
        """Optimisation history with the best-so-far line."""
        from autotune import plots

        return plots.plot_history(self.study)

    def plot_parallel(self, family: str | None = None) -> Any:
        """Parallel coordinates of one family's parameters (the best family by default)."""
        from autotune import plots

        return plots.plot_parallel(self.study, family=family or self.best_family_)

    def plot_slice(self, family: str | None = None) -> Any:
        """Score against each of the top parameters of a family."""
        from autotune import plots

        return plots.plot_slice(self.study, family=family or self.best_family_)

    def plot_contour(self, family: str | None = None) -> Any:
        """Score over the two most important parameters of a family."""
        from autotune import plots

        return plots.plot_contour(self.study, family=family or self.best_family_)

    def plot_families(self) -> Any:
        """Score distribution per family."""
        from autotune import plots

        return plots.plot_families(self.study)

    def plot_intermediate(self) -> Any:
        """Intermediate values (folds or epochs), pruned trials included."""
        from autotune import plots

        return plots.plot_intermediate(self.study)

    def explore(self) -> Any:
        """An ipywidgets dashboard of the study: family filter, plot tabs, trials table."""
        from autotune.ui import explore

        return explore(self)

    def report(self, path: str) -> str:
        """Write a standalone HTML report (summary, leaderboard, plots); returns the path."""
        from autotune.report import write_report

        return write_report(self, path)

    @classmethod
    def from_study(cls, study: optuna.Study) -> TuneResult:
        """The inspection side of a stored study: leaderboard, plots and best trial.

        Raises:
            StudyMismatchError: the study was not made by autotune.
        """
        from autotune.exceptions import StudyMismatchError
        from autotune.metrics import get_metric
        from autotune.store import read_meta

        meta = read_meta(study)
        if not meta or "profile" not in meta:
            raise StudyMismatchError(
                f"Study {study.study_name!r} was not made by autotune; open it with optuna."
            )
        profile = DataProfile.from_dict(meta["profile"])
        result = cls(
            metric=meta.get("metric", "auto"),
            families=list(meta.get("families", [])),
            strategy=meta.get("strategy", "auto"),
            study_name=study.study_name,
        )
        result.study_ = study
        result.profile_ = profile
        result.final_ = dict(study.user_attrs.get(FINAL_KEY, {}))
        try:
            result.metric_ = get_metric(meta.get("metric", "auto"), profile.task)
        except ConfigError:
            result.metric_ = None  # a custom metric: scores are shown, not recomputed
        result.n_features_in_ = profile.n_cols
        result.feature_names_in_ = np.asarray(profile.columns, dtype=object)
        if profile.is_classification:
            result.classes_ = np.asarray(profile.classes)
        try:
            best = best_trial(study)
        except ValueError:
            return result
        family = get_family(best.params["family"])
        result.best_trial_ = best
        result.best_family_ = family.name
        result.best_score_ = float(best.value)
        result.best_params_ = family_params(best, family, profile, result.strategy)
        return result

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        from autotune.store import mask_url

        text = super().__repr__(N_CHAR_MAX)
        if self.storage:
            text = text.replace(self.storage, mask_url(self.storage))
        return text

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        profile = getattr(self, "profile_", None)
        if profile is not None:
            tags.estimator_type = "regressor" if profile.task == "regression" else "classifier"
        return tags
