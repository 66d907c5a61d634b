"""Notebook widgets built without a kernel and driven directly: panel, controls, explorer."""

from __future__ import annotations

import time

import pytest
from sklearn.datasets import load_iris

import autotune
from autotune.engine import Listener, RunInfo, TrialReport
from autotune.families import choose_families
from autotune.ui import ConsoleProgress, _console, controls, explore, make_listener
from autotune.ui._panel import LivePanel

PLOTLY = "application/vnd.plotly.v1+json"


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True, as_frame=True)


def _info(**kw) -> RunInfo:
    base = dict(
        study_name="s",
        storage="sqlite:///x.db",
        metric="log_loss",
        direction="minimize",
        families=("linear", "knn"),
        timeout=None,
        n_trials=10,
        n_earlier_trials=0,
    )
    return RunInfo(**{**base, **kw})


def _report(number: int, family: str, score: float | None, state: str = "complete", **kw):
    base = dict(
        number=number,
        family=family,
        state=state,
        score=score,
        duration=0.1,
        params={"family": family},
        best_score=score,
        best_family=family,
        n_complete=1,
        n_pruned=0,
        n_failed=0,
        n_new=number + 1,
        elapsed=1.0,
    )
    return TrialReport(**{**base, **kw})


# -- the live panel -------------------------------------------------------------------------
def test_stop_button_makes_should_stop_true():
    panel = LivePanel()
    assert panel.should_stop() is False
    panel.stop_button.click()
    assert panel.should_stop() is True
    assert panel.stop_button.disabled


def test_panel_follows_the_events():
    panel = LivePanel()
    panel.on_start(_info())
    assert "study <code>s</code>" in panel.title.value
    panel.on_trial_start(0, "knn")
    assert "#0" in panel.current.value and "knn" in panel.current.value
    panel.on_trial_end(_report(0, "knn", 0.3))
    panel.on_trial_end(
        _report(1, "linear", None, state="pruned", best_score=0.3, best_family="knn", n_pruned=1)
    )
    assert panel.progress.value == pytest.approx(0.2)
    assert panel.progress.description.startswith("2/10 trials · ~")
    assert panel.progress.description.endswith(" s left")  # 8 more trials at this pace
    assert "complete <b>1</b> · pruned <b>1</b> · failed <b>0</b>" in panel.counts.value
    assert "0.3" in panel.best.value and "knn" in panel.best.value
    assert "<td>knn</td><td>1</td><td>0.3</td>" in panel.families.value
    assert PLOTLY in panel.chart.outputs[0]["data"]
    panel.on_message("hello")
    assert "hello" in panel.log.value
    panel.on_finish(3.0)
    assert panel.progress.value == 1.0 and panel.progress.bar_style == "success"
    traces = panel.chart.outputs[0]["data"][PLOTLY]["data"]
    assert [t["name"] for t in traces] == ["knn", "best so far"]


def test_time_budget_progress_moves_between_trials():
    panel = LivePanel()
    panel.on_start(_info(timeout=2.0, n_trials=None))
    first = panel.progress.value
    time.sleep(1.2)
    assert panel.progress.value > first
    label = panel.progress.description
    assert "/2 s · ~" in label and label.endswith(" s left")
    assert 0 <= int(label.split("~")[1].split()[0]) <= 1  # about 0.8 s of 2 s remain
    panel.on_finish(1.2)
    assert panel.progress.value == 1.0


def test_stopped_run_is_marked():
    panel = LivePanel()
    panel.on_start(_info())
    panel.stop()
    panel.on_finish(1.0)
    assert panel.progress.bar_style == "warning"
    assert panel.progress.description.startswith("stopped")


def test_blocking_panel_offers_interrupt_instead_of_stop():
    panel = LivePanel(stoppable=False)
    shown = panel.widget.children[2].children[0].children
    assert panel.stop_hint in shown and panel.stop_button not in shown


