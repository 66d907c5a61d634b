"""Warm start from the user's own history: meta-learning across the studies in a store.

A new study begins with a few configurations that won on the most similar datasets
tuned before in the same store, so that a store that has seen similar data gives a
strong first trial instead of a cold start. Similarity is a distance between a few
cheap meta-features of the data profiles (size, column kinds, missing values, classes),
which every autotune study already records in its metadata. Data unlike every earlier
study's starts from the portfolio alone.

The store is read cheaply: one listing of all studies (names, directions and user
attributes, no trials), then the parameters of the best few dozen complete trials of
only the nearest few studies.
Anything the store holds that autotune did not write, or cannot use, is skipped.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    json_to_distribution,
)
from optuna.study import StudyDirection
from optuna.trial import FixedTrial, TrialState

from autotune.data import DataProfile
from autotune.engine._objective import FAMILY_PARAM
from autotune.exceptions import ConfigError
from autotune.families import ModelFamily, Space, get_family
from autotune.metrics import get_metric
from autotune.store import META_KEY, open_storage

_MAXIMIZE, _MINIMIZE = StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE

__all__ = [
    "MAX_DISTANCE",
    "MetaFeatures",
    "SimilarStudy",
    "WarmStart",
    "find_warm_start",
    "meta_features",
]

#: One unit of difference in each meta-feature (in the order of the numeric fields of
#: :class:`MetaFeatures`): twice the rows is 1.5 units, a tenth more categorical columns
#: one unit, a minority class of 30 % instead of 40 % of two classes one unit. The units
#: are fixed, not the spread of the studies in the store, so that whether two datasets
#: count as similar does not depend on what else the store holds.
_UNIT = np.array([0.2, 0.1, 0.1, 0.1, 0.05, 0.1, 0.2])
#: Studies whose data lie further than this lend nothing. On the check4 suite tuned into
#: one store (60 s, 3 seeds), the twelve datasets lay 3.0 units or more apart, and the
#: winners of the nearest other dataset lost to the portfolio in each of the 9 studies
#: they opened, using up to 15 of the 60 s (r_vietnami_lnhhexp); the other splits of the
#: same data lay within 0.1 units, and the winners drawn mostly from them beat the
#: portfolio's best in 20 of 24 studies.
MAX_DISTANCE = 2.0
#: Added, when ranking, to the distance of a study tuned for another metric of the same
#: direction: its winners are still good configurations, but a close study with the same
#: metric is better.
METRIC_MISMATCH_PENALTY = 1.0
#: How many of the nearest studies may be read, at most, while looking for ``k_studies``
#: that contribute configurations; bounds the cost when near studies are unusable.
_MAX_READS_FACTOR = 2
#: How many of a study's best trials are looked at, at most, for configurations of the
#: families of this run.
_TOP_TRIALS = 50
#: Rounds of clipping and replaying a configuration before giving up on it (a clipped
#: value can move the bounds of a parameter sampled after it).
_MAX_REPLAYS = 3


@dataclass(frozen=True)
class MetaFeatures:
    """Simple descriptors of a dataset, comparable across studies of the same task.

    Attributes:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``; studies of another task
            are never compared.
        log_rows: log10 of the number of rows.
        log_cols: log10 of the number of columns.
        categorical_share: Share of categorical and text columns.
        numeric_share: Share of numeric and boolean columns.
        missing_share: Share of missing cells.
        log_classes: log10 of the number of classes (0 for regression).
        class_balance: Minority class share times the number of classes: 1 when
            balanced, near 0 when one class is rare (1 for regression).
    """

    task: str
    log_rows: float
    log_cols: float
    categorical_share: float
    numeric_share: float
    missing_share: float
    log_classes: float
    class_balance: float

    def vector(self) -> np.ndarray:
        """The numeric features, in field order (the task is compared separately)."""
        return np.asarray(astuple(self)[1:], dtype=float)


def meta_features(profile: DataProfile | Mapping[str, Any]) -> MetaFeatures:
    """Meta-features of a profile, from the object or from its stored dict form.

    Both forms go through the dict (``DataProfile.to_dict()``), so the current data and
    the studies in the store are described by exactly the same computation.

    Args:
        profile: A :class:`DataProfile`, or the ``"profile"`` dict of a study's metadata.

    Raises:
        ValueError, TypeError, KeyError: the dict is not a usable profile.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> from autotune.data import profile_data
        >>> features = meta_features(profile_data(*load_iris(return_X_y=True))[2])
        >>> features.task, round(features.class_balance, 2)
        ('multiclass', 1.0)
    """
    data = profile.to_dict() if isinstance(profile, DataProfile) else profile
    if not isinstance(data, Mapping):
        raise TypeError(f"a profile must be a mapping; got {type(data).__name__}")
    task = data["task"]
    if task not in ("binary", "multiclass", "regression"):
        raise ValueError(f"unknown task {task!r}")
    n_rows = _count(data["n_rows"])
    kinds = data["kinds"]
    if not isinstance(kinds, Mapping) or not kinds:
        raise ValueError("a profile needs the kind of every column")
    n_cols = len(kinds)
    kind_list = list(kinds.values())
    n_categorical = sum(k in ("categorical", "text") for k in kind_list)
    n_numeric = sum(k in ("numeric", "boolean") for k in kind_list)
    n_missing = sum(_count(v, allow_zero=True) for v in _mapping(data, "n_missing").values())
    counts = [_count(v) for v in _mapping(data, "class_counts").values()]
    if task != "regression" and len(counts) < 2:
        raise ValueError("a classification profile needs the count of every class")
    n_classes = len(counts) if task != "regression" else 0
    balance = min(counts) * n_classes / n_rows if n_classes else 1.0
    return MetaFeatures(
        task=task,
        log_rows=math.log10(n_rows),
        log_cols=math.log10(n_cols),
        categorical_share=n_categorical / n_cols,
        numeric_share=n_numeric / n_cols,
        missing_share=min(n_missing / (n_rows * n_cols), 1.0),
        log_classes=math.log10(max(n_classes, 1)),
        class_balance=min(balance, 1.0),
    )


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{key} must be a mapping; got {type(value).__name__}")
    return value


def _count(value: Any, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"a count must be an integer; got {value!r}")
    if value < (0 if allow_zero else 1):
        raise ValueError(f"a count must be positive; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SimilarStudy:
    """An earlier study the warm start drew configurations from."""

    name: str
    distance: float
    metric: str
    n_configs: int


@dataclass(frozen=True)
class WarmStart:
    """Configurations to enqueue, and the studies they came from (nearest first)."""

    configs: list[dict[str, Any]]
    sources: list[SimilarStudy]

    def message(self) -> str | None:
        """Say which studies the warm start came from, or None when it found nothing.

        Returns:
            ``"warm start: 3 configurations from 2 similar studies: wine-ab12cd34, …"``.
        """
        if not self.configs:
            return None
        n_studies, n_configs = len(self.sources), len(self.configs)
        names = ", ".join(s.name for s in self.sources)
        return (
            f"warm start: {n_configs} configuration{'s' if n_configs != 1 else ''} from "
            f"{n_studies} similar stud{'ies' if n_studies != 1 else 'y'}: {names}"
        )


@dataclass(frozen=True)
class _Candidate:
    study_id: int
    name: str
    metric: str
    direction: StudyDirection
    features: MetaFeatures


def find_warm_start(
    storage: str | optuna.storages.BaseStorage,
    profile: DataProfile,
    task: str,
    metric_name: str,
    families: Sequence[str],
    *,
    exclude_study: str | None = None,
    k_studies: int = 3,
    per_study: int = 2,
    direction: str | None = None,
    strategy: str = "auto",
) -> WarmStart:
    """The best configurations of the earlier studies most similar to this data.

    A study qualifies when autotune made it for the same task, its single objective has
    the same direction, it was tuned on other data (another fingerprint) and it is not
    ``exclude_study``. Qualifying studies are ranked by the Euclidean distance between
    meta-features (in units of ``_UNIT``), plus :data:`METRIC_MISMATCH_PENALTY` for another
    metric; only those whose data lie within :data:`MAX_DISTANCE` lend configurations,
    because another dataset's winners are a worse start than the portfolio.
    From each of the nearest studies, the best complete trials whose family is in
    ``families`` are replayed through the family's current search space for this data:
    numbers outside the bounds are clipped into them (the bounds scale with the data),
    and a configuration that cannot be replayed (unknown choice, missing parameter,
    error) is skipped. Studies or trials the store holds but autotune cannot read are
    skipped too.

    Args:
        storage: The store, as a URL or an opened Optuna storage.
        profile: The profile of the data about to be tuned.
        task: The task of this run.
        metric_name: The metric of this run.
        families: The families this run searches; configurations of others are ignored.
        exclude_study: The study of this run, never a source of itself.
        k_studies: How many similar studies to draw from.
        per_study: How many configurations to take from each.
        direction: ``"maximize"`` or ``"minimize"``; None looks it up from the metric
            name, and for an unknown (custom) metric only studies of the same metric
            name qualify.
        strategy: The run's ``strategy=``, passed to the families' search spaces.

    Returns:
        A :class:`WarmStart`; its configs are ready for
        ``study.enqueue_trial(config, skip_if_exists=True)`` and include the family key.

    Raises:
        ConfigError: ``direction`` is neither ``"maximize"`` nor ``"minimize"``.
        StoreError: the store cannot be opened (only when given as a URL).

    Example:
        >>> warm = find_warm_start(storage, profile, "binary", "roc_auc", ["hgb", "linear"],
        ...                        exclude_study=study.study_name)  # doctest: +SKIP
        >>> for config in warm.configs:  # doctest: +SKIP
        ...     study.enqueue_trial(config, skip_if_exists=True)
    """
    usable = _usable_families(families, task)
    if k_studies <= 0 or per_study <= 0 or not usable:
        return WarmStart([], [])
    opened = open_storage(storage) if isinstance(storage, str) else storage
    wanted = _direction_of(metric_name, task, direction)
    current = meta_features(profile)
    candidates = []
    for frozen in opened.get_all_studies():
        candidate = _candidate(frozen, task, metric_name, wanted, profile.fingerprint)
        if candidate is not None and candidate.name != exclude_study:
            candidates.append(candidate)
    if not candidates:
        return WarmStart([], [])
    distances = _distances(current, candidates)
    penalties = METRIC_MISMATCH_PENALTY * np.array([c.metric != metric_name for c in candidates])
    configs: list[dict[str, Any]] = []
    sources: list[SimilarStudy] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    ranked = np.argsort(distances + penalties, kind="stable")
    order = [i for i in ranked if distances[i] <= MAX_DISTANCE]
    for index in order[: k_studies * _MAX_READS_FACTOR]:
        if len(sources) == k_studies:
            break
        candidate = candidates[int(index)]
        taken = _configs_of(opened, candidate, usable, profile, strategy, per_study, seen)
        if taken:
            configs.extend(taken)
            sources.append(
                SimilarStudy(
                    name=candidate.name,
                    distance=float(distances[int(index)]),
                    metric=candidate.metric,
                    n_configs=len(taken),
                )
            )
    return WarmStart(configs, sources)


def _direction_of(metric_name: str, task: str, direction: str | None) -> StudyDirection | None:
    if direction is None:
        try:
            direction = get_metric(metric_name, task).direction
        except (ConfigError, ValueError, TypeError):
            return None
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"direction must be 'maximize' or 'minimize'; got {direction!r}.")
    return _MAXIMIZE if direction == "maximize" else _MINIMIZE


def _candidate(
    frozen: optuna.study.FrozenStudy,
    task: str,
    metric_name: str,
    direction: StudyDirection | None,
    fingerprint: str,
) -> _Candidate | None:
    """A study that may lend configurations, or None when it must be skipped."""
    try:
        meta = frozen.user_attrs.get(META_KEY)
        if not isinstance(meta, Mapping) or meta.get("task") != task:
            return None
        if meta.get("fingerprint") == fingerprint or len(frozen.directions) != 1:
            return None
        metric = meta.get("metric")
        if not isinstance(metric, str):
            return None
        study_direction = frozen.directions[0]
        if direction is None and metric != metric_name:
            return None
        if direction is not None and study_direction != direction:
            return None
        features = meta_features(meta["profile"])
        if features.task != task or not np.all(np.isfinite(features.vector())):
            return None
        return _Candidate(frozen._study_id, frozen.study_name, metric, study_direction, features)
    except Exception:  # a study autotune did not write, or wrote differently: not a source
        return None


def _distances(current: MetaFeatures, candidates: Sequence[_Candidate]) -> np.ndarray:
    """Distance of each candidate's data to the current data, in units of :data:`_UNIT`."""
    points = np.vstack([current.vector(), *(c.features.vector() for c in candidates)])
    gaps = (points[1:] - points[0]) / _UNIT
    return np.sqrt((gaps**2).sum(axis=1))


