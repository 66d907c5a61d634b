"""Fits that stop at a deadline: models grown by warm start, timed on a first share.

scikit-learn's boosting and forests take no callback, so a fit started just before the
search's deadline used to run to its end: on digits (10 classes), a boosting fold that
began with 15 s left took 18 s, and the final model lost the time it had been reserved.
Grown by warm start instead, a model first trains a tenth of its iterations or trees,
which times one unit; it then trains only as many more as end before the deadline. The
result is the same model when time allows (warm start continues the same random streams),
and a smaller one when it does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["PROBE_SHARE", "fit_in_time"]

#: The share of the resource trained first, to time one unit of it.
PROBE_SHARE = 0.1
#: Fewer units than this time too noisily to be worth a first share.
MIN_PROBE = 10

#: How many units a fitted model holds, per resource parameter.
_GROWN: dict[str, Callable[[Any], int]] = {
    "max_iter": lambda model: int(model.n_iter_),
    "n_estimators": lambda model: len(model.estimators_),
}


def fit_in_time(
    model: Any, X: Any, y: np.ndarray, resource: str, deadline: float, **fit_params: Any
) -> Any:
    """Fit ``model`` so that it ends by ``deadline`` (``time.monotonic()``), growing its
    ``resource`` (boosting iterations, trees) by warm start; at least the first share is
    always trained. The model's parameters are left as they were given; ``fit_params``
    go to every ``fit`` call."""
    params = model.get_params()
    if resource not in _GROWN or resource not in params or "warm_start" not in params:
        return model.fit(X, y, **fit_params)
    total, warm = int(params[resource]), params["warm_start"]
    probe = max(MIN_PROBE, int(total * PROBE_SHARE))
    if probe >= total:
        return model.fit(X, y, **fit_params)
    started = time.monotonic()
    try:
        model.set_params(warm_start=True, **{resource: probe})
        model.fit(X, y, **fit_params)
        if _GROWN[resource](model) < probe:
            return model  # it stopped early on its own
        per_unit = (time.monotonic() - started) / probe
        more = int((deadline - time.monotonic()) / per_unit) if per_unit > 0 else total
        target = min(total, probe + max(0, more))
        if target > probe:
            model.set_params(**{resource: target})
            model.fit(X, y, **fit_params)
    finally:
        model.set_params(warm_start=warm, **{resource: total})
    return model
