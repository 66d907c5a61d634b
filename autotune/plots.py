"""Plotly figures of a study: importance, history, per-family views and family comparison.

Every figure is built in two steps: a backend-free ``_get_<plot>_info`` that reads the study
and returns plain data (what the tests check), and a thin plotly renderer. Nothing here
needs the training data, so every plot works on a study opened with :func:`autotune.load`.
When a plot cannot be drawn (too few trials, an unknown family), the figure says why in
its title and body instead of raising.

Importance is shown two ways because the search space is conditional: each family's
parameters exist only in that family's trials. Overall importance uses Optuna's default
PED-ANOVA, which scores conditional parameters and the ``family`` choice together.
Within a family, fANOVA is restricted to that family's parameters on its complete trials,
where every parameter is present.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune.store import read_meta

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "FAMILY_PARAM",
    "MIN_FAMILY_TRIALS",
    "FamiliesInfo",
    "HistoryInfo",
    "ImportanceInfo",
    "IntermediateInfo",
    "SelectionInfo",
    "family_names",
    "figure_bundle",
    "history_figure",
    "message_figure",
    "plot_contour",
    "plot_families",
    "plot_history",
    "plot_importance",
    "plot_intermediate",
    "plot_parallel",
    "plot_slice",
]

FAMILY_PARAM = "family"
#: Complete trials a family needs before fANOVA can rank its parameters meaningfully.
MIN_FAMILY_TRIALS = 5
#: How many of a family's most important parameters the slice plot shows.
N_SLICE_PARAMS = 4
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


# -- plain data ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportanceInfo:
    """Parameter importances, most important first, and how they were computed."""

    family: str | None
    evaluator: str
    params: list[str]
    importances: list[float]
    n_trials: int
    message: str | None = None


@dataclass(frozen=True)
class HistoryInfo:
    """Complete trials in order, with the running best."""

    numbers: list[int]
    values: list[float]
    families: list[str]
    best_so_far: list[float]
    metric: str
    direction: str


@dataclass(frozen=True)
class FamiliesInfo:
    """Scores and trial counts per family, best family first."""

    families: list[str]
    scores: dict[str, list[float]]
    best: dict[str, float | None]
    counts: dict[str, dict[str, int]]
    metric: str
    direction: str


@dataclass(frozen=True)
class IntermediateInfo:
    """Per-step values (folds or epochs) of every trial that reported any."""

    numbers: list[int]
    families: list[str]
    states: list[str]
    steps: list[list[int]]
    values: list[list[float]]
    metric: str


@dataclass(frozen=True)
class SelectionInfo:
    """Which trials and parameters a per-family plot (parallel, slice, contour) shows."""

    family: str | None
    params: list[str]
    trial_numbers: list[int]
    message: str | None = None
    importances: dict[str, float] = field(default_factory=dict)


# -- study helpers ------------------------------------------------------------------------
def _metric(study: optuna.Study) -> tuple[str, str]:
    meta = read_meta(study)
    direction = meta.get("direction") or study.direction.name.lower()
    return str(meta.get("metric", "score")), str(direction)


def _family(trial: FrozenTrial) -> str:
    return str(trial.params.get(FAMILY_PARAM, "?"))


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]


def family_names(study: optuna.Study) -> list[str]:
    """The study's families: those it was asked to search, then any others its trials used."""
    names = list(read_meta(study).get("families", []))
    for trial in study.get_trials(deepcopy=False):
        name = trial.params.get(FAMILY_PARAM)
        if name is not None and name not in names:
            names.append(str(name))
    return names


def _best_family(study: optuna.Study) -> str | None:
    complete = _complete(study)
    if not complete:
        return None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    pick = max if maximize else min
    return _family(pick(complete, key=lambda t: t.value))


