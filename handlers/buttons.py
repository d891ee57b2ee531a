"""Buttons: one declared type per kind of button, packed into the id a platform carries back
(`offer:yes:12`) and read back strictly, since that id comes from the person's device."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self, TypeAlias, dataclass_transform

from handlers.ids import parse_id

# Telegram's callback_data limit, the smallest of the channels; counted in UTF-8 bytes.
LIMIT = 64

Rest: TypeAlias = str
"""A last field that takes the rest of the id, colons included (`bc:aud:lang:ar`)."""

_SEP = ":"
_BOOLS = {"yes": True, "no": False}


class ButtonTooLong(ValueError):
    """A button whose id would be over the 64 bytes a Telegram button can carry."""


@dataclass_transform(frozen_default=True)
class Button:
    """A button id: a prefix, then its fields in declaration order, separated by colons.
    Fields are `int` (at most nine ASCII digits), `bool` (yes/no), `str` (no colon) or `Rest`;
    a trailing field left at its default is not written. The id is checked when built."""

    prefix: ClassVar[str] = ""
    is_global: ClassVar[bool] = False
    """Honoured even when not among the buttons offered to the person: it comes in a message
    they did not ask for (an offer, a prompt), or it leads nowhere private; its handler checks."""

    _registry: ClassVar[dict[str, type[Button]]] = {}
    _fields: ClassVar[tuple[tuple[str, str, object], ...]] = ()

    def __init_subclass__(cls, *, prefix: str, is_global: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if prefix in Button._registry:
            raise TypeError(f"button prefix {prefix!r} is declared twice")
        cls.prefix, cls.is_global = prefix, is_global
        dataclasses.dataclass(frozen=True)(cls)
        cls._fields = tuple((field.name, str(field.type), field.default)
                            for field in dataclasses.fields(cls))  # type: ignore[arg-type]
        kinds = [kind for _name, kind, _default in cls._fields]
        if any(kind not in _READERS for kind in kinds) or "Rest" in kinds[:-1]:
            raise TypeError(f"{cls.__name__}: fields are int, bool, str, and Rest last")
        Button._registry[prefix] = cls

    def __post_init__(self) -> None:
        self.pack()

    def pack(self) -> str:
        """The id sent with the button; ButtonTooLong over 64 bytes."""
        values = [(kind, getattr(self, name)) for name, kind, _default in self._fields]
        while values and values[-1][1] == self._fields[len(values) - 1][2]:
            values.pop()
        text = _SEP.join([self.prefix, *(_write(kind, value) for kind, value in values)])
        if len(text.encode()) > LIMIT:
            raise ButtonTooLong(f"button id {text!r} is over {LIMIT} bytes")
        return text

    @classmethod
    def unpack(cls, text: str) -> Button | None:
        """The button `text` is the id of; None for anything we would not have sent."""
        if len(text.encode()) > LIMIT:
            return None
        parts = text.split(_SEP)
        # The longest declared prefix wins: `bc:aud:all` is an audience, `bc:now` a step.
        for size in range(len(parts), 0, -1):
            kind = Button._registry.get(_SEP.join(parts[:size]))
            if kind is not None:
                button = kind._read(parts[size:])
                # Only the id we write for it: not `ws:007`, nor `zone:3:0` for `zone:3`.
                return button if button is not None and button.pack() == text else None
        return None

    @classmethod
    def _read(cls, parts: list[str]) -> Self | None:
        fields = cls._fields
        if fields and fields[-1][1] == "Rest" and len(parts) > len(fields):
            parts = [*parts[:len(fields) - 1], _SEP.join(parts[len(fields) - 1:])]
        required = sum(1 for _name, _kind, default in fields if default is dataclasses.MISSING)
        if not required <= len(parts) <= len(fields):
            return None
        values: dict[str, object] = {}
        for (name, kind, _default), part in zip(fields, parts, strict=False):
            value = _READERS[kind](part)
            if value is None:
                return None
            values[name] = value
        return cls(**values)


def _write(kind: str, value: object) -> str:
    if kind == "int" and type(value) is int and 0 <= value <= 999_999_999:
        return str(value)
    if kind == "bool" and isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "str" and isinstance(value, str) and _SEP not in value:
        return value
    if kind == "Rest" and isinstance(value, str):
        return value
    raise ValueError(f"{value!r} cannot be written in a button id as {kind}")


_READERS: dict[str, Any] = {
    "int": parse_id,
    "bool": _BOOLS.get,
    "str": lambda part: part,
    "Rest": lambda part: part,
}


# The button every feature offers; the others are declared by the feature that handles them
# (handlers/stands.py...). handlers/router.py imports every feature, so their classes are
# registered before a button is unpacked.
class Menu(Button, prefix="menu", is_global=True):
    """Back to the main menu."""
