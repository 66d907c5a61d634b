"""How the engine reports progress: plain callbacks, so any front end can listen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Listener", "RunInfo", "TrialReport"]


@dataclass(frozen=True)
class RunInfo:
    """What a run is about to do."""

    study_name: str
    storage: str
    metric: str
    direction: str
    families: tuple[str, ...]
    timeout: float | None
    n_trials: int | None
    n_earlier_trials: int


@dataclass(frozen=True)
class TrialReport:
    """One finished trial, with the running totals of the study."""

    number: int
    family: str
    state: str
    score: float | None
    duration: float
    params: dict[str, Any]
    best_score: float | None
    best_family: str | None
    n_complete: int
    n_pruned: int
    n_failed: int
    n_new: int
    elapsed: float
    message: str = ""
    counts_by_family: dict[str, int] = field(default_factory=dict)


class Listener:
    """Receives progress from the engine. Every method is optional to override.

    The engine never imports a display: a terminal bar, a notebook panel or a silent
    worker are all listeners.
    """

    def on_start(self, info: RunInfo) -> None:
        """The study is open and trials are about to run."""

    def on_message(self, text: str) -> None:
        """A line a person should read (what was chosen, what was resumed, what was dropped)."""

    def on_trial_start(self, number: int, family: str) -> None:
        """A trial has sampled its family and is about to fit."""

    def on_trial_end(self, report: TrialReport) -> None:
        """A trial finished, was pruned or failed."""

    def on_finish(self, elapsed: float) -> None:
        """The search and the final fit are done."""

    def should_stop(self) -> bool:
        """Return True to end the search after the current trial (a Stop button)."""
        return False


class MultiListener(Listener):
    """Forwards every event to several listeners."""

    def __init__(self, *listeners: Listener) -> None:
        self.listeners = [li for li in listeners if li is not None]

    def on_start(self, info: RunInfo) -> None:
        for li in self.listeners:
            li.on_start(info)

    def on_message(self, text: str) -> None:
        for li in self.listeners:
            li.on_message(text)

    def on_trial_start(self, number: int, family: str) -> None:
        for li in self.listeners:
            li.on_trial_start(number, family)

    def on_trial_end(self, report: TrialReport) -> None:
        for li in self.listeners:
            li.on_trial_end(report)

    def on_finish(self, elapsed: float) -> None:
        for li in self.listeners:
            li.on_finish(elapsed)

    def should_stop(self) -> bool:
        return any(li.should_stop() for li in self.listeners)
