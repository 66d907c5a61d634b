"""``make demo``: tune scikit-learn's breast-cancer data from a CSV file, resumably.

It writes the data to ``studies/breast_cancer.csv``, runs ``autotune tune`` on it with a
60-second budget into the default store ``studies/autotune.db``, prints the leaderboard
and writes ``studies/breast_cancer_report.html``. Running it again resumes the study.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autotune.cli import main as cli_main

__all__ = ["main"]


def main(folder: str = "studies", timeout: float | None = None) -> int:
    from sklearn.datasets import load_breast_cancer

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    data = root / "breast_cancer.csv"
    if not data.exists():
        frame = load_breast_cancer(as_frame=True).frame
        frame.to_csv(data, index=False)
    budget = timeout or float(os.environ.get("AUTOTUNE_DEMO_TIMEOUT", "60"))
    report = root / "breast_cancer_report.html"
    return cli_main(
        ["tune", str(data), "--target", "target", "--timeout", str(budget), "--report", str(report)]
    )


if __name__ == "__main__":
    sys.exit(main())
