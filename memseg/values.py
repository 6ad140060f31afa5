"""The one check of a value against the type a dataclass field declares (`check_field_values`):
an integer field takes an integer, a number field a finite number, a text field text, a yes/no
field true or false. A JobConfig's recipe can come from flags, a sweep file's overrides or its
variants, or a stored config; each goes through this check, so a value of the wrong kind is
refused with its field's name before any job starts, never found by a TypeError mid-run.

A leaf module: anything may import it, it imports nothing of the project.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import reprlib
from typing import Any

# What a 64-bit integer holds: seeds and counts are stored in int64 columns and handed to torch,
# so a larger integer would pass every check here and fail only when the job writes its row.
INT64_MAX = 2**63 - 1

_WORDS = {"int": "an integer", "float": "a finite number", "str": "text", "bool": "true or false", "None": "null"}

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 6
_short.maxlevel = 2


def shown(value: object) -> str:
    """`value` as a message shows it: its repr, shortened to a few dozen characters (a value may be
    a 10 000-character string or a list of a million items)."""
    return _short.repr(value)


def _matches(kind: str, value: object) -> bool:
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an int to Python, never a count or a rate to us
        return False
    if kind == "int":
        return isinstance(value, numbers.Integral)
    if kind == "float":
        return isinstance(value, numbers.Real)
    return isinstance(value, str)


def check_value(name: str, annotation: str, value: object) -> None:
    """ValueError naming `name`, the value and what was expected, unless `value` is of the type
    `annotation` spells ("int", "float | None", ...). A number must be finite and an integer fit
    64 bits. An annotation of another kind (a mapping, a tuple) is its owner's to check."""
    kinds = [part.strip() for part in annotation.split("|")]
    if not all(kind in _WORDS for kind in kinds):
        return
    matched = next((kind for kind in kinds if _matches(kind, value)), None)
    if matched is None:
        expected = " or ".join(_WORDS[kind] for kind in kinds)
        raise ValueError(f"{name} must be {expected}, got {shown(value)} ({type(value).__name__})")
    if matched in ("int", "float") and isinstance(value, numbers.Integral) and abs(int(value)) > INT64_MAX:
        raise ValueError(f"{name} must be at most {INT64_MAX} in size (a 64-bit integer), got {shown(value)}")
    if matched == "float" and not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_field_values(instance: Any, owner: str = "") -> None:
    """Every field of dataclass `instance` checked against its declared type (`check_value`);
    `owner` prefixes the field's name in the message ("variant 'fast': lr ...")."""
    for f in dataclasses.fields(instance):
        check_value(f"{owner}{f.name}", str(f.type), getattr(instance, f.name))


def field_annotations(cls: type) -> dict[str, str]:
    """Field name -> its declared type as written (`from __future__ import annotations`: text)."""
    return {f.name: str(f.type) for f in dataclasses.fields(cls)}
