"""Numbers inside button ids, read strictly: a button id comes back from the person's device,
so it may be anything."""

from __future__ import annotations

import re

# ASCII digits only (str.isdigit also takes "²", which int() then refuses, and "١٢"), and few
# of them: no id of ours is longer, and int() of a huge string costs time.
_NUMBER = re.compile(r"[0-9]{1,9}")


def parse_id(text: str) -> int | None:
    """The number `text` is, written in at most nine ASCII digits; None for anything else."""
    return int(text) if _NUMBER.fullmatch(text) else None
