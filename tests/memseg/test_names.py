"""The one rule for values that become a folder or file name (memseg.names)."""

from __future__ import annotations

import pytest

from memseg import names

BAD = ("../x", "a/b", ".hidden", "bad\nname")
GOOD = ("bottle", "my-sweep_2", "a..b", "Ünïcode name")


@pytest.mark.parametrize("value", BAD + ("", "tab\there", "back\\slash", "..", "zero\u200bwidth"))
def test_the_validator_refuses_what_is_not_one_name(value):
    with pytest.raises(names.BadName, match="a name is one folder name") as caught:
        names.check_path_name("thing", value)
    assert f"thing {value!r} is refused" in str(caught.value)


@pytest.mark.parametrize("value", GOOD)
def test_the_validator_keeps_names(value):
    assert names.check_path_name("thing", value) == value
