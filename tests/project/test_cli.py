"""Every subcommand answers --help, and user errors are one line with a non-zero exit."""

import subprocess
from pathlib import Path

import pytest

from orstream.cli import COMMANDS, GROUP_HELP, main


@pytest.mark.parametrize("words", [c.words for c in COMMANDS] + [(g,) for g in GROUP_HELP] + [()])
def test_help_everywhere(words: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: orstream" in capsys.readouterr().out


def test_help_does_not_import_heavy_libraries(project_root: Path) -> None:
    code = (
        "import sys; from orstream.cli import build_parser; build_parser();"
        "heavy = {'torch', 'lightning', 'onnxruntime', 'onnx', 'numba', 'cv2', 'av', 'gi'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run(
        [project_root / ".venv/bin/python", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_unknown_command_exits_non_zero(project_root: Path) -> None:
    result = subprocess.run(
        [project_root / ".venv/bin/orstream", "no-such-command"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
