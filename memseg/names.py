"""Names that become one folder or file name (a sweep's name, a folder data set's category, a recipe
variant): `check_path_name` is the one rule, so a name can never write outside the folder it
names a child of. A leaf module: anything may import it, it imports nothing of the project.
"""

from __future__ import annotations

import unicodedata

RULE = "a name is one folder name: no '/' or '\\', no leading '.', no control characters, not empty"


class BadName(ValueError):
    """A value used as a path component that is not a plain name."""


def check_path_name(what: str, value: str) -> str:
    """`value` when it is safe as a single path component, else BadName naming `what`, the value,
    what is wrong with it and the rule. `what` says what the value is ("sweep name", "category")."""
    problem = _problem(value)
    if problem:
        raise BadName(f"{what} {value!r} is refused: {problem}; {RULE}")
    return value


def _problem(value: object) -> str:
    if not isinstance(value, str):
        return f"it is a {type(value).__name__}, not text"
    if not value:
        return "it is empty"
    if "/" in value or "\\" in value:
        return "it holds a path separator"
    if value.startswith("."):
        return "it starts with '.' (a hidden file, or '..': the parent folder)"
    control = [c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    if control:
        return f"it holds a control character ({', '.join(sorted({repr(c) for c in control}))})"
    return ""
