"""Pruning that only compares like with like, and successive halving where folds are few.

Families that report per cross-validation fold share one comparison: every trial is
scored on the same folds, so Wilcoxon's paired test against the best trial is fair across
them. Before the test has the power to decide, a trial that is clearly worse (behind the
best on every fold so far by more than the best's own spread across folds) stops early.
Families that report per epoch are compared only with trials of the same family, by a
median rule, because epoch 5 of a network says nothing about fold 5 of a forest. Only a
network that has learnt next to nothing by its fifth epoch is judged against the best
trial of any family, on the same first fold (``hopeless``).

On large data there are too few folds for the test, so every family instead takes one
cheap look first, at a third of its resource (boosting iterations, trees, or rows), and
successive halving across all families decides which trials go on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

__all__ = [
    "CLEAR_LOSS_MIN_STEPS",
    "HALVING_RATE",
    "HOPELESS_EPOCHS",
    "WILCOXON_MIN_STEPS",
    "FoldWilcoxonPruner",
    "GroupedPruner",
    "Standing",
    "clearly_worse",
    "first_prune_step",
    "halving_prunes",
    "hopeless",
    "hopeless_bar",
    "p_threshold",
]

WILCOXON_P_THRESHOLD = 0.1
#: A one-sided signed-rank test on n paired folds cannot reach p < 0.1 before n = 4
#: (its smallest p-value is 2**-n), so asking earlier only costs a database read.
WILCOXON_MIN_STEPS = 4
#: Folds after which a clearly worse trial may stop. Until the test may decide, a pruned
#: trial cost 4 of its 5 folds, and with folds fitted two at a time, all 5: on
#: r_computers_price (60 s) the first configurations of five families spent 15 s that way
#: on scores 19 % to 220 % behind the best.
CLEAR_LOSS_MIN_STEPS = 2


class _StudyView:
    """A study that shows a pruner only the trials of one group."""

    def __init__(self, study: optuna.Study, keep: Callable[[FrozenTrial], bool]) -> None:
        self._study = study
        self._keep = keep

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        trials = self._study.get_trials(deepcopy=deepcopy, states=states)
        return [t for t in trials if self._keep(t)]

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    @property
    def best_trial(self) -> FrozenTrial:
        complete = self.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            raise ValueError("no complete trial in this group")
        pick = min if self._study.direction == optuna.study.StudyDirection.MINIMIZE else max
        return pick(complete, key=lambda t: t.value)


def p_threshold(n_repeats: int) -> float:
    """Repeated folds give the test many steps and with them the power to prune a trial
    that is only a little worse by chance, which the best trial's luck makes common:
    there, demand stronger evidence."""
    return WILCOXON_P_THRESHOLD if n_repeats == 1 else WILCOXON_P_THRESHOLD / 2


def first_prune_step(n_splits: int, n_repeats: int) -> int:
    """How many folds a trial runs before it may be pruned: with repeated folds, one whole
    repeat, so that every row has been predicted once."""
    return CLEAR_LOSS_MIN_STEPS if n_repeats == 1 else max(WILCOXON_MIN_STEPS, n_splits)


def uses_early_looks(n_splits: int, n_repeats: int) -> bool:
    """Whether the folds are too few for the test, so that trials take early looks instead."""
    return n_splits * n_repeats <= WILCOXON_MIN_STEPS


def clearly_worse(worse_by: np.ndarray, best_fold_losses: np.ndarray) -> bool:
    """Whether a trial trails the best on every fold so far by more than the best trial's
    own standard deviation across folds. The folds' differences in difficulty are shared
    by both trials, so a trial of the same quality rarely trails by that much on each."""
    if len(best_fold_losses) < 2:
        return False
    return bool(np.min(worse_by) > np.std(best_fold_losses, ddof=1))


#: A network's epoch from which ``hopeless`` may stop it, and the share of the gap between
#: a constant prediction and the best trial that it must have closed by then. On
#: r_star_classk (60 s) the first network spent 11 s, a fifth of the budget, to end at a
#: log loss of 1.058, where predicting the class shares gives 1.099 and the best trees
#: 0.267.
HOPELESS_EPOCHS = 5
HOPELESS_SHARE = 0.25


def hopeless_bar(constant: float, best: float, greater_is_better: bool) -> float | None:
    """The score a network must beat from its ``HOPELESS_EPOCHS``-th epoch on: a quarter
    of the way from a constant prediction's score to the best trial's, on the same rows.
    None where the best is no better than the constant, which leaves nothing to judge by."""
    gap = best - constant
    if gap == 0 or (gap > 0) != greater_is_better:
        return None
    return constant + HOPELESS_SHARE * gap


def hopeless(value: float, epoch: int, bar: float | None, greater_is_better: bool) -> bool:
    """Whether a network's score after ``epoch`` (from 0) falls short of ``bar``: so far
    from the best that its later epochs, which gain less than its first, cannot catch up."""
    if bar is None or epoch + 1 < HOPELESS_EPOCHS:
        return False
    return value < bar if greater_is_better else value > bar


@dataclass
class Standing:
    """How a family's judged trials compared with the best: clearly worse, or not."""

    n_behind: int = 0
    n_close: int = 0

    @property
    def clearly_behind(self) -> bool:
        """Whether every judged trial of the family was clearly worse than the best."""
        return self.n_behind > 0 and self.n_close == 0


