"""Local steps: a configuration drawn near a family's best so far.

TPE models the whole space, and on data that rewards one narrow region (memorising a
classroom from its school and teacher on r_star_classk) its draws land far from the best
configuration and lose to it. FLAML's CFO (Wu et al., AAAI 2021) instead walks from its
best point in random directions, with a step that shrinks while no step improves. A
local step does the same within the study: every numeric parameter of the family's best
trial moves by a Gaussian step on its own scale (logarithmic where the space is), and
each categorical one is kept or, rarely, redrawn. The step shrinks with each trial of the
family since its best, so a settled family refines and a family that just improved
explores. Everything is read from the study, so workers on other machines agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["LOCAL_SHARE", "Incumbent", "incumbent", "local_step"]

#: The share of sampled trials (not queued ones) that take a local step, once the chosen
#: family has a finished trial to step from.
LOCAL_SHARE = 0.5
#: The first step's standard deviation, on a scale where each range is 1 long.
FIRST_STEP = 0.15
#: Each trial of the family since its best shrinks the step by this factor ...
SHRINK = 0.85
#: ... down to this size.
SMALLEST_STEP = 0.02
#: The chance that a categorical parameter is redrawn instead of kept.
REDRAW = 0.15


class Incumbent:
    """A family's best finished trial, and how many of its trials have followed it."""

    def __init__(self, trial: FrozenTrial, n_since: int) -> None:
        self.trial = trial
        self.n_since = n_since

    @property
    def step(self) -> float:
        """The step's standard deviation on the unit scale."""
        return max(SMALLEST_STEP, FIRST_STEP * SHRINK**self.n_since)


def incumbent(
    trials: Sequence[FrozenTrial], family: str, family_param: str, direction: StudyDirection
) -> Incumbent | None:
    """The family's best complete trial, or None while it has none."""
    own = sorted(
        (t for t in trials if t.params.get(family_param) == family),
        key=lambda t: t.number,
    )
    complete = [
        t
        for t in own
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    if not complete:
        return None
    sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
    best = min(complete, key=lambda t: (sign * float(t.value or 0.0), t.number))
    n_since = sum(1 for t in own if t.number > best.number)
    return Incumbent(best, n_since)


def local_step(point: Incumbent, prefix: str, rng: np.random.Generator) -> dict[str, Any]:
    """New values for the parameters named ``prefix.*`` of the incumbent trial."""
    values: dict[str, Any] = {}
    best = point.trial
    for name, distribution in best.distributions.items():
        if name.startswith(f"{prefix}.") and name in best.params:
            values[name] = _move(best.params[name], distribution, point.step, rng)
    return values


def _move(value: Any, distribution: BaseDistribution, step: float, rng: np.random.Generator) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        if len(distribution.choices) > 1 and rng.random() < REDRAW:
            others = [c for c in distribution.choices if c != value]
            return others[int(rng.integers(len(others)))]
        return value
    if not isinstance(distribution, FloatDistribution | IntDistribution):
        return value
    low, high, log = distribution.low, distribution.high, distribution.log
    if high <= low:
        return value
    scale = (math.log, math.exp) if log else (float, float)
    start, end = scale[0](low), scale[0](high)
    moved = scale[0](value) + rng.normal(0.0, step) * (end - start)
    moved = scale[1](min(max(moved, start), end))
    unit = distribution.step  # always set for integers
    if unit is not None:
        moved = min(max(low + round((moved - low) / unit) * unit, low), high)
    return int(moved) if isinstance(distribution, IntDistribution) else float(moved)


def fits(value: Any, distribution: BaseDistribution) -> bool:
    """Whether ``value`` lies in ``distribution``, which may differ from the incumbent's."""
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False
