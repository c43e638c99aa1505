"""Errors a user can act on.

Raise :class:`OrstreamError` for anything caused by the user's input (a missing file, a
malformed CSV, a package that does not match its ONNX). The CLI prints its message as one
line and exits non-zero; any other exception is a bug and keeps its traceback.
"""


class OrstreamError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""