def _varying_params(trials: Sequence[FrozenTrial], family: str) -> list[str]:
    """The family's parameters present in every one of its trials, in first-seen order.

    Parameters that take a single value (a fixed choice) carry no information and are
    dropped, so plots and fANOVA see only the knobs that moved.
    """
    prefix = f"{family}."
    names: list[str] = []
    for trial in trials:
        for name in trial.params:
            if name.startswith(prefix) and name not in names:
                names.append(name)
    present = [n for n in names if all(n in t.params for t in trials)]
    return [n for n in present if len({repr(t.params[n]) for t in trials}) > 1]


@contextlib.contextmanager
def _quiet(caught: list[str] | None = None) -> Iterator[None]:
    """Silence Optuna's logging and collect its warnings as text (shown on the figure)."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            yield
        if caught is not None:
            caught.extend(str(r.message) for r in records if r.category is not DeprecationWarning)
    finally:
        optuna.logging.set_verbosity(previous)


def _sub_study(study: optuna.Study, trials: Sequence[FrozenTrial]) -> optuna.Study:
    """An in-memory study holding some trials, so Optuna's tools see only those."""
    with _quiet():
        sub = optuna.create_study(direction=study.direction)
        sub.add_trials(trials)
    return sub


def _family_selection(study: optuna.Study, family: str | None) -> tuple[str | None, Any]:
    """The family to show (the best one by default) and its complete trials, or a message."""
    family = family or _best_family(study)
    if family is None:
        return None, "no complete trial yet"
    known = family_names(study)
    if family not in known:
        return family, f"no family {family!r} in this study (families: {', '.join(known)})"
    trials = [t for t in _complete(study) if _family(t) == family]
    if not trials:
        return family, f"no complete {family} trial yet"
    return family, trials


# -- importance ---------------------------------------------------------------------------
def _get_importance_info(study: optuna.Study, family: str | None = None) -> ImportanceInfo:
    """Importances overall (PED-ANOVA, ``family`` included) or within one family (fANOVA)."""
    if family is None:
        return _overall_importance(study)
    return _family_importance(study, family)


def _ranked(values: dict[str, float]) -> tuple[list[str], list[float]]:
    pairs = sorted(values.items(), key=lambda kv: (-float(kv[1]), kv[0]))
    return [k for k, _ in pairs], [float(v) for _, v in pairs]


def _overall_importance(study: optuna.Study) -> ImportanceInfo:
    complete = _complete(study)
    evaluator = "PED-ANOVA"
    if len(complete) < 2:
        return ImportanceInfo(
            None, evaluator, [], [], len(complete), "importance needs at least 2 complete trials"
        )
    caught: list[str] = []
    try:
        with _quiet(caught):
            values = optuna.importance.get_param_importances(study)
    except Exception as error:  # Optuna's evaluators raise several kinds on degenerate data
        return ImportanceInfo(None, evaluator, [], [], len(complete), f"not computable: {error}")
    params, importances = _ranked(values)
    message = caught[0] if caught and not any(importances) else None
    return ImportanceInfo(None, evaluator, params, importances, len(complete), message)


def _family_importance(study: optuna.Study, family: str) -> ImportanceInfo:
    evaluator = "fANOVA"
    family, selected = _family_selection(study, family)
    if isinstance(selected, str):
        return ImportanceInfo(family, evaluator, [], [], 0, selected)
    trials = selected
    params = _varying_params(trials, str(family))
    if len(trials) < MIN_FAMILY_TRIALS:
        return ImportanceInfo(
            family,
            evaluator,
            [],
            [],
            len(trials),
            f"{family} has {len(trials)} complete trial(s); importance within a family needs "
            f"at least {MIN_FAMILY_TRIALS}. Run more trials (resume the study) to see it.",
        )
    if not params:
        return ImportanceInfo(
            family, evaluator, [], [], len(trials), f"no {family} parameter varied across trials"
        )
    evaluator_obj = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        with _quiet():
            values = optuna.importance.get_param_importances(
                _sub_study(study, trials), evaluator=evaluator_obj, params=params
            )
    except Exception as error:  # fANOVA raises on degenerate data (e.g. constant scores)
        return ImportanceInfo(family, evaluator, [], [], len(trials), f"not computable: {error}")
    names, importances = _ranked(values)
    return ImportanceInfo(family, evaluator, names, importances, len(trials))


