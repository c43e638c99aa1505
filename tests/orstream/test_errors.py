"""Errors quote what a caller sent only briefly and cleanly."""

from orstream.errors import QUOTE_CHARS, quoted


def test_short_values_are_quoted_whole_and_long_ones_cut_with_their_length() -> None:
    assert quoted("cam0") == "'cam0'"
    long = quoted("a" * 20_000)
    assert long == repr("a" * QUOTE_CHARS) + "... (20000 characters)"
    assert quoted("bell\x07\nend") == "'bell??end'"
    assert quoted(["x"] * 3) == repr("['x', 'x', 'x']")
