"""Options as JSON values, for a study's manifest and its provenance.

Containers are kept, JSON scalars pass, non-finite floats become strings, and any other object is
described by ``describe(value)`` (default: its repr, with memory addresses removed so that the same
object described twice reads the same).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["jsonable"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _repr_without_address(value: Any) -> str:
    return _ADDRESS.sub("", repr(value))


def jsonable(
    value: Any,
    *,
    sort_keys: bool = False,
    describe: Callable[[Any], Any] = _repr_without_address,
) -> Any:
    """``value`` as nested dicts, lists, strings, numbers, booleans and ``None``.

    Arguments:
        value: Options, possibly nested in mappings, lists and tuples.
        sort_keys: Order mapping keys, so that equal options compare equal after a round trip.
        describe: How to turn an object that is none of the above into a JSON value.
    """
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0])) if sort_keys else value.items()
        return {str(k): jsonable(v, sort_keys=sort_keys, describe=describe) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, sort_keys=sort_keys, describe=describe) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return describe(value)
