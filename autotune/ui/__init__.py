"""Front ends that listen to the engine: a terminal progress bar and notebook widgets.

Widgets and plots load only when a notebook view is asked for: the functions below import
their ipywidgets modules on call, so ``import autotune`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autotune.ui._console import ConsoleProgress, in_notebook, make_listener

if TYPE_CHECKING:
    from autotune.result import TuneResult
    from autotune.ui._controls import Controls
    from autotune.ui._explorer import Explorer
    from autotune.ui._panel import LivePanel

__all__ = ["ConsoleProgress", "controls", "explore", "in_notebook", "live_panel", "make_listener"]


def controls(X: Any, y: Any, **options: Any) -> Controls:
    """A form to choose families, metric, budget, strategy and store, with Start and Stop.

    In a notebook the form is displayed at once, so ``ctl = controls(X, y)`` shows it and
    keeps the object, whose ``result`` holds the fitted result once a run ends.

    Args:
        X: Features, as for :func:`autotune.auto_tune`.
        y: Target.
        **options: Initial values: ``timeout``, ``n_trials``, ``metric``, ``task``,
            ``families``, ``strategy``, ``storage``, ``study_name``, ``seed``.
    """
    from autotune.ui._controls import Controls

    form = Controls(X, y, **options)
    _show(form.widget)
    return form


def explore(result: TuneResult) -> Explorer:
    """A dashboard of a result's study: family filter, one tab per plot, trials table."""
    from autotune.ui._explorer import Explorer

    return Explorer(result)


def live_panel() -> LivePanel:
    """A live progress panel to pass as ``listener=`` (display it yourself)."""
    from autotune.ui._panel import LivePanel

    return LivePanel()


def _show(widget: Any) -> None:
    if in_notebook():
        from IPython.display import display

        display(widget)