def test_make_listener_picks_the_display(monkeypatch):
    assert type(make_listener(False)) is Listener
    assert isinstance(make_listener("auto"), ConsoleProgress)
    shown = []
    monkeypatch.setattr(_console, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", shown.append)
    panel = make_listener("auto")
    assert isinstance(panel, LivePanel)
    assert shown == [panel.widget]


# -- the controls ---------------------------------------------------------------------------
def test_controls_preselect_the_auto_families_and_read_changes(iris, tmp_path):
    X, y = iris
    form = controls(X, y, storage=f"sqlite:///{tmp_path}/s.db", timeout=60)
    _, _, profile = autotune.profile_data(X, y)
    auto, _ = choose_families(profile, "auto", 60)
    ticked = [n for n, box in form.family_boxes.items() if box.value]
    assert ticked == [f.name for f in auto]
    form.family_boxes[ticked[0]].value = False
    form.metric.value = "accuracy"
    form.n_trials.value = 7
    form.timeout.value = 120
    form.strategy.value = "random"
    form.study_name.value = "mine"
    options = form.options()
    assert options["families"] == ticked[1:]
    assert options["metric"] == "accuracy"
    assert (options["n_trials"], options["timeout"]) == (7, 120.0)
    assert (options["strategy"], options["study_name"]) == ("random", "mine")
    assert options["storage"] == f"sqlite:///{tmp_path}/s.db"


def test_controls_refuse_to_start_without_families(iris):
    X, y = iris
    form = controls(X, y)
    for box in form.family_boxes.values():
        box.value = False
    form.start_button.click()
    assert form.thread is None
    assert "at least one family" in form.status.value


def test_controls_start_runs_in_a_thread_and_keep_the_result(iris, tmp_path):
    X, y = iris
    form = controls(X, y, storage=f"sqlite:///{tmp_path}/s.db", families=["linear", "knn"])
    form.n_trials.value = 4
    form.start_button.click()
    assert form.thread is not None and form.start_button.disabled
    result = form.wait(120)
    assert result is form.result and result is not None
    assert result.n_new_trials_ == 4
    assert set(result.leaderboard["family"]) - {"ensemble"} <= {"linear", "knn"}
    assert "done" in form.status.value and not form.start_button.disabled
    assert form.panel.progress.bar_style == "success"
    assert "complete" in form.panel.counts.value


def test_controls_stop_ends_the_run_with_a_normal_result(iris, tmp_path):
    X, y = iris
    form = controls(X, y, storage=f"sqlite:///{tmp_path}/s.db", families=["knn"])
    form.n_trials.value = 500
    form.start_button.click()
    deadline = time.monotonic() + 60
    while "complete <b>0</b>" in form.panel.counts.value and time.monotonic() < deadline:
        time.sleep(0.05)
    form.stop_button.click()
    result = form.wait(120)
    assert result is not None and result.n_new_trials_ < 500
    assert form.panel.progress.bar_style == "warning"
    assert len(autotune.load(result.study_.study_name, result.storage).leaderboard) >= 1


def test_controls_show_a_failed_run(iris, tmp_path):
    X, y = iris
    form = controls(X, y, families=["knn"])
    form.storage.value = f"sqlite:///{tmp_path}"  # a folder, not a database file
    form.n_trials.value = 2
    form.start_button.click()
    with pytest.raises(autotune.StoreError):
        form.wait(60)
    assert "failed" in form.status.value
    assert form.panel.progress.bar_style == "danger"


# -- the explorer ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tuned(iris, tmp_path_factory):
    X, y = iris
    storage = f"sqlite:///{tmp_path_factory.mktemp('explore')}/s.db"
    autotune.auto_tune(
        X, y, n_trials=12, families=["linear", "knn"], storage=storage, study_name="ex", show=False
    )
    return autotune.load("ex", storage)


def test_explorer_tabs_draw_figures_for_the_chosen_family(tuned):
    view = explore(tuned)
    assert list(view.family.options)[1:] == ["linear", "knn"]
    assert view.family.value == tuned.best_family_
    assert PLOTLY in view.outputs[0].outputs[0]["data"]  # the first tab is drawn at once
    for index in range(1, len(view.outputs)):
        view.tabs.selected_index = index
        assert PLOTLY in view.outputs[index].outputs[0]["data"]
    other = next(f for f in ("linear", "knn") if f != tuned.best_family_)
    view.tabs.selected_index = 4
    view.family.value = other
    title = view.outputs[4].outputs[0]["data"][PLOTLY]["layout"]["title"]["text"]
    assert other in title


def test_explorer_trials_table_filters_and_sorts(tuned):
    view = explore(tuned)
    view.family.value = "all families"
    assert len(view.table_frame()) == len(tuned.leaderboard)
    view.sort_by.value = "trial"
    view.ascending.value = False
    column = view.table_frame()["trial"]
    numbers = list(column.dropna())
    assert numbers == sorted(numbers, reverse=True)
    assert column.isna().sum() <= 1 and column.iloc[: len(numbers)].notna().all()  # ensemble last
    assert f"<td>{numbers[0]}</td>" in view.table.value
    view.family.value = "knn"
    assert set(view.table_frame()["family"]) == {"knn"}
    assert not any(c.startswith("linear.") for c in view.table_frame().columns)