def plot_importance(study: optuna.Study, family: str | None = None) -> go.Figure:
    """Bar chart of parameter importances, overall or within one family.

    Args:
        study: An autotune study (it may be loaded without its data).
        family: None for the whole study (the ``family`` choice is one of the bars), or a
            family name for the importance of its own parameters on its trials.

    Example:
        >>> fig = plot_importance(result.study, family="hgb")  # doctest: +SKIP
    """
    import plotly.graph_objects as go

    info = _get_importance_info(study, family)
    scope = f"within {info.family}" if info.family else "overall"
    title = f"Parameter importance {scope} ({info.evaluator}, {info.n_trials} trials)"
    if not info.params:
        return message_figure(title, info.message or "no importance to show")
    fig = go.Figure(
        go.Bar(
            x=info.importances[::-1],
            y=info.params[::-1],
            orientation="h",
            text=[f"{v:.2f}" for v in info.importances[::-1]],
            textposition="outside",
            marker_color=_PALETTE[0],
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="importance (sums to 1)",
        height=max(300, 60 + 28 * len(info.params)),
        margin={"l": 10, "r": 30},
    )
    if info.message:
        _add_note(fig, info.message)
    return fig


# -- history ------------------------------------------------------------------------------
def history_info(
    numbers: Sequence[int],
    values: Sequence[float],
    families: Sequence[str],
    metric: str,
    direction: str,
) -> HistoryInfo:
    """History data from plain points (used by the live panel, which never reads the store)."""
    order = sorted(range(len(numbers)), key=lambda i: numbers[i])
    pick = max if direction == "maximize" else min
    best: list[float] = []
    for i in order:
        best.append(values[i] if not best else pick(best[-1], values[i]))
    return HistoryInfo(
        [int(numbers[i]) for i in order],
        [float(values[i]) for i in order],
        [str(families[i]) for i in order],
        best,
        metric,
        direction,
    )


def _get_history_info(study: optuna.Study) -> HistoryInfo:
    complete = _complete(study)
    metric, direction = _metric(study)
    return history_info(
        [t.number for t in complete],
        [float(t.value) for t in complete],  # type: ignore[arg-type]
        [_family(t) for t in complete],
        metric,
        direction,
    )


def history_figure(info: HistoryInfo, *, height: int = 380) -> go.Figure:
    """Scores per trial coloured by family, and the best-so-far line."""
    import plotly.graph_objects as go

    title = f"Optimisation history ({info.metric}, {info.direction})"
    if not info.numbers:
        return message_figure(title, "no complete trial yet", height=height)
    fig = go.Figure()
    for i, family in enumerate(dict.fromkeys(info.families)):
        idx = [k for k, f in enumerate(info.families) if f == family]
        fig.add_trace(
            go.Scatter(
                x=[info.numbers[k] for k in idx],
                y=[info.values[k] for k in idx],
                mode="markers",
                name=family,
                marker={"color": _PALETTE[i % len(_PALETTE)], "size": 8},
                hovertemplate=f"{family} trial %{{x}}: %{{y:.4g}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=info.numbers,
            y=info.best_so_far,
            mode="lines",
            name="best so far",
            line={"color": "black", "shape": "hv", "width": 2},
        )
    )
    fig.update_layout(title=title, xaxis_title="trial", yaxis_title=info.metric, height=height)
    span = info.numbers[-1] - info.numbers[0] + 1
    fig.update_xaxes(tickformat="d", dtick=max(1, math.ceil(span / 10)))
    return fig


def plot_history(study: optuna.Study) -> go.Figure:
    """Optimisation history: every complete trial's score by family, and the best so far."""
    return history_figure(_get_history_info(study))


# -- family comparison ----------------------------------------------------------------------
def _get_families_info(study: optuna.Study) -> FamiliesInfo:
    metric, direction = _metric(study)
    names = family_names(study)
    scores: dict[str, list[float]] = {n: [] for n in names}
    counts = {n: {"complete": 0, "pruned": 0, "failed": 0} for n in names}
    for trial in study.get_trials(deepcopy=False):
        name = trial.params.get(FAMILY_PARAM)
        if name is None:
            continue
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            scores[name].append(float(trial.value))
            counts[name]["complete"] += 1
        elif trial.state == TrialState.PRUNED:
            counts[name]["pruned"] += 1
        elif trial.state == TrialState.FAIL:
            counts[name]["failed"] += 1
    pick = max if direction == "maximize" else min
    best = {n: (pick(s) if s else None) for n, s in scores.items()}
    sign = -1.0 if direction == "maximize" else 1.0
    order = sorted(names, key=lambda n: (best[n] is None, sign * (best[n] or 0.0)))
    return FamiliesInfo(order, scores, best, counts, metric, direction)


def plot_families(study: optuna.Study) -> go.Figure:
    """Score distribution per family (box and points), best family first."""
    import plotly.graph_objects as go

    info = _get_families_info(study)
    title = f"Families compared ({info.metric}, {info.direction})"
    shown = [f for f in info.families if info.scores[f]]
    if not shown:
        return message_figure(title, "no complete trial yet")
    fig = go.Figure()
    for i, family in enumerate(shown):
        c = info.counts[family]
        fig.add_trace(
            go.Box(
                y=info.scores[family],
                name=f"{family} ({c['complete']} ok, {c['pruned']} pruned, {c['failed']} failed)",
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker_color=_PALETTE[i % len(_PALETTE)],
            )
        )
    fig.update_layout(title=title, yaxis_title=info.metric, showlegend=False, height=420)
    return fig


# -- intermediate values ----------------------------------------------------------------------
def _get_intermediate_info(study: optuna.Study) -> IntermediateInfo:
    metric, _ = _metric(study)
    numbers, families, states, steps, values = [], [], [], [], []
    for trial in study.get_trials(deepcopy=False):
        if not trial.intermediate_values:
            continue
        pairs = sorted(trial.intermediate_values.items())
        numbers.append(trial.number)
        families.append(_family(trial))
        states.append(trial.state.name.lower())
        steps.append([int(s) for s, _ in pairs])
        values.append([float(v) for _, v in pairs])
    return IntermediateInfo(numbers, families, states, steps, values, metric)


def plot_intermediate(study: optuna.Study) -> go.Figure:
    """Per-fold (or per-epoch) values of each trial; pruned trials dashed and red."""
    import plotly.graph_objects as go

    info = _get_intermediate_info(study)
    title = f"Intermediate values ({info.metric} per fold or epoch)"
    if not info.numbers:
        return message_figure(title, "no trial reported intermediate values")
    fig = go.Figure()
    legend_seen: set[str] = set()
    for number, family, state, steps, values in zip(
        info.numbers, info.families, info.states, info.steps, info.values, strict=True
    ):
        pruned = state == "pruned"
        group = "pruned" if pruned else state
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                mode="lines+markers",
                name=group,
                legendgroup=group,
                showlegend=group not in legend_seen,
                line={
                    "color": "#d62728" if pruned else "#1f77b4",
                    "dash": "dash" if pruned else "solid",
                    "width": 1,
                },
                opacity=0.8 if pruned else 0.5,
                hovertemplate=f"trial {number} ({family}, {state}) step %{{x}}: %{{y:.4g}}"
                "<extra></extra>",
            )
        )
        legend_seen.add(group)
    fig.update_layout(title=title, xaxis_title="step", yaxis_title=info.metric, height=420)
    return fig


