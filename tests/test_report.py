"""The HTML report: one self-contained file with summary, leaderboard and plots."""

from __future__ import annotations

from sklearn.datasets import load_iris

import autotune


def test_report_is_standalone_with_plotly_embedded_once(tmp_path):
    X, y = load_iris(return_X_y=True, as_frame=True)
    storage = f"sqlite:///{tmp_path}/s.db"
    autotune.auto_tune(
        X, y, n_trials=8, families=["linear", "knn"], storage=storage, study_name="r", show=False
    )
    loaded = autotune.load("r", storage)  # no data: the report needs only the study
    path = loaded.report(str(tmp_path / "out" / "report.html"))
    text = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert path.endswith("report.html")
    assert text.count("plotly.js v") == 1  # the library's banner, embedded once
    assert "<script src=" not in text  # nothing to fetch: it opens offline
    assert text.count('class="plotly-graph-div"') >= 7
    assert "Parameter importance, overall" in text and "Leaderboard" in text
    assert f"by {loaded.best_family_}" in text
    assert "<table" in text
