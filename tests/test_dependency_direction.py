"""Imports follow DESIGN.md's dependency direction; the edge never needs torch or Lightning."""

import ast
import tomllib
from pathlib import Path

import pytest

FOLDERS = {
    "orstream": "orstream",
    "streams": "orstream.streams",
    "edge": "orstream.edge",
    "export": "orstream.export",
    "training": "orstream.training",
    "server": "orstream.server",
    "proto": "orstream.proto",
}
PART_NAMES = {v: k for k, v in FOLDERS.items()}
ALLOWED = {
    "orstream": {"orstream"},
    "streams": {"orstream", "streams"},
    "edge": {"orstream", "streams", "edge", "proto"},
    "training": {"orstream", "streams", "training"},
    "export": {"orstream", "streams", "edge", "training", "export"},
    "server": {"orstream", "training", "server", "proto"},
    "proto": {"orstream", "proto"},
}
EDGE_FORBIDDEN_LIBRARIES = {"torch", "lightning", "pytorch_lightning", "timm", "torchvision"}


def _part_of(module: str) -> str | None:
    for prefix in sorted(PART_NAMES, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return PART_NAMES[prefix]
    return None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_parts_import_only_what_they_may(project_root: Path, part: str) -> None:
    wrong = []
    for path in sorted((project_root / part).rglob("*.py")):
        for module in _imports(path):
            target = _part_of(module)
            if target is not None and target not in ALLOWED[part]:
                wrong.append(f"{path.relative_to(project_root)} imports {module}")
            if part == "edge" and module.split(".")[0] in EDGE_FORBIDDEN_LIBRARIES:
                wrong.append(f"{path.relative_to(project_root)} imports {module}")
    assert wrong == []


def test_edge_extra_pulls_in_no_training_stack(project_root: Path) -> None:
    extras = tomllib.loads((project_root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {
        req.split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
        for req in extras["edge"]
    }
    assert names & (EDGE_FORBIDDEN_LIBRARIES | {"orstream"}) == set()