def _usable_families(names: Sequence[str], task: str) -> dict[str, ModelFamily]:
    usable = {}
    for name in names:
        try:
            family = get_family(name)
        except ConfigError:
            continue
        if task in family.tasks:
            usable[name] = family
    return usable


def _configs_of(
    storage: optuna.storages.BaseStorage,
    candidate: _Candidate,
    families: Mapping[str, ModelFamily],
    profile: DataProfile,
    strategy: str,
    per_study: int,
    seen: set[tuple[tuple[str, str], ...]],
) -> list[dict[str, Any]]:
    """The best new valid configurations of one study, best first (``seen`` is updated)."""
    try:
        ranked = _best_params(storage, candidate)
    except Exception:  # an unreadable study is no source; the run goes on without it
        return []
    taken: list[dict[str, Any]] = []
    for params in ranked:
        family = params.get(FAMILY_PARAM)
        if not isinstance(family, str) or family not in families:
            continue
        config = _adapt(params, families[family], profile, strategy)
        if config is None:
            continue
        key = tuple(sorted((k, repr(v)) for k, v in config.items()))
        if key in seen:
            continue
        seen.add(key)
        taken.append(config)
        if len(taken) == per_study:
            break
    return taken


def _best_params(
    storage: optuna.storages.BaseStorage, candidate: _Candidate
) -> list[dict[str, Any]]:
    """The parameters of a study's best complete trials with a finite value, best first.

    A relational store is asked for only the top trials and their parameters, in two
    queries, because loading every trial costs about a second per thousand on SQLite.
    """
    if isinstance(storage, optuna.storages.RDBStorage):
        try:
            return _best_params_rdb(storage, candidate)
        except ImportError:  # Optuna's table models moved: read the slow, public way
            pass
    trials = storage.get_all_trials(
        candidate.study_id, deepcopy=False, states=(TrialState.COMPLETE,)
    )
    finite = [t for t in trials if len(t.values or ()) == 1 and math.isfinite(t.values[0])]
    finite.sort(key=lambda t: t.values[0], reverse=candidate.direction == _MAXIMIZE)
    return [t.params for t in finite[:_TOP_TRIALS]]


