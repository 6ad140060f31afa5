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


def test_a_name_keeps_room_under_the_file_name_limit_counted_in_bytes():
    assert names.MAX_NAME_BYTES + names.DERIVED_ROOM == 255
    assert names.check_path_name("variant name", "v" * names.MAX_NAME_BYTES)
    for too_long in ("v" * (names.MAX_NAME_BYTES + 1), "é" * (names.MAX_NAME_BYTES // 2 + 1)):  # é is 2 bytes
        with pytest.raises(names.BadName, match=f"bytes long .*at most {names.MAX_NAME_BYTES} bytes") as caught:
            names.check_path_name("variant name", too_long)
        assert len(str(caught.value)) < 400  # the name is shown cut, not written out


def test_the_longest_file_made_from_a_name_fits_the_limit():
    """The longest name derived from a job id: a checkpoint's temporary file, with a 10-digit pid."""
    longest = f".{'j' * names.MAX_NAME_BYTES}.safetensors.tmp-{'9' * 10}"
    assert len(longest.encode()) <= names.NAME_MAX_BYTES


def test_a_lone_surrogate_is_refused_not_a_traceback():
    with pytest.raises(names.BadName, match="not valid text"):
        names.check_path_name("sweep name", "bad\udcffname")
