"""Plots: the info data behind each figure, on a real multi-family study and edge cases."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna
import plotly.graph_objects as go
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from sklearn.datasets import load_wine

import autotune
from autotune import plots
from autotune.data import profile_data
from autotune.engine import Objective, encode_target, make_splits
from autotune.families import get_family
from autotune.store import META_KEY, read_meta

FAMILIES = ["linear", "knn"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> autotune.TuneResult:
    """A real study over two families with enough complete trials of each for per-family
    importance: a run, then random trials of the same objective with pruning off (on
    repeated folds the pruner rightly stops most trials of the weaker family), then a
    resumed run that makes the result."""
    folder = tmp_path_factory.mktemp("plots")
    url = f"sqlite:///{folder}/s.db"
    X, y = load_wine(return_X_y=True, as_frame=True)
    options = {"families": FAMILIES, "strategy": "random", "storage": url, "show": False}
    first = autotune.auto_tune(X, y, n_trials=4, study_name="plots", **options)
    frame, target, profile = profile_data(X, y)
    codes = encode_target(target, profile)
    cv = read_meta(first.study)["cv"]
    objective = Objective(
        frame,
        codes,
        profile,
        [get_family(f) for f in FAMILIES],
        first.metric_,
        [],
        make_splits(profile, codes, cv["n_splits"], cv["seed"], cv["n_repeats"]),
        seed=0,
    )
    study = optuna.load_study(
        study_name="plots",
        storage=url,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )
    study.optimize(objective, n_trials=16)
    return autotune.auto_tune(X, y, n_trials=2, study_name="plots", **options)


def _complete_by_family(study: optuna.Study, family: str) -> int:
    return sum(
        t.state == TrialState.COMPLETE and t.params.get("family") == family for t in study.trials
    )


def _hand_study(n_svm: int = 3, pruned: bool = True) -> optuna.Study:
    """A small in-memory study written by hand, with the metadata autotune records."""
    study = optuna.create_study(direction="minimize")
    study.set_user_attr(
        META_KEY, {"metric": "rmse", "direction": "minimize", "families": ["svm", "knn"]}
    )
    fam = CategoricalDistribution(["svm", "knn"])
    c = FloatDistribution(1e-3, 1e3, log=True)
    for i in range(n_svm):
        study.add_trial(
            create_trial(
                params={"family": "svm", "svm.C": 10.0**i},
                distributions={"family": fam, "svm.C": c},
                value=1.0 / (i + 1),
                intermediate_values={0: 1.0, 1: 1.0 / (i + 1)},
            )
        )
    if pruned:
        study.add_trial(
            create_trial(
                state=TrialState.PRUNED,
                params={"family": "svm", "svm.C": 0.01},
                distributions={"family": fam, "svm.C": c},
                intermediate_values={0: 3.0},
            )
        )
    return study


# -- importance --------------------------------------------------------------------------
def test_overall_importance_uses_ped_anova_and_includes_family(tuned):
    info = plots._get_importance_info(tuned.study)
    assert info.evaluator == "PED-ANOVA"
    assert info.family is None
    assert "family" in info.params
    assert {p.split(".")[0] for p in info.params if p != "family"} <= set(FAMILIES)
    assert info.importances == sorted(info.importances, reverse=True)
    assert sum(info.importances) == pytest.approx(1.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_importance_ranks_that_familys_parameters(tuned, family):
    assert _complete_by_family(tuned.study, family) >= plots.MIN_FAMILY_TRIALS
    info = plots._get_importance_info(tuned.study, family)
    assert info.evaluator == "fANOVA"
    assert info.message is None
    assert len(info.params) >= 2
    assert all(p.startswith(f"{family}.") for p in info.params)
    assert "family" not in info.params
    assert info.n_trials == _complete_by_family(tuned.study, family)
    assert sum(info.importances) == pytest.approx(1.0)
    fig = plots.plot_importance(tuned.study, family=family)
    assert list(fig.data[0].y) == info.params[::-1]


def test_family_importance_with_too_few_trials_explains_itself():
    study = _hand_study(n_svm=3)
    info = plots._get_importance_info(study, "svm")
    assert info.params == []
    assert "at least" in info.message and "svm" in info.message
    fig = plots.plot_importance(study, family="svm")
    assert isinstance(fig, go.Figure)
    assert not fig.data
    assert "at least" in fig.layout.annotations[0].text


def test_unknown_family_gives_a_message_not_an_error(tuned):
    for plot in (plots.plot_importance, plots.plot_parallel, plots.plot_slice, plots.plot_contour):
        fig = plot(tuned.study, family="nope")
        assert "no family 'nope'" in fig.layout.annotations[0].text


def test_empty_study_draws_message_figures():
    study = optuna.create_study()
    for plot in (
        plots.plot_importance,
        plots.plot_history,
        plots.plot_families,
        plots.plot_intermediate,
        plots.plot_parallel,
        plots.plot_slice,
        plots.plot_contour,
    ):
        fig = plot(study)
        assert isinstance(fig, go.Figure)
        assert fig.layout.annotations, plot.__name__


# -- history, families, intermediate -----------------------------------------------------------
def test_history_best_so_far_follows_the_direction(tuned):
    info = plots._get_history_info(tuned.study)
    assert info.direction == "minimize" and info.metric == "log_loss"
    assert info.numbers == sorted(info.numbers)
    assert all(b <= a for a, b in zip(info.best_so_far, info.best_so_far[1:], strict=False))
    assert info.best_so_far[-1] == pytest.approx(tuned.best_score_)
    assert set(info.families) <= set(FAMILIES)

    low = plots.history_info([0, 1, 2], [3.0, 1.0, 2.0], ["a", "b", "a"], "rmse", "minimize")
    assert low.best_so_far == [3.0, 1.0, 1.0]


def test_families_info_counts_every_trial(tuned):
    info = plots._get_families_info(tuned.study)
    assert info.families[0] == tuned.best_family_
    counted = sum(sum(c.values()) for c in info.counts.values())
    finished = [t for t in tuned.study.trials if t.state.is_finished()]
    assert counted == len(finished)
    for family in FAMILIES:
        assert len(info.scores[family]) == info.counts[family]["complete"]
    fig = plots.plot_families(tuned.study)
    assert len(fig.data) == len([f for f in info.families if info.scores[f]])


def test_intermediate_values_include_pruned_trials():
    info = plots._get_intermediate_info(_hand_study())
    assert info.states.count("pruned") == 1
    assert info.steps[-1] == [0] and info.values[-1] == [3.0]
    fig = plots.plot_intermediate(_hand_study())
    assert len(fig.data) == 4
    assert any(trace.line.dash == "dash" for trace in fig.data)


# -- per-family views -------------------------------------------------------------------------
def test_selection_of_parallel_slice_and_contour(tuned):
    family = tuned.best_family_
    for plot, most in (
        (plots.plot_parallel, None),
        (plots.plot_slice, plots.N_SLICE_PARAMS),
        (plots.plot_contour, 2),
    ):
        info = plots._get_selection_info(tuned.study, family, most)
        assert info.message is None
        assert info.params and all(p.startswith(f"{family}.") for p in info.params)
        if most:
            assert len(info.params) <= most
        ranked = [p for p in plots._get_importance_info(tuned.study, family).params]
        assert info.params == [p for p in ranked if p in info.params]
        fig = plot(tuned.study, family=family)
        assert fig.data, plot.__name__
    assert len(plots._get_selection_info(tuned.study, family, 2).params) == 2


def test_default_family_is_the_best_one(tuned):
    assert plots._get_selection_info(tuned.study, None).family == tuned.best_family_


def test_result_methods_return_figures(tuned):
    for name in (
        "plot_importance",
        "plot_history",
        "plot_parallel",
        "plot_slice",
        "plot_contour",
        "plot_families",
        "plot_intermediate",
    ):
        assert isinstance(getattr(tuned, name)(), go.Figure), name


def test_plots_work_in_a_new_process_without_the_data(tuned):
    storage = tuned.storage
    code = textwrap.dedent(
        f"""
        import sys
        import autotune
        assert "plotly" not in sys.modules and "ipywidgets" not in sys.modules
        result = autotune.load("plots", {storage!r})
        fig = result.plot_importance()
        within = result.plot_importance(family={tuned.best_family_!r})
        assert "plotly" in sys.modules and "ipywidgets" not in sys.modules
        print(type(fig).__name__, len(fig.data), len(within.data))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Figure", "1", "1"]


def test_import_autotune_loads_no_plotting_or_widgets():
    code = (
        "import sys, autotune; "
        "print([m for m in ('plotly', 'ipywidgets', 'tensorflow', 'keras') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_figure_bundle_is_plain_json():
    info = plots.history_info([0, 1], [0.5, 0.7], ["a", "b"], "auc", "maximize")
    fig = plots.history_figure(info)
    bundle = plots.figure_bundle(fig)
    payload = bundle["data"]["application/vnd.plotly.v1+json"]
    assert [trace["name"] for trace in payload["data"]] == ["a", "b", "best so far"]
    assert payload["data"][-1]["y"] == [0.5, 0.7]
