"""Every error autotune raises on purpose, in one tree.

Each message names the problem and the fix, so that a user never needs a traceback::

    AutotuneError
    ├── DataError (ValueError)            bad X or y: lengths, NaN, inf, shape, duplicates
    ├── DataTypeError (TypeError)         X or y of a type autotune cannot read
    ├── ConfigError (ValueError)          an unknown metric, task, family or strategy; bad budgets
    ├── StudyMismatchError (ValueError)   resuming a study with other data, schema or settings
    ├── StoreError (ValueError)           a storage that cannot be opened, read or written
    ├── MissingDependencyError (ImportError)  an optional package a feature needs
    └── TuningFailedError (RuntimeError)  no trial finished, so there is no model to return

    AutotuneWarning (UserWarning)         something was dropped or changed; the run goes on
"""

from __future__ import annotations

__all__ = [
    "AutotuneError",
    "AutotuneWarning",
    "ConfigError",
    "DataError",
    "DataTypeError",
    "MissingDependencyError",
    "StoreError",
    "StudyMismatchError",
    "TuningFailedError",
]


class AutotuneError(Exception):
    """Base class of every error autotune raises on purpose."""


class DataError(AutotuneError, ValueError):
    """X or y cannot be tuned on as given."""


class DataTypeError(AutotuneError, TypeError):
    """X or y is of a type autotune cannot read."""


class ConfigError(AutotuneError, ValueError):
    """An argument names something unknown or has an impossible value."""


class StudyMismatchError(AutotuneError, ValueError):
    """An existing study does not match the data or settings it is resumed with."""


class StoreError(AutotuneError, ValueError):
    """The study store cannot be opened, read or written."""


class MissingDependencyError(AutotuneError, ImportError):
    """A feature needs an optional package that is not installed."""


class TuningFailedError(AutotuneError, RuntimeError):
    """No trial finished, so there is no model to return."""


class AutotuneWarning(UserWarning):
    """Something was dropped or adjusted; the run goes on."""
