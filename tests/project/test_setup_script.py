"""The README's set-up (scripts/setup.sh) installs the project with every extra it declares, so
a fresh machine runs every test and command."""

import re
import tomllib
from pathlib import Path


def test_setup_installs_every_extra(project_root: Path) -> None:
    declared = tomllib.loads((project_root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    script = (project_root / "scripts" / "setup.sh").read_text()
    installs = re.findall(r'pip install --quiet -e "\.\[([^\]]+)\]"', script)
    assert len(installs) == 1, installs
    assert sorted(installs[0].split(",")) == sorted(declared)
