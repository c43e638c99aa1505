"""mypy over the ``orstream`` namespace as it is installed, every part under its import name.

The top-level folders map into ``orstream.*`` through setuptools' ``package-dir``
(setup.py's ``PARTS``), which mypy cannot follow: run over the folders, it sees
``orstream.edge.*``, ``orstream.training.*`` and the other parts as missing imports, so every
type crossing a part (or a module of the same part imported by its full name) became ``Any``
and went unchecked. This script lays the parts out as the installed package is laid out, in
symbolic links under ``build/typecheck/orstream`` (the core's entries, then each part under its
name), and checks that package: every import resolves to its source.

Usage: ``.venv/bin/python scripts/typecheck.py [mypy options]``; exits with mypy's status.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parts() -> dict[str, str]:
    """setup.py's ``PARTS``: import name -> folder."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "PARTS" for target in node.targets
        ):
            found: dict[str, str] = ast.literal_eval(node.value)
            return found
    raise SystemExit("setup.py has no PARTS mapping")


def build_view(view: Path) -> Path:
    """The package laid out under ``view``; returns its ``orstream`` folder."""
    if view.exists():
        shutil.rmtree(view)
    package = view / "orstream"
    package.mkdir(parents=True)
    mapping = parts()
    for entry in sorted((ROOT / mapping["orstream"]).iterdir()):
        if entry.name not in ("__pycache__",):
            (package / entry.name).symlink_to(entry)
    for name, folder in mapping.items():
        if name != "orstream":
            (package / name.removeprefix("orstream.")).symlink_to(ROOT / folder)
    return package


def main() -> int:
    view = ROOT / "build" / "typecheck"
    build_view(view)
    mypy = Path(sys.executable).parent / "mypy"
    command = [
        str(mypy),
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(ROOT / ".mypy_cache"),
        "-p",
        "orstream",
        *sys.argv[1:],
    ]
    return subprocess.run(command, cwd=view).returncode


if __name__ == "__main__":
    sys.exit(main())