#: Successive halving's reduction factor: an early look trains on 1/3 of the resource,
#: and only the best third of the looks go on to full cross-validation.
HALVING_RATE = 3


def halving_prunes(score: float, others: Sequence[float], greater_is_better: bool) -> bool:
    """Successive halving's rule for one rung: stop unless ``score`` is in the best
    ``1 / HALVING_RATE`` of all looks so far (asynchronously, as in ASHA: Li et al., 2020).
    Until a rung holds that many looks, everything goes on."""
    if len(others) < HALVING_RATE - 1:
        return False
    ranked = sorted([*others, score], reverse=greater_is_better)
    keep = math.ceil(len(ranked) / HALVING_RATE)
    cutoff = ranked[keep - 1]
    return score < cutoff if greater_is_better else score > cutoff


class FoldWilcoxonPruner(optuna.pruners.WilcoxonPruner):
    """Optuna's ``WilcoxonPruner`` with SciPy's exact signed-rank distribution for any n.

    Where a fold's score equals the best trial's (a fold AUC of 1.0 for both, say), the
    paired differences hold a zero, and SciPy (1.15 and later) then computes the p-value of
    up to 13 pairs by a generic permutation test: 0.3 s for 10 pairs and 2 s for 13 on
    this project's machines, at every fold of every trial from the fifth on. The exact
    null distribution takes about 1 ms and differs from it by a few hundredths of p. The
    decision rule is Optuna's, line for line.
    """

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if not trial.intermediate_values:
            return False
        steps, values = np.array(list(trial.intermediate_values.items())).T
        try:
            best = study.best_trial
        except ValueError:
            return False
        if not best.intermediate_values:
            return False
        best_steps, best_values = np.array(list(best.intermediate_values.items())).T
        if not (np.isfinite(values).all() and np.isfinite(best_values).all()):
            return False
        _, mine, theirs = np.intersect1d(steps, best_steps, return_indices=True)
        differences = values[mine] - best_values[theirs]
        if len(differences) < max(2, self._n_startup_steps):
            return False
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        if len(differences) < WILCOXON_MIN_STEPS:
            return clearly_worse(-differences if maximize else differences, best_values)
        mean, best_mean = float(np.mean(values)), float(np.mean(best_values))
        if (mean >= best_mean) if maximize else (mean <= best_mean):
            return False  # Optuna's safety: never prune a trial whose mean is the best
        method = "exact" if len(differences) <= 50 else "approx"
        alternative = "less" if maximize else "greater"
        p = stats.wilcoxon(
            differences, alternative=alternative, zero_method="zsplit", method=method
        ).pvalue
        return bool(p < self._p_threshold)


class GroupedPruner(optuna.pruners.BasePruner):
    """Routes each trial to the pruner of its family's fidelity.

    Args:
        fidelities: Family name → ``"folds"`` or ``"epochs"``.
        n_repeats: How often the folds are repeated (see :func:`p_threshold`).
    """

    def __init__(self, fidelities: Mapping[str, str], n_repeats: int = 1) -> None:
        self.fidelities = dict(fidelities)
        self.n_repeats = n_repeats
        self._folds = FoldWilcoxonPruner(p_threshold=p_threshold(n_repeats), n_startup_steps=2)
        self._epochs = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)

    def _fidelity(self, trial: FrozenTrial) -> str:
        return self.fidelities.get(trial.params.get("family", ""), "folds")

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        family = trial.params.get("family")
        if self._fidelity(trial) == "epochs":
            view = _StudyView(study, lambda t: t.params.get("family") == family)
            return self._epochs.prune(view, trial)  # type: ignore[arg-type]
        if all(f == "folds" for f in self.fidelities.values()):
            return self._folds.prune(study, trial)  # every trial is comparable: no filtering
        view = _StudyView(study, lambda t: self._fidelity(t) == "folds")
        return self._folds.prune(view, trial)  # type: ignore[arg-type]
