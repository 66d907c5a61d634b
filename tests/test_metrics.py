from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import make_scorer

from autotune.exceptions import ConfigError
from autotune.metrics import DEFAULT_METRICS, Metric, get_metric, secondary_metrics

RNG = np.random.default_rng(0)
Y_BIN = RNG.integers(0, 2, 200)
P_BIN = np.clip(Y_BIN * 0.6 + RNG.random(200) * 0.4, 0, 1)
PROBA_BIN = np.c_[1 - P_BIN, P_BIN]
CLASSES = np.array(["neg", "pos"], dtype=object)


def test_defaults_per_task():
    assert {t: get_metric("auto", t).name for t in DEFAULT_METRICS} == DEFAULT_METRICS
    assert get_metric("auto", "regression").direction == "minimize"
    assert get_metric("auto", "binary").direction == "maximize"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("roc_auc", skm.roc_auc_score(Y_BIN, P_BIN)),
        ("log_loss", skm.log_loss(Y_BIN, PROBA_BIN)),
        ("neg_log_loss", skm.log_loss(Y_BIN, PROBA_BIN)),
        ("accuracy", skm.accuracy_score(Y_BIN, P_BIN > 0.5)),
        ("f1", skm.f1_score(Y_BIN, P_BIN > 0.5)),
        ("balanced_accuracy", skm.balanced_accuracy_score(Y_BIN, P_BIN > 0.5)),
    ],
)
def test_classification_metrics_match_scikit_learn(name, expected):
    assert get_metric(name, "binary").score(Y_BIN, PROBA_BIN, CLASSES) == pytest.approx(expected)


def test_regression_metrics_and_aliases():
    y = RNG.normal(size=100)
    p = y + RNG.normal(scale=0.3, size=100)
    rmse = get_metric("neg_root_mean_squared_error", "regression")
    assert rmse.name == "rmse" and not rmse.greater_is_better
    assert rmse.score(y, p, CLASSES) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert get_metric("r2", "regression").score(y, p, CLASSES) == pytest.approx(skm.r2_score(y, p))
    assert get_metric("mae", "regression").direction == "minimize"


def test_multiclass_roc_auc_with_a_missing_class_in_a_fold():
    proba = RNG.dirichlet(np.ones(3), size=50)
    y = RNG.integers(0, 2, 50)  # class 2 absent
    value = get_metric("roc_auc", "multiclass").score(y, proba, np.arange(3))
    assert 0 <= value <= 1


@pytest.mark.parametrize("n", [5, 60, 2_000])
def test_binary_roc_auc_equals_scikit_learns_with_ties(n):
    rng = np.random.default_rng(n)
    y = rng.integers(0, 2, n)
    score = np.round(rng.random(n), 1)  # many tied scores
    proba = np.c_[1 - score, score]
    value = get_metric("roc_auc", "binary").score(y, proba, CLASSES)
    assert value == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)


def test_binary_roc_auc_of_one_class_is_undefined_as_in_scikit_learn():
    with pytest.warns(UndefinedMetricWarning, match="Only one class"):
        value = get_metric("roc_auc", "binary").score(np.ones(4, dtype=int), PROBA_BIN[:4], CLASSES)
    assert np.isnan(value)


def test_callables_and_scorers():
    def my_error(y_true, y_pred):
        return float(np.mean(y_true != y_pred))

    custom = get_metric(my_error, "binary")
    assert custom.name == "my_error" and custom.direction == "minimize"
    # user callables see the original labels, not class indices
    seen = []
    get_metric(lambda t, p: seen.append((t[0], p[0])) or 1.0, "binary").score(
        Y_BIN, PROBA_BIN, CLASSES
    )
    assert seen[0][0] in CLASSES
    scorer = get_metric(make_scorer(skm.mean_absolute_error, greater_is_better=False), "regression")
    assert scorer.direction == "minimize"
    explicit = Metric("hit", lambda t, p: float(np.mean(t == p)), True, "label")
    assert get_metric(explicit, "binary") is explicit


def test_unknown_or_mismatched_metric_is_a_clear_error():
    with pytest.raises(ConfigError, match="Unknown metric 'rocauc'"):
        get_metric("rocauc", "binary")
    with pytest.raises(ConfigError, match="does not fit a regression task"):
        get_metric("roc_auc", "regression")
    with pytest.raises(ConfigError, match="name or a callable"):
        get_metric(3, "binary")


def test_secondary_metrics_exclude_the_primary():
    names = [m.name for m in secondary_metrics("binary", get_metric("roc_auc", "binary"))]
    assert "roc_auc" not in names and 2 <= len(names) <= 3
