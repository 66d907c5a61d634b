"""Fits grown by warm start: the same model when time allows, a smaller one by a deadline."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor

from autotune.data import profile_data
from autotune.families import FitContext, get_family
from autotune.families._in_time import fit_in_time

X, Y = make_classification(n_samples=2_000, n_features=20, random_state=0)


@pytest.mark.parametrize(
    ("model", "resource"),
    [
        (
            HistGradientBoostingClassifier(max_iter=300, early_stopping=True, random_state=0),
            "max_iter",
        ),
        (HistGradientBoostingClassifier(max_iter=60, max_features=0.5, random_state=0), "max_iter"),
        (RandomForestRegressor(n_estimators=60, max_features=0.5, random_state=0), "n_estimators"),
    ],
)
def test_with_time_to_spare_it_builds_the_same_model(model, resource):
    plain = clone(model).fit(X, Y)
    grown = fit_in_time(clone(model), X, Y, resource, time.monotonic() + 3_600.0)
    predict = "predict_proba" if hasattr(plain, "predict_proba") else "predict"
    np.testing.assert_allclose(getattr(grown, predict)(X), getattr(plain, predict)(X))
    assert grown.get_params() == model.get_params()  # its parameters as given


def test_it_stops_near_the_deadline_with_a_smaller_working_model():
    model = HistGradientBoostingClassifier(
        max_iter=2_000, learning_rate=0.01, early_stopping=False, random_state=0
    )
    started = time.monotonic()
    plain_probe = clone(model).set_params(max_iter=200).fit(X, Y)
    tenth = time.monotonic() - started  # a tenth of the full fit
    deadline = time.monotonic() + 3 * tenth
    fitted = fit_in_time(clone(model), X, Y, "max_iter", deadline)
    ended = time.monotonic()
    assert 200 <= fitted.n_iter_ < 2_000
    assert ended - deadline < 2 * tenth  # a full fit would end about 7 tenths after it
    assert fitted.predict_proba(X).shape == plain_probe.predict_proba(X).shape
    assert fitted.get_params()["max_iter"] == 2_000


def test_past_the_deadline_it_still_trains_its_first_share():
    model = RandomForestRegressor(n_estimators=200, random_state=0)
    fitted = fit_in_time(model, X, Y, "n_estimators", time.monotonic() - 1.0)
    assert len(fitted.estimators_) == 20
    assert np.isfinite(fitted.predict(X)).all()


def test_a_family_fit_keeps_to_the_contexts_deadline():
    *_, profile = profile_data(X, Y)
    family = get_family("hgb")
    point = family.fit_point({"max_iter": 1_000, "learning_rate": 0.01}, profile)
    model = family.build(point, profile, 0).set_params(early_stopping=False)
    fitted = family.fit(model, X, Y, FitContext(deadline=time.monotonic() - 1.0))
    assert fitted.n_iter_ == 100  # the first share only
    unbounded = family.fit(clone(model).set_params(max_iter=150), X, Y, FitContext())
    assert unbounded.n_iter_ == 150
