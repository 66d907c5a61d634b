"""Cost-aware sharing of the budget among families.

Which family the next trial tries is chosen by its *estimated cost for improvement*
(ECI), the rule of FLAML's learner selection (Wang et al., MLSys 2021): how much more
time the family is likely to need before it improves its own best score or, if it is
behind, before it catches up with the best family at its measured speed. Families are
drawn with probability inversely proportional to their ECI, so a cheap family that keeps
improving gets most trials, a costly or stalled one fewer. Only a family whose every
judged trial was clearly worse than the best (see ``clearly_worse``) is left out while
others are not: with seven families, FLAML's rule gave cheap ones far behind (linear
models and neighbours on r_computers_price, at 60 % above the best) a fifth of the
budget, 0.2 s at a time.

Everything is computed from the trials in the study's storage, so workers on other
machines share one allocation. The rest of each trial's parameters come from the wrapped
sampler or, for a share of trials, from a local step around the chosen family's best
configuration (see ``_local``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autotune.engine._local import LOCAL_SHARE, fits, incumbent, local_step
from autotune.engine._objective import BEHIND_KEY, FAMILY_PARAM, LOOK_KEY, SEARCH_KEY
from autotune.engine._pruning import Standing

__all__ = ["CostAwareSampler", "FamilyProgress", "choose_family", "family_progress"]

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass
class FamilyProgress(Standing):
    """One family's time spent, the times and losses of its last two improvements, and
    its standing."""

    time_used: float = 0.0
    best: float = math.inf
    best_old: float = math.inf
    time_best: float = 0.0
    time_best_old: float = 0.0
    dropped: bool = False

    def add(self, seconds: float, loss: float | None) -> None:
        self.time_used += seconds
        if loss is None or loss >= self.best:
            return
        self.best_old = self.best if math.isfinite(self.best) else loss + abs(loss)
        self.time_best_old, self.time_best = self.time_best, self.time_used
        self.best = loss

    def eci(self, best_overall: float) -> float:
        """Seconds this family is expected to need before it improves."""
        if not math.isfinite(self.best):
            return 2.0 * max(self.time_used, 1e-9)  # it has spent time and found nothing
        cost = max(self.time_best - self.time_best_old, self.time_used - self.time_best)
        gap = self.best - best_overall
        if gap > 0:
            gained = (self.best_old - self.best) or abs(self.best)
            speed = gained / max(self.time_used - self.time_best_old, 1e-9)
            if speed > 0:
                cost = max(cost, 2.0 * gap / speed)
        return max(cost, 1e-9)


def family_progress(
    trials: Sequence[FrozenTrial], direction: StudyDirection
) -> dict[str, FamilyProgress]:
    """Each family's progress, replayed from finished trials in the order they were made.

    Losses are ``1 - score`` for scores to maximise (all built-in ones are at most 1), so
    that the relative speeds FLAML's rule compares mean the same as for losses. Failed
    trials cost time and show nothing.
    """
    progress: dict[str, FamilyProgress] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        family = trial.params.get(FAMILY_PARAM)
        if family is None or trial.state not in _FINISHED:
            continue
        state = progress.setdefault(family, FamilyProgress())
        if "skipped" in trial.user_attrs:
            state.dropped = True
            continue
        if trial.user_attrs.get(BEHIND_KEY):
            state.n_behind += 1
        elif trial.state == TrialState.COMPLETE:
            state.n_close += 1
        loss = _score(trial)
        if loss is not None and direction == StudyDirection.MAXIMIZE:
            loss = 1.0 - loss
        seconds = trial.duration.total_seconds() if trial.duration is not None else 0.0
        state.add(seconds, loss)
    return progress


def _score(trial: FrozenTrial) -> float | None:
    """A finished trial's score; for a pruned one, the median of the scores it reported,
    because a family whose every trial is pruned is behind, not free."""
    if trial.state == TrialState.COMPLETE:
        return trial.value
    if trial.state != TrialState.PRUNED:
        return None
    if trial.intermediate_values:
        return float(np.median(list(trial.intermediate_values.values())))
    return trial.user_attrs.get(LOOK_KEY)


def choose_family(
    choices: Sequence[str],
    progress: Mapping[str, FamilyProgress],
    costs: Mapping[str, float],
    rng: np.random.Generator,
) -> str:
    """An untried family first (the cheapest), else one drawn with probability ∝ 1 / ECI
    among those not clearly behind."""
    live = [c for c in choices if not (c in progress and progress[c].dropped)] or list(choices)
    live = [c for c in live if not (c in progress and progress[c].clearly_behind)] or live
    untried = [c for c in live if c not in progress]
    if untried:
        return min(untried, key=lambda c: costs.get(c, 1.0))
    best_overall = min(progress[c].best for c in live)
    weights = np.array([1.0 / progress[c].eci(best_overall) for c in live])
    return str(live[rng.choice(len(live), p=weights / weights.sum())])


@dataclass
class _Plan:
    """What the sampler decided for one trial when it was first asked for a value."""

    family: str
    local: dict[str, Any]


class CostAwareSampler(optuna.samplers.BaseSampler):
    """Chooses the family by :func:`choose_family`; the rest comes from a local step
    around that family's best trial (a ``LOCAL_SHARE`` of trials) or from ``base``.

    Args:
        base: The sampler of every other parameter.
        costs: Family name → relative cost, to order families not yet tried.
        seed: Seeds the draw of families and of local steps, per trial number.
        local_share: The share of sampled trials that take a local step; 0 turns them off.
    """

    def __init__(
        self,
        base: optuna.samplers.BaseSampler,
        costs: Mapping[str, float],
        seed: int = 0,
        local_share: float = LOCAL_SHARE,
    ) -> None:
        self.base = base
        self.costs = dict(costs)
        self.seed = seed
        self.local_share = local_share
        self._plans: dict[int, _Plan] = {}

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        space = self.base.infer_relative_search_space(study, trial)
        return {k: v for k, v in space.items() if k != FAMILY_PARAM}

    def _plan(self, study: optuna.Study, trial: FrozenTrial, choices: Sequence[str]) -> _Plan:
        """The trial's family and, if it takes one, its local step; decided once."""
        plan = self._plans.get(trial._trial_id)
        if plan is not None:
            return plan
        trials = study.get_trials(deepcopy=False, states=_FINISHED)
        family = trial.params.get(FAMILY_PARAM)
        if family is None:
            progress = family_progress(trials, study.direction)
            rng = np.random.default_rng((self.seed, trial.number))
            family = choose_family(list(choices), progress, self.costs, rng)
        local: dict[str, Any] = {}
        rng = np.random.default_rng((self.seed, trial.number, 1))
        queued = "fixed_params" in trial.system_attrs
        if not queued and rng.random() < self.local_share:
            point = incumbent(trials, family, FAMILY_PARAM, study.direction)
            if point is not None:
                local = local_step(point, family, rng)
                study._storage.set_trial_user_attr(
                    trial._trial_id, SEARCH_KEY, f"local step from trial {point.trial.number}"
                )
        plan = self._plans[trial._trial_id] = _Plan(str(family), local)
        return plan

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if self._plan(study, trial, list(self.costs)).local:
            return {}
        params = self.base.sample_relative(study, trial, search_space)
        return {k: v for k, v in params.items() if k != FAMILY_PARAM}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if param_name == FAMILY_PARAM and isinstance(param_distribution, CategoricalDistribution):
            choices = [str(c) for c in param_distribution.choices]
            plan = self._plan(study, trial, choices)
            if plan.family not in choices:  # the family list changed after the plan
                self._plans.pop(trial._trial_id)
                plan = self._plan(study, trial, choices)
            return plan.family
        local = self._plan(study, trial, list(self.costs)).local
        if param_name in local and fits(local[param_name], param_distribution):
            return local[param_name]
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._plans.pop(trial._trial_id, None)
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
        self.seed = int(np.random.SeedSequence().generate_state(1)[0])
