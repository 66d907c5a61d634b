"""The notebook form: choose families, metric, budget, strategy and store, then Start.

Start runs the study in a background thread so that the kernel stays free: the live panel
keeps updating, Stop clicks arrive at once, and other cells can run meanwhile.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as widgets

from autotune.data import profile_data
from autotune.engine import STRATEGIES
from autotune.families import choose_families, registered_families
from autotune.metrics import implied_task, metric_names
from autotune.result import TuneResult
from autotune.store import default_storage_url, mask_url
from autotune.ui._panel import LivePanel

__all__ = ["Controls"]

#: Bounds of the time-budget slider, in seconds.
MIN_TIMEOUT, MAX_TIMEOUT = 10, 3600


class Controls:
    """A form that starts, watches and stops a study on X, y from a notebook.

    Attributes:
        result: The fitted :class:`~autotune.TuneResult` once a run has finished, else None.
        error: The exception that ended the last run, if any.
        panel: The live panel of the current (or last) run.
        thread: The background thread of the current (or last) run.

    Example:
        >>> ctl = autotune.controls(X, y)  # doctest: +SKIP
        >>> # tick families, press Start, wait, then:
        >>> ctl.result.leaderboard  # doctest: +SKIP
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        *,
        timeout: float | None = 60,
        n_trials: int | None = None,
        metric: str = "auto",
        task: str = "auto",
        families: str | list[str] = "auto",
        strategy: str = "auto",
        storage: str | None = None,
        study_name: str | None = None,
        seed: int = 0,
    ) -> None:
        self.X, self.y = X, y
        self.task = task
        self.seed = seed
        self.result: TuneResult | None = None
        self.error: BaseException | None = None
        self.panel: LivePanel | None = None
        self.thread: threading.Thread | None = None

        _, _, profile = profile_data(X, y, task, implied_task(metric))
        self.profile = profile
        budget = int(min(max(timeout or 60, MIN_TIMEOUT), MAX_TIMEOUT))
        auto, line = choose_families(profile, "auto", budget)
        ticked = {f.name for f in auto} if families == "auto" else set(families)
        names = [n for n, f in registered_families().items() if profile.task in f.tasks]

        self.family_boxes = {
            name: widgets.Checkbox(
                value=name in ticked, description=name, indent=False, layout={"width": "90px"}
            )
            for name in names
        }
        metrics = list(dict.fromkeys(["auto", metric, *metric_names(profile.task)]))
        self.metric = widgets.Dropdown(options=metrics, value=metric, description="metric")
        self.timeout = widgets.IntSlider(
            value=budget,
            min=MIN_TIMEOUT,
            max=MAX_TIMEOUT,
            step=10,
            description="time budget",
            readout_format="d",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self.n_trials = widgets.BoundedIntText(
            value=n_trials or 0,
            min=0,
            max=100_000,
            description="trials (0: no limit)",
            style={"description_width": "initial"},
            layout={"width": "220px"},
        )
        self.strategy = widgets.Dropdown(
            options=list(STRATEGIES), value=strategy, description="strategy"
        )
        self.storage = widgets.Text(
            value=storage or "",
            placeholder=mask_url(default_storage_url()),
            description="storage",
            layout={"width": "520px"},
        )
        self.study_name = widgets.Text(
            value=study_name or "",
            placeholder="auto (target name + data fingerprint)",
            description="study name",
            layout={"width": "520px"},
        )
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success")
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", button_style="danger", disabled=True
        )
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.status = widgets.HTML(f"<small>{html.escape(profile.summary())}<br>{line}</small>")
        self.panel_box = widgets.Box()

        form = widgets.VBox(
            [
                widgets.HTML("<b>families</b>"),
                widgets.HBox(list(self.family_boxes.values()), layout={"flex_flow": "row wrap"}),
                widgets.HBox([self.metric, self.strategy]),
                widgets.HBox([self.timeout, self.n_trials]),
                self.storage,
                self.study_name,
                widgets.HBox([self.start_button, self.stop_button]),
                self.status,
            ]
        )
        self.widget = widgets.VBox([form, self.panel_box])
        self.widget.add_class("autotune-controls")

    def __repr__(self) -> str:
        # :func:`autotune.controls` has displayed the form already; echoing the object in a
        # cell should describe it, not draw a second copy (``display(ctl.widget)`` does that)
        state = "running" if self.running else "failed" if self.error else "idle"
        return f"<autotune controls: {state}, result={'set' if self.result else 'None'}>"

    # -- reading the form ------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """The ``auto_tune`` options the form currently describes."""
        return {
            "families": [n for n, box in self.family_boxes.items() if box.value],
            "metric": self.metric.value,
            "timeout": float(self.timeout.value),
            "n_trials": int(self.n_trials.value) or None,
            "strategy": self.strategy.value,
            "storage": self.storage.value.strip() or None,
            "study_name": self.study_name.value.strip() or None,
            "task": self.task,
            "seed": self.seed,
        }

    @property
    def running(self) -> bool:
        """Whether a run is in progress."""
        return self.thread is not None and self.thread.is_alive()

    # -- actions ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start a run with the form's options in a background thread."""
        if self.running:
            return
        options = self.options()
        if not options["families"]:
            self._say("Tick at least one family.")
            return
        self.result, self.error = None, None
        self.panel = LivePanel()
        self.panel_box.children = (self.panel.widget,)
        self.start_button.disabled = True
        self.stop_button.disabled = False
        self._say("running…")
        self.thread = threading.Thread(
            target=self._run, args=(options, self.panel), name="autotune-controls", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        """End the run after the trial in progress; the result is still available."""
        if self.panel is not None and self.running:
            self.panel.stop()
            self.stop_button.disabled = True

    def wait(self, timeout: float | None = None) -> TuneResult | None:
        """Block until the run ends; return its result (re-raising its error, if any)."""
        if self.thread is not None:
            self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result

    def _run(self, options: dict[str, Any], panel: LivePanel) -> None:
        try:
            result = TuneResult(show=False, **options).fit(self.X, self.y, listener=panel)
        except BaseException as error:  # shown in the form; the thread must not die silently
            self.error = error
            panel.fail(error)
            self._say(f"failed: {html.escape(str(error))}")
        else:
            self.result = result
            self._say(
                f"done: best {result.metric_.name} {result.best_score_:.5g} by "
                f"{result.best_family_}; the result is on <code>.result</code>"
            )
        finally:
            self.start_button.disabled = False
            self.stop_button.disabled = True

    def _say(self, text: str) -> None:
        self.status.value = f"<small>{text}</small>"
