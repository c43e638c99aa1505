"""Errors a user can act on.

Raise :class:`OrstreamError` for anything caused by the user's input (a missing file, a
malformed CSV, a package that does not match its ONNX). The CLI prints its message as one
line and exits non-zero; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from pydantic import ValidationError


class OrstreamError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""


def describe_validation_error(error: ValidationError) -> str:
    """The first problem pydantic found, as one line naming its field (and how many more)."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    where = f"field {field!r}: " if field else ""
    more = error.error_count() - 1
    extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}{first['msg'].removeprefix('Value error, ')}{extra}"


QUOTE_CHARS = 40
"""The most characters of a caller's value an error message repeats."""


def quoted(value: object, limit: int = QUOTE_CHARS) -> str:
    """``value`` quoted for an error message that goes back to whoever sent it: its first
    ``limit`` characters, anything unprintable as ``?``, and its length when it was cut. A
    20 kB name in a message would otherwise be sent straight back (and overflow gRPC's
    metadata, turning a clear refusal into RESOURCE_EXHAUSTED)."""
    text = str(value)
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return repr(shown) if len(text) <= limit else f"{shown!r}... ({len(text)} characters)"
