"""The registry of model families and the ``families="auto"`` choice."""

from __future__ import annotations

from collections.abc import Sequence

from autotune.data import DataProfile
from autotune.exceptions import ConfigError
from autotune.families._base import ModelFamily

__all__ = ["choose_families", "get_family", "register_family", "registered_families"]

_REGISTRY: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily, *, replace: bool = False) -> ModelFamily:
    """Make a family available to ``auto_tune(families=[...])`` under ``family.name``.

    Raises:
        ConfigError: the name is taken (pass ``replace=True``) or not a plain identifier.

    Example:
        >>> from autotune.families import ModelFamily, register_family
        >>> class Tiny(ModelFamily):  # doctest: +SKIP
        ...     name = "tiny"
        ...     def suggest(self, space, profile): return {"alpha": space.float("alpha", 1e-3, 1.0)}
        ...     def build(self, params, profile, seed): ...
        >>> register_family(Tiny())  # doctest: +SKIP
    """
    if not isinstance(family, ModelFamily):
        raise ConfigError(
            f"register_family needs a ModelFamily instance; got {type(family).__name__}."
        )
    name = getattr(family, "name", "")
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"A family name must be a plain identifier; got {name!r}.")
    if name in _REGISTRY and not replace and type(_REGISTRY[name]) is not type(family):
        raise ConfigError(
            f"A family named {name!r} is already registered; pass replace=True to replace it."
        )
    _REGISTRY[name] = family
    return family


def registered_families() -> dict[str, ModelFamily]:
    """Name → family, in registration order (the built-in order is cheapest-strongest first)."""
    return dict(_REGISTRY)


def get_family(name: str) -> ModelFamily:
    """The registered family of that name.

    Raises:
        ConfigError: no family has that name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"Unknown family {name!r}; choose from {sorted(_REGISTRY)} or register your own "
            "with autotune.register_family."
        ) from None


def choose_families(
    profile: DataProfile, families: str | Sequence[str] = "auto", timeout: float | None = None
) -> tuple[list[ModelFamily], str]:
    """The families to search for this data, and one line saying which and why.

    Raises:
        ConfigError: a named family is unknown or serves no such task.
    """
    if isinstance(families, str) and families != "auto":
        families = [families]
    if isinstance(families, str):
        chosen, left_out = [], []
        for family in _REGISTRY.values():
            if profile.task not in family.tasks:
                continue
            reason = family.suitability(profile, timeout)
            if reason is None:
                chosen.append(family)
            else:
                left_out.append(f"{family.name} ({reason})")
        names = {f.name for f in chosen}
        for family in [f for f in chosen if f.superseded_by in names]:
            chosen.remove(family)
            left_out.append(f"{family.name} ({family.superseded_by} is the same model, faster)")
        line = f"families: {', '.join(f.name for f in chosen)} for {profile.n_rows:,} rows"
        if left_out:
            line += "; left out " + ", ".join(left_out)
        return chosen, line
    names = list(dict.fromkeys(families))
    if not names:
        raise ConfigError("families=[] names no family; pass 'auto' or at least one name.")
    chosen = [get_family(n) for n in names]
    wrong = [f.name for f in chosen if profile.task not in f.tasks]
    if wrong:
        raise ConfigError(f"Family(ies) {wrong} cannot do a {profile.task} task.")
    return chosen, f"families: {', '.join(names)} (as requested)"
