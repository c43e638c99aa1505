"""Running the orstream command line in-process, as a user would, with its output captured."""

from __future__ import annotations

import contextlib
import io

from orstream.cli import main


def run_cli(*args: str) -> tuple[int, str, str]:
    """``orstream ARGS``: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()
