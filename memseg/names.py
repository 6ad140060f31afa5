"""The checks of names: `check_names` (a name must be one of the valid ones; UnknownNameError lists
them), MVTec AD's category names, and `check_path_name` for names that become one folder or file
name (a sweep's name, a folder data set's category, a recipe variant), so a name can never write
outside the folder it names a child of. A leaf module: anything may import it, it imports nothing
of the project.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

# The 15 MVTec AD categories, in the order the literature tables use. The data set kinds and the
# other data sets' categories live in memseg.data.registry.
TEXTURE_CATEGORIES: tuple[str, ...] = ("carpet", "grid", "leather", "tile", "wood")
OBJECT_CATEGORIES: tuple[str, ...] = (
    "bottle",
    "cable",
    "capsule",
    "hazelnut",
    "metal_nut",
    "pill",
    "screw",
    "toothbrush",
    "transistor",
    "zipper",
)
CATEGORIES: tuple[str, ...] = tuple(sorted(TEXTURE_CATEGORIES + OBJECT_CATEGORIES))


class UnknownNameError(ValueError):
    """A name that is not one of the valid ones; `what` is the kind of name ("categories"),
    `where` what the names belong to, when that matters ("dataset visa")."""

    def __init__(self, what: str, bad: Sequence[str], valid: Sequence[str], where: str = "") -> None:
        self.what, self.bad, self.valid, self.where = what, tuple(bad), tuple(valid), where
        suffix = f" ({where})" if where else ""
        super().__init__(f"unknown {what} {list(bad)}; valid: {', '.join(valid)}{suffix}")


def check_names(
    what: str, names: Iterable[str], valid: Iterable[str], also_valid: Sequence[str] = (), where: str = ""
) -> tuple[str, ...]:
    """`names` if each is one of `valid`, else an UnknownNameError naming every bad one and listing
    the valid ones (`also_valid` first: words a caller accepts besides the names, like "all")."""
    names, valid = tuple(names), tuple(valid)
    bad = [n for n in names if n not in valid]
    if bad:
        raise UnknownNameError(what, bad, (*also_valid, *valid), where)
    return names


# A name becomes a folder or file name, and so do names derived from it (a job id holds the
# category and the variant; its files are `<job_id>.parquet`, `.<job_id>.safetensors.tmp-<pid>`, ...).
# File systems hold at most 255 bytes per name; the longest name we derive adds 18 bytes and a
# process id of up to 10 digits around it, so a name keeps 32 bytes of room.
NAME_MAX_BYTES = 255
DERIVED_ROOM = 32
MAX_NAME_BYTES = NAME_MAX_BYTES - DERIVED_ROOM

RULE = (
    "a name is one folder name: no '/' or '\\', no leading '.', no control characters, not empty, "
    f"at most {MAX_NAME_BYTES} bytes in UTF-8"
)


class BadName(ValueError):
    """A value used as a path component that is not a plain name."""


def check_path_name(what: str, value: str) -> str:
    """`value` when it is safe as a single path component, else BadName naming `what`, the value,
    what is wrong with it and the rule. `what` says what the value is ("sweep name", "category")."""
    problem = _problem(value)
    if problem:
        raise BadName(f"{what} {_shown(value)} is refused: {problem}; {RULE}")
    return value


def name_bytes(value: str) -> int:
    """How many bytes `value` takes as a file name (UTF-8; a lone surrogate counted as its 3 bytes)."""
    return len(value.encode("utf-8", "surrogatepass"))


def _shown(value: object) -> str:
    """The value as the message shows it: a long name cut after 60 characters."""
    text = repr(value)
    if len(text) <= 64:
        return text
    return f"{value[:50]!r}... ({len(value)} characters)" if isinstance(value, str) else f"{text[:60]}..."


def _problem(value: object) -> str:
    if not isinstance(value, str):
        return f"it is a {type(value).__name__}, not text"
    if not value:
        return "it is empty"
    if name_bytes(value) > MAX_NAME_BYTES:
        return (
            f"it is {name_bytes(value)} bytes long (file systems hold {NAME_MAX_BYTES} bytes per name, and "
            f"{DERIVED_ROOM} are kept for the file names made from it)"
        )
    if any(unicodedata.category(c) == "Cs" for c in value):
        return "it is not valid text (a lone surrogate: bytes that are not UTF-8?)"
    if "/" in value or "\\" in value:
        return "it holds a path separator"
    if value.startswith("."):
        return "it starts with '.' (a hidden file, or '..': the parent folder)"
    control = [c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    if control:
        return f"it holds a control character ({', '.join(sorted({repr(c) for c in control}))})"
    return ""
