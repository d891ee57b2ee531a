"""aiogram, imported with each Telegram type's validator built when the type is first used.

aiogram's `types` package ends by building the pydantic validator of all its ~300 types at
once (its models say `defer_build`, then an explicit `model_rebuild` loop builds them all):
over 100 MB of validators, each holding its own copy of every type it nests, in a process that
parses updates and a handful of replies. While that package is imported here, the loop's
`model_rebuild` keeps the namespace it is given on the class instead of building, and pydantic
builds a type from it when the type is first validated or serialised. Whoever imports aiogram
first decides: imported before this module, it keeps aiogram's own eager build.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel


@contextlib.contextmanager
def _rebuilds_deferred() -> Iterator[None]:
    """`model_rebuild(_types_namespace=...)` of a not yet built `defer_build` model keeps the
    namespace (pydantic's own place for it) for the build on first use, and builds nothing.
    On the way out, aiogram's other models get it too (its methods, and `Response`, whose
    `Response[Message]` and the like are made when first needed): a model's build resolves the
    names of the types it nests in its own namespace."""
    eager: Any = BaseModel.__dict__["model_rebuild"]
    kept: list[dict[str, Any]] = []

    def keep_namespace(cls: type[BaseModel], *, force: bool = False, raise_errors: bool = True,
                       _parent_namespace_depth: int = 2,
                       _types_namespace: dict[str, Any] | None = None) -> bool | None:
        if (_types_namespace is None or force or cls.__pydantic_complete__
                or not cls.model_config.get("defer_build")):
            built: bool | None = eager.__func__(
                cls, force=force, raise_errors=raise_errors,
                _parent_namespace_depth=_parent_namespace_depth + 1,
                _types_namespace=_types_namespace)
            return built
        cls.__pydantic_parent_namespace__ = _types_namespace  # one dict shared by all the types
        kept[:] = [_types_namespace]
        return None

    BaseModel.model_rebuild = classmethod(keep_namespace)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        BaseModel.model_rebuild = eager  # type: ignore[method-assign]
    for model in _subclasses(BaseModel) if kept else ():
        if model.__module__.startswith("aiogram.") and model.__pydantic_parent_namespace__ is None:
            model.__pydantic_parent_namespace__ = kept[0]


def _subclasses(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """Every subclass of `cls`, however deep."""
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


with _rebuilds_deferred() if "aiogram.types" not in sys.modules else contextlib.nullcontext():
    import aiogram.types

# Built now, not by the first webhook: what every update is parsed with (a few MB).
aiogram.types.Update.model_rebuild()