def _best_params_rdb(
    storage: optuna.storages.RDBStorage, candidate: _Candidate
) -> list[dict[str, Any]]:
    from optuna.storages._rdb.models import TrialModel, TrialParamModel, TrialValueModel
    from sqlalchemy import select

    value = TrialValueModel.value
    best = (
        select(TrialModel.trial_id)
        .join(TrialValueModel, TrialValueModel.trial_id == TrialModel.trial_id)
        .where(
            TrialModel.study_id == candidate.study_id,
            TrialModel.state == TrialState.COMPLETE,
            TrialValueModel.objective == 0,
            TrialValueModel.value_type == TrialValueModel.TrialValueType.FINITE,
        )
        .order_by(value.desc() if candidate.direction == _MAXIMIZE else value.asc())
        .order_by(TrialModel.number)
        .limit(_TOP_TRIALS)
    )
    with storage.engine.connect() as connection:
        ids = list(connection.execute(best).scalars())
        rows = connection.execute(
            select(
                TrialParamModel.trial_id,
                TrialParamModel.param_name,
                TrialParamModel.param_value,
                TrialParamModel.distribution_json,
            ).where(TrialParamModel.trial_id.in_(ids))
        ).all()
    params: dict[int, dict[str, Any]] = {trial_id: {} for trial_id in ids}
    decoded: dict[str, BaseDistribution] = {}
    for trial_id, name, internal, distribution_json in rows:
        if distribution_json not in decoded:
            decoded[distribution_json] = json_to_distribution(distribution_json)
        params[trial_id][name] = decoded[distribution_json].to_external_repr(internal)
    return [params[trial_id] for trial_id in ids]


