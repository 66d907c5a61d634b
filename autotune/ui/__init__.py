"""Front ends that listen to the engine: a terminal progress bar and notebook widgets.

Widgets and plots load only when a notebook view is asked for.
"""

from autotune.ui._console import ConsoleProgress, in_notebook, make_listener

__all__ = ["ConsoleProgress", "in_notebook", "make_listener"]
