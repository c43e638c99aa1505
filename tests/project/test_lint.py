"""ruff, ruff-format and mypy stay clean on every part of the package (mypy through
scripts/typecheck.py, which lays the parts out under their import names so that types crossing
parts are checked, not taken as ``Any``)."""

import subprocess
from pathlib import Path

import pytest

PARTS = ["orstream", "streams", "edge", "export", "training", "server", "proto", "client"]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", *PARTS, "tests"],
        ["ruff", "format", "--check", *PARTS, "tests"],
        ["python", "scripts/typecheck.py"],
    ],
    ids=["ruff", "ruff-format", "mypy"],
)
def test_tool_is_clean(project_root: Path, command: list[str]) -> None:
    tool = project_root / ".venv" / "bin" / command[0]
    result = subprocess.run([tool, *command[1:]], cwd=project_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
