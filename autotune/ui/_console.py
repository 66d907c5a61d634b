"""Progress in a terminal (a tqdm bar over the time budget or the trial count), and the
choice of display for ``show=``."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from autotune.engine import Listener, RunInfo, TrialReport

__all__ = ["ConsoleProgress", "in_notebook", "make_listener"]


def in_notebook() -> bool:
    """Whether code runs in a Jupyter kernel (where widgets can render)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()  # type: ignore[attr-defined]
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class ConsoleProgress(Listener):
    """A tqdm bar: seconds of the budget (or trials), best score and trial counts."""

    def __init__(self, file: Any = None) -> None:
        self.file = file
        self._bar: Any = None
        self._started = time.monotonic()
        self._info: RunInfo | None = None

    def on_message(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"autotune: {text}", file=self.file or sys.stdout)

    def on_start(self, info: RunInfo) -> None:
        from tqdm import tqdm

        self._info = info
        self._started = time.monotonic()
        if info.timeout is not None and info.n_trials is None:
            total, unit, fmt = (
                info.timeout,
                "s",
                ("{l_bar}{bar}| {n:.0f}/{total:.0f} s, {remaining} left {postfix}"),
            )
        else:
            total, unit, fmt = info.n_trials, "trial", None
        self._bar = tqdm(
            total=total,
            unit=unit,
            desc=info.study_name,
            file=self.file or sys.stderr,
            bar_format=fmt,
            dynamic_ncols=True,
            leave=True,
        )

    def on_trial_end(self, report: TrialReport) -> None:
        if self._bar is None or self._info is None:
            return
        if self._bar.unit == "s":
            self._bar.n = min(report.elapsed, self._bar.total)
        else:
            self._bar.n = min(report.n_new, self._bar.total or report.n_new)
        best = "-" if report.best_score is None else f"{report.best_score:.4g}"
        self._bar.set_postfix_str(
            f"best {self._info.metric} {best} ({report.best_family or '-'}) "
            f"done {report.n_complete} pruned {report.n_pruned} failed {report.n_failed}",
            refresh=True,
        )

    def on_finish(self, elapsed: float) -> None:
        if self._bar is not None:
            if self._bar.unit == "s":
                self._bar.n = min(elapsed, self._bar.total)
            self._bar.refresh()
            self._bar.close()
            self._bar = None


def make_listener(show: bool | str) -> Listener:
    """The listener for ``show=``: ``False`` is silent; otherwise the live widget panel in
    a Jupyter kernel (displayed here, where the call runs) and a tqdm bar elsewhere."""
    if show is False or show == "none":
        return Listener()
    if in_notebook():
        from IPython.display import display

        from autotune.ui._panel import LivePanel

        # a cell that runs the search blocks the kernel, so clicks would arrive too late
        panel = LivePanel(stoppable=threading.current_thread() is not threading.main_thread())
        display(panel.widget)
        return panel
    return ConsoleProgress()
