"""JSON text for the realtime protocols: compact, UTF-8 as is, no NaN; orjson when installed.

`dumps` writes what ``json.dumps(value, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` writes, and `loads` reads what ``json.loads`` reads. With the ``speed``
extra (``pip install fullduplex[speed]``) both try orjson first, about five times faster for
the short arrays of an event or an ack, and hand everything orjson treats differently to the
standard library, so the result does not depend on the extra:

- orjson writes NaN and the infinities as ``null``, where the standard library refuses them:
  text holding ``null`` for a value holding a float is written again by the standard
  library, which decides.
- orjson refuses what the standard library takes (integers beyond 64 bits when writing,
  dictionary keys that are not strings, lone surrogates, NaN and Infinity literals when
  reading, nesting deeper than 1,024): it raises, and the standard library decides.
- orjson reads an integer beyond 64 bits as a float: a value holding a float, read from text
  with 19 digits in a row, is read again by the standard library.
- Floats may be spelled differently (``1e16`` where the standard library writes ``1e+16``):
  the same number for any JSON reader. orjson also writes a few types the standard library
  refuses (UUIDs, plain enums); dataclasses and datetimes it leaves to the standard library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads", "HAS_ORJSON"]

_std_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_std_loads = json.JSONDecoder().decode


def _with_orjson() -> tuple[Callable[[Any], str], Callable[[str], Any]] | None:
    """`dumps` and `loads` on orjson, or None without it."""
    try:
        import orjson
    except ImportError:  # the ``speed`` extra is not installed
        return None
    orjson_dumps = orjson.dumps
    orjson_loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    # Dataclasses and datetimes go to ``default`` (none), so orjson raises as json does.
    options = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME

    def dumps(value: Any) -> str:
        """Return ``value`` as compact JSON text.

        Raises:
            ValueError: ``value`` holds NaN or an infinity.
            TypeError: ``value`` holds something JSON cannot carry (bytes, an object).
        """
        try:
            text: str = orjson_dumps(value, option=options).decode()
        except TypeError:
            return _std_dumps(value)
        if "null" in text and _holds_any_float(value):
            return _std_dumps(value)  # perhaps a NaN that orjson wrote as null
        return text

    def loads(text: str) -> Any:
        """Return the value of the JSON ``text``.

        Raises:
            ValueError: ``text`` is not JSON (`json.JSONDecodeError`).
        """
        try:
            value = orjson_loads(text)
        except decode_error:
            return _std_loads(text)
        # The search first: it runs in C, and rules the rare case out for most texts.
        if _LONG_INTEGER.search(text) is not None and _holds_float(value):
            return _std_loads(text)  # perhaps an integer beyond 64 bits, read as a float
        return value

    return dumps, loads


# orjson reads an integer that does not fit in 64 bits (19 digits or more) as a float.
_LONG_INTEGER = re.compile(r"[0-9]{19}")


def _holds_any_float(value: Any) -> bool:
    """Whether a value to write holds a float, of any float type (without recursion)."""
    values = [value]
    while values:
        item = values.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            values.extend(item.values())
        elif isinstance(item, list | tuple):
            values.extend(item)
    return False


def _holds_float(value: Any) -> bool:
    """Whether a JSON value holds a float (without recursion: nesting may be deep)."""
    kind = type(value)
    if kind is float:
        return True
    if kind is not list and kind is not dict:
        return False
    containers = [value]
    while containers:
        container = containers.pop()
        for item in container.values() if type(container) is dict else container:
            kind = type(item)
            if kind is float:
                return True
            if kind is list or kind is dict:
                containers.append(item)
    return False


_functions = _with_orjson()
HAS_ORJSON = _functions is not None
"""Whether `dumps` and `loads` use orjson (the ``speed`` extra is installed)."""
dumps, loads = _functions or (_std_dumps, _std_loads)
