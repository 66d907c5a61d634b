"""The leaderboard: one row per trial, best first, as a pandas DataFrame."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

__all__ = ["leaderboard"]

BASE_COLUMNS = ["trial", "family", "state", "score"]


def leaderboard(study: optuna.Study) -> pd.DataFrame:
    """Trials as rows: ``trial, family, state, score``, the secondary metrics, ``duration``,
    ``error`` and one column per parameter; complete trials first, best score first.
    """
    trials = study.get_trials(deepcopy=False)
    rows = []
    secondary_names: list[str] = []
    param_names: list[str] = []
    for t in trials:
        secondary = t.user_attrs.get("secondary", {}) or {}
        for key in secondary:
            if key not in secondary_names:
                secondary_names.append(key)
        for key in t.params:
            if key != "family" and key not in param_names:
                param_names.append(key)
        rows.append(
            {
                "trial": t.number,
                "family": t.params.get("family"),
                "state": t.state.name.lower(),
                "score": t.value if t.state == TrialState.COMPLETE else np.nan,
                **secondary,
                "duration": t.duration.total_seconds() if t.duration else np.nan,
                "error": t.user_attrs.get("error") or t.user_attrs.get("stopped"),
                **{k: v for k, v in t.params.items() if k != "family"},
            }
        )
    columns = [*BASE_COLUMNS, *secondary_names, "duration", "error", *sorted(param_names)]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    ascending = study.direction == optuna.study.StudyDirection.MINIMIZE
    frame["_done"] = frame["state"] != "complete"
    frame = frame.sort_values(["_done", "score"], ascending=[True, ascending], kind="stable")
    return frame.drop(columns="_done").reset_index(drop=True)
