"""The study explorer: a family filter, one tab per plot, and a sortable trials table.

Figures are drawn when their tab is first shown and kept until the family changes or
Refresh re-reads the store, so opening a large study stays quick.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from autotune import plots
from autotune.leaderboard import leaderboard

if TYPE_CHECKING:
    from autotune.result import TuneResult

__all__ = ["Explorer"]

ALL = "all families"
#: Rows of the trials table shown at once.
N_ROWS = 100
_TABS: tuple[tuple[str, Callable[[Any, str | None], Any]], ...] = (
    ("Importance", lambda s, f: plots.plot_importance(s, family=None)),
    ("Within family", lambda s, f: plots.plot_importance(s, family=f)),
    ("History", lambda s, f: plots.plot_history(s)),
    ("Families", lambda s, f: plots.plot_families(s)),
    ("Parallel", lambda s, f: plots.plot_parallel(s, family=f)),
    ("Slice", lambda s, f: plots.plot_slice(s, family=f)),
    ("Contour", lambda s, f: plots.plot_contour(s, family=f)),
    ("Intermediate", lambda s, f: plots.plot_intermediate(s)),
)


class Explorer:
    """An ipywidgets dashboard over one study (a result, or one loaded without data).

    Example:
        >>> autotune.load("target-3f9a1c2e").explore()  # doctest: +SKIP
    """

    def __init__(self, result: TuneResult) -> None:
        self.result = result
        self.study = result.study
        families = plots.family_names(self.study)
        best = getattr(result, "best_family_", None) or (families[0] if families else None)
        self.family = widgets.Dropdown(
            options=[ALL, *families], value=best or ALL, description="family"
        )
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.summary = widgets.HTML()
        self.outputs = [widgets.Output() for _ in _TABS]
        self.sort_by = widgets.Dropdown(description="sort by")
        self.ascending = widgets.ToggleButtons(
            options=[("leaderboard order", None), ("ascending", True), ("descending", False)],
            value=None,
        )
        self.table = widgets.HTML()
        trials_tab = widgets.VBox([widgets.HBox([self.sort_by, self.ascending]), self.table])
        self.tabs = widgets.Tab(children=[*self.outputs, trials_tab])
        for i, (name, _) in enumerate(_TABS):
            self.tabs.set_title(i, name)
        self.tabs.set_title(len(_TABS), "Trials")
        self._drawn: set[int] = set()

        self.family.observe(lambda _: self._reset(), names="value")
        self.tabs.observe(lambda _: self._draw_selected(), names="selected_index")
        self.sort_by.observe(lambda _: self._render_table(), names="value")
        self.ascending.observe(lambda _: self._render_table(), names="value")
        self.refresh_button.on_click(lambda _: self._reset())
        self.widget = widgets.VBox(
            [widgets.HBox([self.family, self.refresh_button]), self.summary, self.tabs]
        )
        self.widget.add_class("autotune-explorer")
        self._reset()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def selected_family(self) -> str | None:
        """The family the per-family tabs show (None: the best family)."""
        return None if self.family.value == ALL else self.family.value

    def figure(self, index: int) -> Any:
        """The figure of tab ``index`` for the selected family."""
        return _TABS[index][1](self.study, self.selected_family)

    def _reset(self) -> None:
        self._drawn.clear()
        self._frame = leaderboard(self.study)
        self._render_summary()
        columns = [c for c in self._frame.columns if c != "error"]
        self.sort_by.options = columns
        if self.sort_by.value not in columns:
            self.sort_by.value = "score" if "score" in columns else columns[0]
        self._render_table()
        self._draw_selected()

    def _draw_selected(self) -> None:
        index = self.tabs.selected_index
        if index is None or index >= len(_TABS) or index in self._drawn:
            return
        self.outputs[index].outputs = (plots.figure_bundle(self.figure(index)),)
        self._drawn.add(index)

    def _render_summary(self) -> None:
        frame = self._frame
        if not frame.empty:
            frame = frame[frame["trial"].notna()]  # the ensemble row is not a trial
        counts = frame["state"].value_counts().to_dict() if not frame.empty else {}
        meta_metric = getattr(getattr(self.result, "metric_", None), "name", None) or "score"
        best = getattr(self.result, "best_score_", None)
        best_text = (
            f"best {meta_metric} <b>{best:.5g}</b> ({self.result.best_family_})"
            if best is not None
            else "no complete trial yet"
        )
        self.summary.value = (
            f"study <code>{html.escape(self.study.study_name)}</code> · {len(frame)} trials ("
            + ", ".join(f"{n} {s}" for s, n in counts.items())
            + f") · {best_text}"
        )

    def table_frame(self) -> pd.DataFrame:
        """The trials table as shown: the family filter and the sort applied."""
        frame = self._frame
        family = self.selected_family
        if family is not None and not frame.empty:
            frame = frame[frame["family"] == family].dropna(axis=1, how="all")
        if self.ascending.value is not None and self.sort_by.value in frame.columns:
            frame = frame.sort_values(
                self.sort_by.value, ascending=self.ascending.value, kind="stable"
            )
        return frame

    def _render_table(self) -> None:
        frame = self.table_frame()
        shown = frame.head(N_ROWS)
        more = f"<br><small>{len(frame) - N_ROWS} more rows</small>" if len(frame) > N_ROWS else ""
        self.table.value = (
            "<div style='max-height:420px;overflow:auto'>"
            + shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
            + f"</div>{more}"
        )