# -- per-family parameter views ------------------------------------------------------------------
def _get_selection_info(
    study: optuna.Study, family: str | None, n_params: int | None = None
) -> SelectionInfo:
    """A family's complete trials and its parameters, most important first when known."""
    family, selected = _family_selection(study, family)
    if isinstance(selected, str):
        return SelectionInfo(family, [], [], selected)
    trials = selected
    params = _varying_params(trials, str(family))
    ranking: dict[str, float] = {}
    if len(trials) >= MIN_FAMILY_TRIALS and len(params) > 1:
        info = _family_importance(study, str(family))
        ranking = dict(zip(info.params, info.importances, strict=True))
        params = sorted(params, key=lambda p: -ranking.get(p, -1.0))
    if n_params is not None:
        params = params[:n_params]
    message = None if params else f"no {family} parameter varied across its trials"
    return SelectionInfo(family, params, [t.number for t in trials], message, ranking)


def _selected_trials(study: optuna.Study, info: SelectionInfo) -> list[FrozenTrial]:
    wanted = set(info.trial_numbers)
    return [t for t in _complete(study) if t.number in wanted]


def _optuna_plot(
    study: optuna.Study, info: SelectionInfo, kind: str, title: str, height: int
) -> go.Figure:
    """Render with Optuna's own plot on a study of the family's trials only."""
    from optuna import visualization

    if info.message:
        return message_figure(title, info.message)
    metric, _ = _metric(study)
    plot = {
        "parallel": visualization.plot_parallel_coordinate,
        "slice": visualization.plot_slice,
        "contour": visualization.plot_contour,
    }[kind]
    sub = _sub_study(study, _selected_trials(study, info))
    try:
        with _quiet():
            fig = plot(sub, params=info.params, target_name=metric)
    except Exception as error:  # Optuna refuses some degenerate inputs; show why instead
        return message_figure(title, f"not drawable: {error}")
    fig.update_layout(title=title, height=height)
    return fig


