"""End-to-end runs of auto_tune on small real data and real SQLite stores."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

import autotune
from autotune import auto_tune
from autotune.data import profile_data
from autotune.engine import Listener, Objective, encode_target, make_splits
from autotune.engine._run import Run
from autotune.exceptions import (
    AutotuneWarning,
    ConfigError,
    MissingDependencyError,
    StudyMismatchError,
)
from autotune.families import ModelFamily, get_family, register_family, registered_families
from autotune.families._registry import _REGISTRY
from autotune.metrics import get_metric
from autotune.store import read_meta
from tests.conftest import make_mixed

LEADERBOARD_COLUMNS = {"trial", "family", "state", "score", "duration"}


def test_binary_end_to_end(binary_data, storage):
    X, y = binary_data
    result = auto_tune(X, y, n_trials=8, storage=storage, show=False)
    assert result.metric_.name == "roc_auc"
    assert result.best_score_ > 0.9
    assert set(result.predict(X.head())) <= {0, 1}
    proba = result.predict_proba(X.head())
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)
    board = result.leaderboard
    assert set(board.columns) >= LEADERBOARD_COLUMNS
    assert {"accuracy", "log_loss"} <= set(board.columns)
    assert any(c.startswith("hgb.") for c in board.columns)
    trials = board[board["family"] != "ensemble"].reset_index(drop=True)
    assert len(trials) == 8 and trials.loc[0, "score"] == result.best_score_
    assert board["final"].sum() == 1  # the row of the model that predicts
    assert result.best_family_ in {"hgb", "linear", "rf", "et", "knn", "svm"}
    assert result.study.study_name.startswith("target-")
    assert result.score(X, y) > 0.9
    assert result.get_params()["n_trials"] == 8


def test_multiclass_string_labels(multiclass_data, storage):
    X, y = multiclass_data
    result = auto_tune(X, y, n_trials=6, storage=storage, show=False)
    assert result.metric_.name == "log_loss" and result.study.direction.name == "MINIMIZE"
    assert list(result.classes_) == ["setosa", "versicolor", "virginica"]
    assert (result.predict(X) == y).mean() > 0.9
    assert result.score(X, y) < 0  # a loss, negated so that higher is better


def test_regression_with_metric_name(regression_data, storage):
    X, y = regression_data
    result = auto_tune(X, y, n_trials=6, metric="mae", storage=storage, show=False)
    assert result.metric_.name == "mae"
    assert result.predict(X).shape == (len(X),)
    assert "r2" in result.leaderboard.columns


def test_mixed_types_missing_values_and_unseen_categories(mixed_data, storage):
    X, y = mixed_data
    result = auto_tune(X, y, n_trials=8, storage=storage, show=False)
    new = X.head(10).copy()
    new["colour"] = new["colour"].cat.add_categories(["purple"])
    new.loc[new.index[:3], "colour"] = "purple"
    new.loc[new.index[3:6], "x2"] = np.nan
    assert set(result.predict(new)) <= {"no", "yes"}
    # plain object columns at predict time work as well as categories
    assert len(result.predict(X.astype({"colour": object, "city": object}).head())) == 5


def test_integer_codes_are_read_each_way_and_the_final_model_reads_them_as_chosen(storage):
    rng = np.random.default_rng(0)
    n = 4_000
    brand = rng.choice(["a", "b", "c"], 400)
    household = rng.integers(0, 400, n)
    y = pd.Series(np.where(rng.random(n) < 0.8, brand[household], "a"))
    X = pd.DataFrame({"household": household * 7 + 1000, "store": rng.integers(0, 30, n)})
    train, test = slice(0, 3_000), slice(3_000, n)
    result = auto_tune(
        X.iloc[train], y.iloc[train], n_trials=6, families=["hgb"], storage=storage, show=False
    )
    readings = {t.params.get("hgb.codes") for t in result.study.trials}
    assert readings == {"numeric", "category", "target"}
    # 400 households fall into fewer bins when read as a number: encoded, each one shows
    assert result.best_params_["codes"] == "target"
    assert (result.predict(X.iloc[test]) == y.iloc[test]).mean() > 0.8


def test_numpy_input(storage):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    y = X[:, 0] * 2 + rng.normal(size=150)
    result = auto_tune(X, y, n_trials=4, storage=storage, show=False, families=["linear", "hgb"])
    assert result.predict(X[:3]).shape == (3,)
    assert list(result.feature_names_in_) == ["x0", "x1", "x2", "x3"]


def test_timeout_bounds_the_whole_call(binary_data, storage):
    X, y = binary_data
    started = time.monotonic()
    # the search opens with two gradient-boosting configurations, then cheaper families
    result = auto_tune(X, y, timeout=8, storage=storage, show=False)
    elapsed = time.monotonic() - started
    assert elapsed <= 8 * 1.05 + 2
    assert result.n_new_trials_ >= 3


def test_a_budget_too_short_for_one_trial_scores_the_first_on_the_folds_done(storage):
    X, y = make_mixed(n=3000)
    result = auto_tune(X, y, timeout=0.5, families=["rf"], storage=storage, show=False)
    first = result.study.trials[0]
    assert first.state.name == "COMPLETE" and result.best_trial_.number == 0
    n_folds = len(first.intermediate_values)
    assert first.user_attrs["folds"].startswith(f"{n_folds} of ")
    assert 1 <= n_folds < 5  # stopped at the deadline rather than run every fold
    assert first.value == pytest.approx(np.mean(list(first.intermediate_values.values())))
    assert result.predict(X.head()).shape == (5,)


def test_resume_adds_trials_and_reports_it(binary_data, storage, capsys):
    X, y = binary_data
    first = auto_tune(X, y, n_trials=5, storage=storage, show=True)
    name = first.study.study_name
    second = auto_tune(X, y, n_trials=4, storage=storage, show=True)
    out = capsys.readouterr().out
    assert second.study.study_name == name and second.resumed_
    assert f"resumed study '{name}': 5 earlier trials, best roc_auc" in out
    ran = [t for t in second.study.trials if t.state.is_finished()]  # not the queued ones
    assert [t.number for t in ran] == list(range(9))


def test_resume_across_processes(binary_data, tmp_path):
    X, y = binary_data
    data = tmp_path / "data.csv"
    X.assign(target=y).to_csv(data, index=False)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    script = (
        "import sys, pandas as pd, autotune\n"
        f"d = pd.read_csv({str(data)!r})\n"
        "r = autotune.auto_tune(d.drop(columns='target'), d['target'], n_trials=int(sys.argv[1]),"
        f" storage={store!r}, show=False, families=['linear', 'hgb'])\n"
        "ran = [t for t in r.study.trials if t.state.is_finished()]\n"
        "print(r.study.study_name, len(ran), r.resumed_)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script, n], capture_output=True, text=True)
        for n in ("4", "3")
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (r.stdout.split() for r in runs)
    assert first[0] == second[0]
    assert (first[1], first[2]) == ("4", "False")
    assert (second[1], second[2]) == ("7", "True")
    study = optuna.load_study(study_name=first[0], storage=store)
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == len(params), "a resumed run repeated an earlier trial"


def test_a_regression_metric_on_integer_scores_tunes_a_regression_and_resumes_it(storage):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = pd.Series(np.clip(np.round(5 + 2 * X["a"] + rng.normal(size=300)), 0, 10).astype(int))
    assert profile_data(X, y)[2].task == "multiclass"  # 11 integer values, left to themselves
    first = auto_tune(X, y, n_trials=3, metric="rmse", storage=storage, show=False)
    assert first.profile_.task == "regression" and first.metric_.name == "rmse"
    assert not np.isin(first.predict(X), np.arange(11)).all()  # a regressor's values
    second = auto_tune(X, y, n_trials=2, storage=storage, show=False)  # no metric this time
    assert second.resumed_ and second.profile_.task == "regression"
    assert second.metric_.name == "rmse"
    assert len([t for t in second.study.trials if t.state.is_finished()]) == 5


def test_other_data_of_another_task_is_refused_as_other_data(multiclass_data, storage):
    X, y = multiclass_data
    auto_tune(X, y, n_trials=1, storage=storage, show=False, study_name="m")
    two = y.isin(sorted(y.unique())[:2])  # binary, where the study is multiclass
    with pytest.raises(StudyMismatchError, match="different data"):
        auto_tune(X[two], y[two], n_trials=1, storage=storage, show=False, study_name="m")


def test_resume_refuses_other_data_or_metric(binary_data, storage):
    X, y = binary_data
    auto_tune(X, y, n_trials=2, storage=storage, show=False, study_name="s1")
    with pytest.raises(StudyMismatchError, match="different data"):
        auto_tune(
            X.iloc[:-1], y.iloc[:-1], n_trials=1, storage=storage, show=False, study_name="s1"
        )
    with pytest.raises(StudyMismatchError, match="other columns"):
        auto_tune(X.iloc[:, :5], y, n_trials=1, storage=storage, show=False, study_name="s1")
    with pytest.raises(StudyMismatchError, match="metric='roc_auc'"):
        auto_tune(X, y, n_trials=1, metric="accuracy", storage=storage, show=False, study_name="s1")
    with pytest.raises(StudyMismatchError, match="families"):
        auto_tune(X, y, n_trials=1, families=["hgb"], storage=storage, show=False, study_name="s1")


@pytest.mark.parametrize("strategy", ["random", "tpe", "grid", "cmaes"])
def test_strategies(strategy, regression_data, storage):
    X, y = regression_data
    result = auto_tune(
        X, y, n_trials=5, strategy=strategy, families=["hgb", "linear"], storage=storage, show=False
    )
    # starting points that the 5 trials did not reach stay queued for the next run
    assert sum(t.state.is_finished() for t in result.study.trials) == 5
    sampler = type(result.study.sampler).__name__
    expected = {
        "random": "RandomSampler",
        "tpe": "TPESampler",
        "grid": "BruteForceSampler",
        "cmaes": "CmaEsSampler",
    }[strategy]
    assert sampler == expected


def test_grid_search_is_exhaustive_and_finite(storage):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    result = auto_tune(
        X, y, n_trials=50, strategy="grid", families=["knn"], storage=storage, show=False
    )
    combos = {tuple(sorted(t.params.items())) for t in result.study.trials}
    # n_neighbors (3 grid values) x weights (2) x p (2)
    assert len(result.study.trials) == len(combos) == 12


def test_gp_strategy_names_its_package():
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        with pytest.raises(MissingDependencyError, match="torch"):
            auto_tune(np.zeros((10, 1)), np.arange(10.0), n_trials=1, strategy="gp", show=False)
    else:
        from autotune.engine import make_sampler

        assert type(make_sampler("gp", 0)).__name__ == "GPSampler"


class _BrokenFamily(ModelFamily):
    name = "broken"
    tasks = ("binary",)

    def suggest(self, space, profile):
        return {"C": space.float("C", 0.1, 10.0, log=True)}

    def build(self, params, profile, seed):
        return _Exploding()

    def starting_points(self, profile):
        return [{"C": 1.0}]


class _Exploding(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("this model always fails")


class _TinyFamily(ModelFamily):
    name = "tiny_logreg"
    tasks = ("binary", "multiclass")

    def suggest(self, space, profile):
        return {"C": space.float("C", 1e-3, 10.0, log=True)}

    def build(self, params, profile, seed):
        return LogisticRegression(C=params["C"], max_iter=500)


@pytest.fixture
def extra_families():
    register_family(_BrokenFamily())
    register_family(_TinyFamily())
    yield
    _REGISTRY.pop("broken", None)
    _REGISTRY.pop("tiny_logreg", None)


def test_failures_are_recorded_and_a_failing_family_is_dropped(
    extra_families, binary_data, storage
):
    X, y = binary_data
    with pytest.warns(AutotuneWarning, match="family 'broken' dropped"):
        result = auto_tune(
            X,
            y,
            n_trials=12,
            families=["broken", "tiny_logreg"],
            strategy="random",
            storage=storage,
            show=False,
        )
    failed = [t for t in result.study.trials if t.state.name == "FAIL"]
    assert len(failed) == 3
    assert all("this model always fails" in t.user_attrs["error"] for t in failed)
    assert result.best_family_ == "tiny_logreg"
    board = result.leaderboard
    assert board.loc[board["state"] == "fail", "error"].str.contains("always fails").all()


def test_user_family_is_usable_by_name(extra_families, binary_data, storage):
    X, y = binary_data
    result = auto_tune(X, y, n_trials=3, families=["tiny_logreg"], storage=storage, show=False)
    assert result.best_family_ == "tiny_logreg" and "C" in result.best_params_


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"timeout": 0}, "timeout must be a positive"),
        ({"timeout": -5}, "timeout must be a positive"),
        ({"n_trials": 0}, "n_trials must be positive"),
        ({"n_trials": 2.5}, "whole number"),
        ({"metric": "nope"}, "Unknown metric"),
        ({"task": "nope"}, "Unknown task"),
        ({"families": ["nope"]}, "Unknown family"),
        ({"strategy": "nope"}, "Unknown strategy"),
        ({"show": "loud"}, "show must be"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"study_name": "a/b"}, "path characters"),
    ],
)
def test_bad_options_are_clear_errors(options, words, binary_data, storage):
    X, y = binary_data
    with pytest.raises(
        ConfigError if "study_name" not in options else autotune.StoreError, match=words
    ):
        auto_tune(X, y, storage=storage, **{"n_trials": 1, "show": False, **options})


def test_default_budget_is_printed(binary_data, monkeypatch, capsys, storage):
    from autotune.engine import _search

    monkeypatch.setattr(_search, "default_timeout", lambda profile: 3.0)
    X, y = binary_data
    auto_tune(X, y, storage=storage, show=True)
    assert "no budget given: tuning for 3 s" in capsys.readouterr().out


def test_families_auto_explains_its_choice(storage, capsys):
    X, y = make_mixed(n=200)
    auto_tune(X, y, n_trials=2, storage=storage, show=True)
    out = capsys.readouterr().out
    assert "families: hgb, linear, rf, et, knn, svm for 200 rows" in out


def test_import_is_light():
    code = (
        "import sys, autotune; heavy = [m for m in ('tensorflow', 'keras', 'plotly', 'ipywidgets')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api_is_complete():
    public = {n for n in dir(autotune) if not n.startswith("_") and n not in {"annotations"}}
    modules = {"data", "engine", "exceptions", "families", "metrics", "result", "store", "ui"}
    modules |= {"leaderboard", "plots", "report", "cli", "demo", "artifacts"}
    assert public - modules - {"Callable", "Sequence", "Any"} <= set(autotune.__all__)


def test_no_autotune_warnings_in_a_normal_run(binary_data, storage):
    X, y = binary_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutotuneWarning)
        auto_tune(X, y, n_trials=3, storage=storage, show=False)


def test_studies_lists_the_store(binary_data, storage):
    X, y = binary_data
    result = auto_tune(X, y, n_trials=3, storage=storage, show=False)
    table = autotune.studies(storage)
    row = table.set_index("name").loc[result.study.study_name]
    assert row["trials"] == 3 and row["task"] == "binary" and row["metric"] == "roc_auc"
    assert row["best_score"] == pytest.approx(result.best_score_)
    loaded = autotune.load(result.study.study_name, storage)
    assert loaded.best_family_ == result.best_family_
    pd.testing.assert_frame_equal(loaded.leaderboard, result.leaderboard)


def test_the_search_opens_with_the_portfolio_pick_then_scikit_learns_defaults(binary_data, storage):
    X, y = binary_data
    result = auto_tune(X, y, n_trials=2, storage=storage, show=False)
    first, second = sorted(result.study.trials, key=lambda t: t.number)[:2]
    pick = registered_families()["hgb"].starting_points(result.profile_)[0]
    assert first.params == {"family": "hgb", **{f"hgb.{k}": v for k, v in pick.items()}}
    assert second.params["family"] == "hgb"
    assert (second.params["hgb.learning_rate"], second.params["hgb.max_iter"]) == (0.1, 100)


def test_a_short_budget_opens_with_the_cheaper_defaults(binary_data, storage):
    X, y = binary_data
    result = auto_tune(X, y, timeout=5, storage=storage, show=False)
    first = min(result.study.trials, key=lambda t: t.number)
    assert (first.params["hgb.learning_rate"], first.params["hgb.max_iter"]) == (0.1, 100)
    assert read_meta(result.study)["cv"]["n_repeats"] == 1


def _run_for(data: tuple[pd.DataFrame, pd.Series], metric_name: str) -> Run:
    """A search's state, over the data's profile, that counts trials added by hand."""
    frame, target, profile = profile_data(*data)
    codes = encode_target(target, profile)
    metric = get_metric(metric_name, profile.task)
    splits = make_splits(profile, codes, 2, seed=0)
    families = [get_family("hgb"), get_family("keras")]
    objective = Objective(frame, codes, profile, families, metric, [], splits, seed=0)
    return Run(
        objective,
        metric,
        Listener(),
        started=time.monotonic(),
        timeout=None,
        n_trials=None,
        n_splits=2,
    )


@pytest.mark.parametrize(
    "direction, sign, data, metric",
    [("minimize", 1.0, "regression_data", "rmse"), ("maximize", -1.0, "binary_data", "roc_auc")],
)
def test_a_network_is_best_only_where_it_beats_the_best_trial_on_its_own_fold(
    request, tmp_path, direction, sign, data, metric
):
    from optuna.distributions import CategoricalDistribution

    from autotune.engine import best_trial

    # The search's live "best" follows the final choice's rule, trial by trial.
    run = _run_for(request.getfixturevalue(data), metric)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", direction=direction)
    family = {"family": CategoricalDistribution(["hgb", "keras"])}

    def add(name: str, value: float, folds: dict[int, float]) -> None:
        study.add_trial(
            optuna.trial.create_trial(
                params={"family": name},
                distributions=family,
                value=sign * value,
                intermediate_values={k: sign * v for k, v in folds.items()},
            )
        )

    add("hgb", 6.3, {0: 5.8, 1: 6.8})
    add("hgb", 6.2, {0: 5.7, 1: 6.7})  # the best over its folds
    add("keras", 5.75, {k: 5.75 for k in range(5)})  # its epochs, on fold 0's holdout
    assert study.best_trial.number == 2
    assert best_trial(study).number == 1  # 5.7 on the network's fold beats its 5.75
    run.seed_from(study.trials)
    assert run.best.number == 1
    add("keras", 5.6, {k: 5.6 for k in range(5)})
    assert best_trial(study).number == 3
    run.seed_from(study.trials[-1:])
    assert run.best.number == 3
    add("hgb", 5.9, {0: 5.65, 1: 6.15})  # the new best over folds, behind it on its fold
    assert best_trial(study).number == 3
    run.seed_from(study.trials[-1:])
    assert run.best.number == 3
