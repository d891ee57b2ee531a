"""Typed flows: a flow's states are a StrEnum its feature owns (each value is what the session
stores as `flow`), and the data of each state a frozen dataclass deriving from FlowData, kept
in the session as a plain dict (`data`), the shape sessions saved by earlier versions have."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError


class FlowData:
    """The data of a flow state; each is a frozen dataclass declared with its state:
    `class CommentFlow(FlowData, state=Flow.COMMENT)`."""

    __slots__ = ()

    state: ClassVar[StrEnum]
    _by_state: ClassVar[dict[str, type[FlowData]]] = {}
    _adapter: ClassVar[TypeAdapter[Any]]

    def __init_subclass__(cls, *, state: StrEnum, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if str(state) in FlowData._by_state:
            raise TypeError(f"flow state {state!s} has two data classes")
        cls.state = state
        FlowData._by_state[str(state)] = cls

    def dump(self) -> dict[str, Any]:
        """The plain dict the session stores."""
        plain = type(self)._adapter_of().dump_python(self, mode="json")
        assert isinstance(plain, dict)
        return plain

    @classmethod
    def _adapter_of(cls) -> TypeAdapter[Any]:
        if "_adapter" not in cls.__dict__:
            cls._adapter = TypeAdapter(cls)
        return cls._adapter


def flow_states() -> dict[str, type[FlowData]]:
    """Every flow state that has its data class, by the value the session stores."""
    return dict(FlowData._by_state)


def load_flow(state: object, data: object) -> FlowData | None:
    """The typed data of a stored flow; None when there is none, or what is stored no longer
    fits (an unknown state, missing or wrong values): the person is then in no flow."""
    kind = FlowData._by_state.get(state) if isinstance(state, str) else None
    if kind is None:
        return None
    try:
        flow = kind._adapter_of().validate_python(data if isinstance(data, dict) else {})
    except ValidationError:
        return None
    assert isinstance(flow, FlowData) and dataclasses.is_dataclass(flow)
    return flow