def plot_parallel(study: optuna.Study, family: str | None = None) -> go.Figure:
    """Parallel coordinates of one family's parameters (the best family by default)."""
    info = _get_selection_info(study, family)
    title = f"Parallel coordinates: {info.family} ({len(info.trial_numbers)} trials)"
    return _optuna_plot(study, info, "parallel", title, 450)


def plot_slice(study: optuna.Study, family: str | None = None) -> go.Figure:
    """Score against each of a family's most important parameters."""
    info = _get_selection_info(study, family, N_SLICE_PARAMS)
    title = f"Slice: {info.family}, top parameters"
    return _optuna_plot(study, info, "slice", title, 420)


def plot_contour(study: optuna.Study, family: str | None = None) -> go.Figure:
    """Score over a family's two most important parameters."""
    info = _get_selection_info(study, family, 2)
    title = f"Contour: {info.family}, top two parameters"
    if not info.message and len(info.params) < 2:
        info = SelectionInfo(
            info.family,
            info.params,
            info.trial_numbers,
            f"a contour needs two {info.family} parameters that varied; found {len(info.params)}",
        )
    return _optuna_plot(study, info, "contour", title, 500)


# -- rendering helpers ------------------------------------------------------------------------
def message_figure(title: str, message: str, *, height: int = 300) -> go.Figure:
    """An empty figure that explains why there is nothing to plot."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        title=title,
        height=height,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"size": 14},
            }
        ],
    )
    return fig


def _add_note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(
        text=text, xref="paper", yref="paper", x=0, y=-0.18, showarrow=False, font={"size": 11}
    )


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """A display-data bundle of a figure, for widgets that render outside the main thread.

    ``Output.append_display_data`` would go through IPython's formatters, which are not
    thread-safe and depend on the renderer; a ready bundle renders the same everywhere the
    plotly mimetype is known (JupyterLab, Notebook 7, Voilà).
    """
    import json

    payload = json.loads(fig.to_json())
    payload["config"] = {"displaylogo": False, "responsive": True}
    return {
        "output_type": "display_data",
        "data": {
            "application/vnd.plotly.v1+json": payload,
            "text/plain": f"<Figure: {fig.layout.title.text or 'plot'}>",
        },
        "metadata": {},
    }
