"""Temperature scaling fitted on out-of-fold predictions, and kept only where it helps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.tree import DecisionTreeClassifier

import autotune
from autotune.artifacts import load_model, saved_models
from autotune.engine._calibration import (
    TemperatureScaled,
    _scaled,
    calibrate,
    fit_temperature,
)
from autotune.families import ModelFamily, register_family
from autotune.families._registry import _REGISTRY
from autotune.metrics import get_metric


def _overconfident(n: int = 3000, temperature: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities from true logits, sharpened by dividing them by ``temperature``."""
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=1.5, size=(n, 3))
    truth = softmax(logits, axis=1)
    y = np.array([rng.choice(3, p=p) for p in truth])
    return softmax(logits * temperature, axis=1), y


def test_fit_temperature_recovers_the_sharpening():
    proba, y = _overconfident(temperature=3.0)
    assert fit_temperature(proba, y) == pytest.approx(3.0, rel=0.15)


def test_calibrate_improves_log_loss_and_keeps_the_ranking():
    proba, y = _overconfident()
    found = calibrate(proba, y, get_metric("log_loss", "multiclass"), np.arange(3))
    assert found is not None
    temperature, before, after = found
    assert after < 0.9 * before and temperature > 1
    # the temperature never changes the predicted class, so accuracy gains nothing
    assert calibrate(proba, y, get_metric("accuracy", "multiclass"), np.arange(3)) is None


def test_calibrate_leaves_well_calibrated_probabilities_alone():
    proba, y = _overconfident(temperature=1.0)
    assert calibrate(proba, y, get_metric("log_loss", "multiclass"), np.arange(3)) is None


class _Fixed:
    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def predict_proba(self, X: object) -> np.ndarray:
        return self.proba


def test_a_gain_made_by_a_few_confidently_wrong_rows_is_not_kept():
    # Sure and right on 995 rows, sure and wrong on 5: softening helps the out-of-fold
    # log loss a lot, but only through those 5 rows, and costs every other row a little.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 1000)
    proba = np.full((1000, 3), 0.0005)
    proba[np.arange(1000), y] = 0.999
    wrong = np.arange(5)
    proba[wrong] = 0.0005
    proba[wrong, (y[wrong] + 1) % 3] = 0.999
    log_loss = get_metric("log_loss", "multiclass")
    temperature = fit_temperature(proba, y)
    softened = log_loss.score(y, _scaled(proba, temperature), np.arange(3))
    assert temperature > 1.2 and softened < 0.9 * log_loss.score(y, proba, np.arange(3))
    assert calibrate(proba, y, log_loss, np.arange(3)) is None
    # the same mistakes on a fifth of the rows are a pattern, and the temperature stays
    many = np.arange(200)
    proba[many] = 0.0005
    proba[many, (y[many] + 1) % 3] = 0.999
    assert calibrate(proba, y, log_loss, np.arange(3)) is not None


def test_temperature_scaled_softens_but_keeps_the_class():
    proba = np.array([[0.98, 0.01, 0.01], [0.2, 0.7, 0.1]])
    model = TemperatureScaled(_Fixed(proba), temperature=2.0, n_classes=3).fit()
    scaled = model.predict_proba(None)
    assert np.allclose(scaled.sum(axis=1), 1)
    assert scaled[0, 0] < proba[0, 0]
    np.testing.assert_array_equal(model.predict(None), [0, 1])
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])


class _DeepTree(ModelFamily):
    """Unpruned trees answer with probabilities of exactly 0 and 1: over-confident."""

    name = "deep_tree"
    tasks = ("binary", "multiclass")

    def suggest(self, space, profile):
        return {"criterion": space.categorical("criterion", ["gini", "entropy"])}

    def build(self, params, profile, seed):
        return DecisionTreeClassifier(**params, random_state=seed)


@pytest.fixture
def deep_tree():
    register_family(_DeepTree())
    yield
    _REGISTRY.pop("deep_tree", None)


def test_calibrated_final_model_is_recorded_stored_and_reloads(deep_tree, tmp_path):
    # a tree misses about one digit in six, each with a probability of 0
    X, y = load_digits(return_X_y=True, as_frame=True)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = autotune.auto_tune(X, y, n_trials=1, families=["deep_tree"], storage=url, show=False)
    info = result.study.user_attrs["autotune_final"]
    assert info["kind"] == "trial"
    assert info["temperature"] > 1 and info["calibrated"] < info["uncalibrated"]
    assert result.final_ == info
    assert type(result.model_).__name__ == "TemperatureScaled"
    proba = result.predict_proba(X)
    assert proba.min() > 0 and proba.max() < 1  # softened away from 0 and 1
    loaded = autotune.load(result.study.study_name, url)
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
    models = saved_models(loaded.study)
    # the family's best is the uncalibrated tree inside the final model, from the same file
    assert models["best:deep_tree"]["model"] == models["final"]["model"]
    best = load_model(loaded.study, "best:deep_tree")
    np.testing.assert_array_equal(best.predict_proba(X), result.model_.model.predict_proba(X))
    assert best.predict_proba(X).min() == 0  # the tree's own, unsoftened probabilities


def test_under_confident_probabilities_are_not_sharpened():
    proba, y = _overconfident(temperature=0.5)  # too soft: the best fit would sharpen
    assert fit_temperature(proba, y) == pytest.approx(1.0, abs=1e-3)
    assert calibrate(proba, y, get_metric("log_loss", "multiclass"), np.arange(3)) is None
