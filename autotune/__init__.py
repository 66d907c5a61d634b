"""autotune: one call tunes scikit-learn and Keras models with Optuna, resumably.

Example:
    >>> from sklearn.datasets import load_breast_cancer
    >>> from autotune import auto_tune
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> result = auto_tune(X, y, n_trials=5, show=False)  # doctest: +SKIP
    >>> result.predict(X[:3])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from autotune._version import __version__
from autotune.data import DataProfile, profile_data
from autotune.exceptions import (
    AutotuneError,
    AutotuneWarning,
    ConfigError,
    DataError,
    DataTypeError,
    MissingDependencyError,
    StoreError,
    StudyMismatchError,
    TuningFailedError,
)
from autotune.families import ModelFamily, register_family, registered_families
from autotune.metrics import Metric
from autotune.result import TuneResult
from autotune.store import default_storage_url
from autotune.store import list_studies as studies

__all__ = [
    "AutotuneError",
    "AutotuneWarning",
    "ConfigError",
    "DataError",
    "DataProfile",
    "DataTypeError",
    "Metric",
    "MissingDependencyError",
    "ModelFamily",
    "StoreError",
    "StudyMismatchError",
    "TuneResult",
    "TuningFailedError",
    "__version__",
    "auto_tune",
    "controls",
    "default_storage_url",
    "explore",
    "load",
    "profile_data",
    "register_family",
    "registered_families",
    "studies",
]


def controls(X: Any, y: Any, **options: Any) -> Any:
    """A notebook form to choose families, metric, budget, strategy and store, with Start
    and Stop; the finished result is on the returned object's ``result``."""
    from autotune.ui import controls as make_controls

    return make_controls(X, y, **options)


def explore(study: str | TuneResult, storage: str | None = None) -> Any:
    """An ipywidgets dashboard of a study (by name, or a result): plots and trials table."""
    from autotune.ui import explore as make_explorer

    result = study if isinstance(study, TuneResult) else load(study, storage)
    return make_explorer(result)


def load(name: str, storage: str | None = None, *, trusted: list[str] | None = None) -> TuneResult:
    """Open a stored study without its training data.

    The result predicts at once with the final model stored with the study (no refit),
    and offers the leaderboard, plots and explorer.

    Args:
        name: The study name (see :func:`studies`).
        storage: The store's URL; None for the default store.
        trusted: Extra type names to accept when loading the model file; only needed for
            models holding types outside scikit-learn, NumPy, SciPy and autotune.

    Example:
        >>> import autotune
        >>> result = autotune.load("target-3f9a1c2e")  # doctest: +SKIP
        >>> result.predict(X_new)  # doctest: +SKIP
    """
    from autotune.artifacts import load_model, saved_models
    from autotune.store import load_study

    study = load_study(name, storage)
    result = TuneResult.from_study(study)
    result.storage = storage
    if "final" in saved_models(study):
        result.model_ = load_model(study, "final", trusted=trusted, storage_url=storage)
    return result


def auto_tune(
    X: Any,
    y: Any,
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
) -> TuneResult:
    """Tune models on X, y and return the best one, fitted on all the data.

    The study is stored (SQLite ``studies/autotune.db`` by default), so calling again on
    the same data resumes it: earlier trials are kept and the sampler learns from them.

    Args:
        X: Features, a pandas DataFrame or a 2-D numpy array. Categorical, boolean,
            datetime and text columns and missing values are handled inside the model.
        y: Target, a Series or 1-D array; the task is inferred from it, and from the
            metric where the values leave it open (``metric="rmse"`` on integer scores
            tunes a regression).
        timeout: Wall-clock budget in seconds for the whole call, final fit included.
        n_trials: Number of new trials to run. With neither budget, a default is printed.
        metric: A metric name (``roc_auc``, ``log_loss``, ``rmse``, ``accuracy``, ``f1``,
            ``r2``, ``mae``, scikit-learn scorer names, …), a callable
            ``f(y_true, y_pred)`` or a :class:`Metric`. ``"auto"``: roc_auc for binary,
            log_loss for multiclass, rmse for regression.
        task: ``"auto"``, ``"binary"``, ``"multiclass"``, ``"regression"`` or
            ``"classification"``.
        families: ``"auto"`` (chosen from the data, explained in one line) or a list of
            family names, e.g. ``["hgb", "rf"]``.
        strategy: ``"auto"`` (TPE), ``"tpe"``, ``"random"``, ``"grid"``, ``"cmaes"``,
            ``"gp"`` or ``"gradient"``.
        storage: Any Optuna storage URL; None for the default store.
        study_name: Name of the study; by default the target's name and a data fingerprint.
        n_jobs: Worker processes running trials against the same store.
        seed: Seed for the sampler, the folds and the models.
        show: ``"auto"`` shows progress (a widget panel in Jupyter, a bar elsewhere);
            ``False`` is silent.

    Returns:
        A fitted :class:`TuneResult`.

    Raises:
        AutotuneError: a subclass that names the problem and its fix.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True, as_frame=True)
        >>> result = auto_tune(X, y, n_trials=3, show=False)  # doctest: +SKIP
        >>> result.leaderboard.head()  # doctest: +SKIP
    """
    return TuneResult(
        timeout=timeout,
        n_trials=n_trials,
        metric=metric,
        task=task,
        families=families,
        strategy=strategy,
        storage=storage,
        study_name=study_name,
        n_jobs=n_jobs,
        seed=seed,
        show=show,
    ).fit(X, y)