def _adapt(
    params: Mapping[str, Any], family: ModelFamily, profile: DataProfile, strategy: str
) -> dict[str, Any] | None:
    """A configuration replayed through the family's space for this data, or None.

    The replay is the one :func:`autotune.engine._refit.family_params` does, so a
    returned configuration rebuilds the same estimator when the trial runs.
    """
    values = dict(params)
    for _ in range(_MAX_REPLAYS):
        replayed = _replay(values, family, profile, strategy)
        if replayed is None:
            return None
        suggested, distributions = replayed
        try:
            fitted = {name: _into(v, distributions[name]) for name, v in suggested.items()}
        except ValueError:
            return None
        if all(_same(fitted[n], suggested[n]) for n in suggested):
            return {FAMILY_PARAM: family.name, **fitted}
        values = {**values, **fitted}
    return None


def _replay(
    params: Mapping[str, Any], family: ModelFamily, profile: DataProfile, strategy: str
) -> tuple[dict[str, Any], dict[str, BaseDistribution]] | None:
    fixed = FixedTrial(dict(params))
    try:
        with warnings.catch_warnings():
            # FixedTrial only warns about an out-of-range value; _into checks each one.
            warnings.simplefilter("ignore")
            family.suggest(Space(fixed, family.name, strategy=strategy), profile)
    except Exception:  # a parameter the space no longer has, or a family's own check
        return None
    return dict(fixed.params), dict(fixed.distributions)


def _into(value: Any, distribution: BaseDistribution) -> Any:
    """The value inside the distribution, numbers clipped to its bounds.

    Raises:
        ValueError: the value is no choice of a categorical, or no number for a range.
    """
    if isinstance(distribution, CategoricalDistribution):
        for choice in distribution.choices:
            if _same(choice, value):
                return choice
        raise ValueError(f"{value!r} is not one of {distribution.choices}")
    if not isinstance(distribution, IntDistribution | FloatDistribution):
        raise ValueError(f"unknown distribution {distribution!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not finite")
    low, high, step = distribution.low, distribution.high, distribution.step
    if isinstance(distribution, IntDistribution):
        snapped = low + round((number - low) / step) * step
        return int(min(max(snapped, low), low + (high - low) // step * step))
    number = min(max(number, low), high)
    if step is not None:
        number = min(low + round((number - low) / step) * step, high)
    return number


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind: ``True`` is not the choice ``1``, nor ``1.0`` the ``1``."""
    return type(a) is type(b) and a == b
