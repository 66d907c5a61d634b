"""LightGBM: where it joins, its categories, its early stops and deadline, its saved files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import optuna
import skops.io as sio
from optuna.trial import TrialState

import autotune
from autotune import auto_tune
from autotune.artifacts import estimated_bytes, estimated_save_seconds
from autotune.data import profile_data
from autotune.engine import encode_target
from autotune.engine._objective import FAMILY_PARAM
from autotune.engine._starting import enqueue_starting_points
from autotune.families import FitContext, choose_families, get_family, make_pipeline_for
from autotune.families.hgb import VALIDATION_ROWS
from autotune.families.lgbm import MIN_ROWS, MIN_TIMEOUT
from tests.conftest import make_mixed

FAMILY = get_family("lgbm")


def _ready(n: int, task: str = "binary"):
    """Preprocessed rows of mixed data, their class indices or values, and the profile."""
    X, y = make_mixed(n=n)
    if task == "regression":
        y = X["x2"].fillna(0) * 2 + np.random.default_rng(1).normal(size=len(X))
    frame, y_series, profile = profile_data(X, y)
    prep = make_pipeline_for(FAMILY.preprocessing, "passthrough", profile)[:-1]
    X_ready = np.asarray(prep.fit_transform(frame, y_series), dtype=float)
    return X_ready, encode_target(y_series, profile), profile


def test_it_joins_auto_on_large_data_only_in_place_of_hgb_and_opens_the_search_there():
    small = profile_data(*make_mixed(n=2_000))[2]
    chosen, line = choose_families(small)
    assert "lgbm" not in [f.name for f in chosen]
    assert f"lgbm (under {MIN_ROWS:,} rows" in line
    large = profile_data(*make_mixed(n=MIN_ROWS))[2]
    chosen, line = choose_families(large)
    names = [f.name for f in chosen]
    assert "lgbm" in names and "hgb" not in names  # the same model, trained faster
    assert "hgb (lgbm is the same model" in line
    short, line = choose_families(large, timeout=MIN_TIMEOUT - 1)
    names = [f.name for f in short]
    assert "lgbm" not in names and "hgb" in names and "opens with hgb's defaults" in line
    study = optuna.create_study()
    enqueue_starting_points(study, chosen, large)
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    first_two = [t.system_attrs["fixed_params"][FAMILY_PARAM] for t in waiting[:2]]
    assert first_two == ["lgbm", "lgbm"]
    short = optuna.create_study()
    enqueue_starting_points(short, chosen, large, short_budget=True)
    opener = short.get_trials(deepcopy=False, states=(TrialState.WAITING,))[0]
    assert opener.system_attrs["fixed_params"]["lgbm.n_estimators"] == 100  # the defaults


def test_columns_of_few_levels_are_split_as_categories_and_the_rest_as_codes():
    X_ready, target, profile = _ready(2_000)
    model = FAMILY.build({"n_estimators": 30}, profile, 0)
    FAMILY.fit(model, X_ready, target, FitContext(profile=profile, n_classes=2))
    infos = model.booster_.dump_model()["feature_infos"]
    names = model.booster_.feature_name()
    # the native output: numeric columns, then colour (4 levels), then city (30 levels)
    colour, city = infos[names[-2]], infos[names[-1]]
    assert colour.get("values")  # a category set
    assert not city.get("values")  # a range of ordinal codes
    without = FAMILY.build({"n_estimators": 30}, profile, 0).fit(X_ready, target)
    assert not without.booster_.dump_model()["feature_infos"][names[-2]].get("values")


def test_a_fold_stops_early_on_its_validation_rows_and_the_refit_trains_as_long():
    X_ready, target, profile = _ready(4 * VALIDATION_ROWS, "regression")
    train, valid = np.arange(len(target)) % 4 != 0, np.arange(len(target)) % 4 == 0
    params = {"n_estimators": 2_000, "learning_rate": 0.3, "num_leaves": 31}
    context = FitContext(X_valid=X_ready[valid], y_valid=target[valid], profile=profile)
    fold = FAMILY.fit(FAMILY.build(params, profile, 0), X_ready[train], target[train], context)
    stopped = FAMILY.stopped_at(fold)
    assert stopped is not None and stopped < params["n_estimators"]
    refit = FAMILY.build(FAMILY.trained_for(params, stopped), profile, 0)
    FAMILY.fit(refit, X_ready, target, FitContext(profile=profile))
    assert refit.booster_.num_trees() == stopped and FAMILY.stopped_at(refit) is None
    few = np.flatnonzero(valid)[: VALIDATION_ROWS - 1]  # a stop there would be luck
    context = FitContext(X_valid=X_ready[few], y_valid=target[few], profile=profile)
    unwatched = FAMILY.fit(FAMILY.build(params, profile, 0), X_ready[train], target[train], context)
    assert FAMILY.stopped_at(unwatched) is None
    assert unwatched.booster_.num_trees() == params["n_estimators"]


def test_a_fit_ends_at_the_deadline_with_the_trees_trained_so_far():
    X_ready, target, profile = _ready(4_000)
    params = {"n_estimators": 1_000_000, "learning_rate": 0.01, "num_leaves": 63}
    model = FAMILY.build(params, profile, 0)
    started = time.monotonic()
    FAMILY.fit(model, X_ready, target, FitContext(deadline=started + 1.0, profile=profile))
    assert time.monotonic() - started < 3.0
    assert 0 < model.booster_.num_trees() < params["n_estimators"]
    proba = model.predict_proba(X_ready[:50])
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)


def test_its_save_is_costed_by_the_size_of_its_trees(tmp_path):
    X_ready, target, profile = _ready(2_000, "regression")
    seconds = {}
    for leaves in (8, 64):
        params = {"n_estimators": 200, "num_leaves": leaves, "min_child_samples": 2}
        model = FAMILY.fit(
            FAMILY.build(params, profile, 0), X_ready, target, FitContext(profile=profile)
        )
        path = tmp_path / f"{leaves}.skops"
        sio.dump(model, path)
        size = path.stat().st_size
        assert size / 2 <= estimated_bytes(model) <= 2 * size
        seconds[leaves] = estimated_save_seconds([model])
    assert seconds[64] > 3 * seconds[8]


def test_a_tuned_model_is_saved_and_loads_without_trusted_types(tmp_path):
    X, y = make_mixed(n=400)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    result = auto_tune(
        X, y, families=["lgbm"], n_trials=3, storage=url, study_name="lgbm", show=False
    )
    assert result.best_family_ == "lgbm"
    loaded = autotune.load("lgbm", url)
    np.testing.assert_allclose(loaded.predict_proba(X), result.predict_proba(X))


def test_a_fit_on_small_data_starts_no_thread_of_its_own():
    # Fold workers fit side by side on one thread each there. In a process of its own, so
    # that LightGBM loads as it does in a fold worker and /proc counts only its threads.
    script = textwrap.dedent(
        """
        import os
        import sys
        import numpy as np
        from autotune.data import profile_data
        from autotune.engine._fit import fit_predict
        from autotune.families import FitContext
        from autotune.families.lgbm import LightGBMFamily

        def threads():
            return len(os.listdir("/proc/self/task"))

        class Watched(LightGBMFamily):
            def fit_params(self, model, y, context):
                extra = super().fit_params(model, y, context)
                def count(env):
                    self.most = max(getattr(self, "most", 0), threads())
                extra["callbacks"] = [*extra.get("callbacks", []), count]
                return extra

        rng = np.random.default_rng(0)
        X = rng.normal(size=(2_000, 4))
        frame, y, profile = profile_data(X, (X[:, 0] > 0).astype(int))
        family = Watched()
        assert "lightgbm" not in sys.modules
        context = FitContext(X_valid=X[:50], profile=profile, n_classes=2)
        before = threads()
        fit_predict(family, {"n_estimators": 20}, profile, 0, X, y.to_numpy(), context)
        print(family.most - before)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "0", done.stdout + done.stderr  # no thread was started
