"""Model families: each one a search space and a way to build an estimator from it."""

from autotune.families._base import FitContext, ModelFamily
from autotune.families._preprocess import SchemaAdapter, make_pipeline_for
from autotune.families._registry import (
    choose_families,
    get_family,
    register_family,
    registered_families,
)
from autotune.families._space import Space
from autotune.families.forest import ExtraTreesFamily, RandomForestFamily
from autotune.families.hgb import HistGradientBoostingFamily
from autotune.families.keras import KerasFamily
from autotune.families.knn import KNeighborsFamily
from autotune.families.lgbm import LightGBMFamily
from autotune.families.linear import LinearFamily
from autotune.families.svm import SupportVectorFamily

__all__ = [
    "ExtraTreesFamily",
    "FitContext",
    "HistGradientBoostingFamily",
    "KNeighborsFamily",
    "KerasFamily",
    "LightGBMFamily",
    "LinearFamily",
    "ModelFamily",
    "RandomForestFamily",
    "SchemaAdapter",
    "Space",
    "SupportVectorFamily",
    "choose_families",
    "get_family",
    "make_pipeline_for",
    "register_family",
    "registered_families",
]

for _family in (
    HistGradientBoostingFamily(),
    LightGBMFamily(),
    LinearFamily(),
    RandomForestFamily(),
    ExtraTreesFamily(),
    KNeighborsFamily(),
    SupportVectorFamily(),
    KerasFamily(),
):
    register_family(_family)
