"""YAML files a user writes (sweep files), read strictly: safe tags only (no `!!python/object`), a
key given twice in one mapping refused naming both lines (plain YAML would keep the last one
silently), aliases that expand past any real file's size refused (an alias bomb would otherwise
hang every message that shows the value), and a file that is not UTF-8 named. Numbers such as
`1e-3` are numbers, as YAML 1.2 reads them (YAML 1.1 needs `1.0e-3` and reads `1e-3` as text).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode

# More values than any sweep file holds (a full sweep is a few hundred), far fewer than an alias
# bomb expands to: counting stops here, so the check itself is bounded.
MAX_VALUES = 100_000

_MERGE_TAG = "tag:yaml.org,2002:merge"
_FLOAT_1_2 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class RepeatedKey(yaml.YAMLError):
    """A mapping that gives one key twice."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Only the keys written in this mapping: a key merged in with `<<: *base` may be overridden.
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class names it
                continue
            if first is not None:
                raise RepeatedKey(
                    f"key {key!r} is given twice in one mapping (line {first} and line {line}); "
                    "YAML would keep the last one silently: keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789."))


def _count(data: object, limit: int) -> int:
    """How many values `data` holds when every alias is written out, counting up to `limit`."""
    count, stack = 0, [data]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def parse_yaml(text: str, what: str) -> Any:
    """The data in YAML `text`, strictly (see the module's docstring); ValueError starting with
    `what` (e.g. "sweep file jobs/x.yaml") for anything refused."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader with stricter mappings
    except RepeatedKey as err:
        raise ValueError(f"{what}: {err}") from None
    except yaml.MarkedYAMLError as err:  # one line: where, and what is wrong there
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ValueError(f"{what} is not valid YAML: {where}{err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{what} is not valid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ValueError(f"{what} nests its values too deeply to be a sweep") from None
    if _count(data, MAX_VALUES) > MAX_VALUES:
        raise ValueError(f"{what} expands to more than {MAX_VALUES} values (aliases of aliases?); a sweep file holds far fewer")
    return data


def load_yaml(path: Path, what: str) -> Any:
    """The data in YAML file `path` (`parse_yaml`); `what` names it ("sweep file")."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read {what} {path}: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{what} {path} is not UTF-8 text (byte {err.start} is {raw[err.start : err.start + 1]!r}): save it as UTF-8"
        ) from None
    return parse_yaml(text, f"{what} {path}")
