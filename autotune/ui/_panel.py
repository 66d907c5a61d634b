"""The live notebook panel: a listener that shows a study's progress as ipywidgets.

The engine calls it from whatever thread runs the search. Widget state changes are sent
to the front end from that thread, which ipywidgets allows; figures are written into an
``Output`` widget as ready display bundles, never through ``with output:``, which only
captures output of the kernel's main thread.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import ipywidgets as widgets

from autotune.engine import Listener, RunInfo, TrialReport
from autotune.plots import figure_bundle, history_figure, history_info

__all__ = ["LivePanel"]

#: Least seconds between two redraws of the history chart (each sends a whole figure).
CHART_INTERVAL = 1.0
#: Seconds between two moves of a time-budget progress bar while a trial runs.
TICK_INTERVAL = 0.5
#: Lines of engine messages kept in the panel.
N_MESSAGES = 6


class LivePanel(Listener):
    """Progress, counts, best score, running trial, history chart, families and Stop.

    Display it (it renders as its ``widget``) and pass it as the listener of a run; the
    Stop button makes :meth:`should_stop` return True, so the search ends after the trial
    in progress and the run returns a normal result.

    A kernel handles button clicks only while no cell runs, so a Stop button works only
    when the run happens in a background thread (as :func:`autotune.controls` does). A
    panel of a blocking ``auto_tune`` cell is made with ``stoppable=False`` and says to
    interrupt the kernel instead, which the engine also turns into a normal result.

    Example:
        >>> panel = LivePanel()  # doctest: +SKIP
        >>> display(panel)  # doctest: +SKIP
        >>> TuneResult(n_trials=20).fit(X, y, listener=panel)  # doctest: +SKIP
    """

    def __init__(self, title: str = "autotune", *, stoppable: bool = True) -> None:
        self._stop_requested = False
        self._lock = threading.Lock()
        self._info: RunInfo | None = None
        self._started = time.monotonic()
        self._running = False
        self._n_new = 0
        self._last_chart = 0.0
        self._points: tuple[list[int], list[float], list[str]] = ([], [], [])
        self._families: dict[str, dict[str, Any]] = {}
        self._messages: list[str] = []
        self._ticker: threading.Thread | None = None

        self.title = widgets.HTML(f"<b>{html.escape(title)}</b>")
        self.progress = widgets.FloatProgress(
            value=0.0,
            min=0.0,
            max=1.0,
            description="waiting",
            bar_style="info",
            layout=widgets.Layout(width="100%"),
            style={"description_width": "120px"},
        )
        self.counts = widgets.HTML(self._counts_html(0, 0, 0))
        self.best = widgets.HTML("best: –")
        self.current = widgets.HTML("trial in progress: –")
        self.stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            tooltip="Finish the trial in progress, keep every result, and return the best model",
        )
        self.stop_button.on_click(lambda _: self.stop())
        self.stop_hint = widgets.HTML(
            "<small>To stop early, interrupt the kernel (■): the search ends, every result "
            "is kept and the best model so far is returned.</small>"
        )
        self.chart = widgets.Output(layout=widgets.Layout(min_height="300px"))
        self.families = widgets.HTML("")
        self.log = widgets.HTML("")
        status = widgets.VBox(
            [
                self.counts,
                self.best,
                self.current,
                self.stop_button if stoppable else self.stop_hint,
            ],
            layout=widgets.Layout(width="40%"),
        )
        side = widgets.VBox([self.families, self.log], layout=widgets.Layout(width="60%"))
        self.widget = widgets.VBox(
            [self.title, self.progress, widgets.HBox([status, side]), self.chart],
            layout=widgets.Layout(border="1px solid #ddd", padding="6px"),
        )
        self.widget.add_class("autotune-panel")

    # -- display -----------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- stopping ----------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to end after the trial in progress."""
        self._stop_requested = True
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        self._log("stop requested: finishing the trial in progress")

    def should_stop(self) -> bool:
        return self._stop_requested

    # -- engine events -------------------------------------------------------------------
    def on_start(self, info: RunInfo) -> None:
        self._info = info
        self._started = time.monotonic()
        self._running = True
        self._families = {name: {"complete": 0, "best": None} for name in info.families}
        earlier = (
            f", resuming {info.n_earlier_trials} earlier trials" if info.n_earlier_trials else ""
        )
        self.title.value = (
            f"<b>autotune</b> · study <code>{html.escape(info.study_name)}</code> · "
            f"{html.escape(info.metric)} ({info.direction}){earlier}"
        )
        self.progress.bar_style = "info"
        self._update_progress()
        self._render_families()
        if info.timeout is not None:
            self._ticker = threading.Thread(target=self._tick, name="autotune-panel", daemon=True)
            self._ticker.start()

    def on_message(self, text: str) -> None:
        self._log(text)

    def on_trial_start(self, number: int, family: str) -> None:
        self.current.value = f"trial in progress: <b>#{number}</b> ({html.escape(family)})"

    def on_trial_end(self, report: TrialReport) -> None:
        with self._lock:
            self._n_new = report.n_new
            self.counts.value = self._counts_html(
                report.n_complete, report.n_pruned, report.n_failed
            )
            if report.best_score is not None:
                self.best.value = (
                    f"best {self._metric}: <b>{report.best_score:.5g}</b> "
                    f"({html.escape(report.best_family or '?')})"
                )
            self.current.value = (
                f"last: #{report.number} {html.escape(report.family)} {report.state}"
                + (f" ({html.escape(report.message)})" if report.message else "")
            )
            if report.state == "complete" and report.score is not None:
                numbers, values, families = self._points
                numbers.append(report.number)
                values.append(float(report.score))
                families.append(report.family)
                entry = self._families.setdefault(report.family, {"complete": 0, "best": None})
                entry["complete"] += 1
                if entry["best"] is None or self._better(report.score, entry["best"]):
                    entry["best"] = float(report.score)
            self._update_progress()
            self._render_families()
            if time.monotonic() - self._last_chart >= CHART_INTERVAL:
                self._render_chart()

    def on_finish(self, elapsed: float) -> None:
        self._running = False
        with self._lock:
            self.progress.value = 1.0
            self.progress.bar_style = "warning" if self._stop_requested else "success"
            how = "stopped" if self._stop_requested else "finished"
            self.progress.description = f"{how} in {elapsed:.0f} s"
            self.current.value = f"{how}: {self._n_new} new trials, final model fitted"
            self.stop_button.disabled = True
            self.stop_button.description = "Stop"
            self._render_chart()

    def fail(self, error: BaseException) -> None:
        """Show that the run ended with an error (used by the controls' worker thread)."""
        self._running = False
        self.progress.bar_style = "danger"
        self.progress.description = "failed"
        self.stop_button.disabled = True
        self._log(f"error: {error}")

    # -- rendering -----------------------------------------------------------------------
    @property
    def _metric(self) -> str:
        return self._info.metric if self._info else "score"

    def _better(self, a: float, b: float) -> bool:
        maximize = self._info is not None and self._info.direction == "maximize"
        return a > b if maximize else a < b

    @staticmethod
    def _counts_html(complete: int, pruned: int, failed: int) -> str:
        return (
            f"<span class='autotune-counts'>complete <b>{complete}</b> · pruned <b>{pruned}</b>"
            f" · failed <b>{failed}</b></span>"
        )

    def _fraction(self) -> tuple[float, str]:
        info = self._info
        if info is None:
            return 0.0, "waiting"
        elapsed = time.monotonic() - self._started
        parts: list[tuple[float, str]] = []
        if info.timeout:
            parts.append((elapsed / info.timeout, f"{elapsed:.0f}/{info.timeout:.0f} s"))
        if info.n_trials:
            parts.append((self._n_new / info.n_trials, f"{self._n_new}/{info.n_trials} trials"))
        if not parts:
            return 0.0, f"{self._n_new} trials"
        fraction, label = max(parts)
        if 0 < fraction < 1 and elapsed > 0:
            # the budget that binds first sets the expected time to finish
            label += f" · ~{_duration(elapsed / fraction - elapsed)} left"
        return min(fraction, 1.0), label

    def _update_progress(self) -> None:
        fraction, label = self._fraction()
        self.progress.value = fraction
        self.progress.description = label

    def _tick(self) -> None:
        while self._running:
            time.sleep(TICK_INTERVAL)
            if self._running:
                self._update_progress()

    def _render_families(self) -> None:
        rows = sorted(
            self._families.items(),
            key=lambda kv: (kv[1]["best"] is None, -(kv[1]["best"] or 0.0) * self._sign),
        )
        body = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{entry['complete']}</td>"
            f"<td>{_fmt(entry['best'])}</td></tr>"
            for name, entry in rows
        )
        self.families.value = (
            "<table class='autotune-families'><tr><th>family</th><th>trials</th>"
            f"<th>best {html.escape(self._metric)}</th></tr>{body}</table>"
        )

    @property
    def _sign(self) -> float:
        return 1.0 if self._info is not None and self._info.direction == "maximize" else -1.0

    def _render_chart(self) -> None:
        numbers, values, families = self._points
        direction = self._info.direction if self._info else "maximize"
        info = history_info(numbers, values, families, self._metric, direction)
        self.chart.outputs = (figure_bundle(history_figure(info, height=320)),)
        self._last_chart = time.monotonic()

    def _log(self, text: str) -> None:
        self._messages = [*self._messages, text][-N_MESSAGES:]
        self.log.value = "<br>".join(
            f"<small>{html.escape(line)}</small>" for line in self._messages
        )


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.5g}"
