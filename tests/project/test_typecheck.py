"""scripts/typecheck.py lays the parts out under their import names, so mypy knows the types
of ``orstream.edge`` (and every other part) instead of taking them as ``Any``."""

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType


def _typecheck_script(project_root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "typecheck", project_root / "scripts" / "typecheck.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_view_maps_every_part_to_its_folder(project_root: Path, tmp_path: Path) -> None:
    script = _typecheck_script(project_root)
    package = script.build_view(tmp_path / "view")
    assert (package / "edge").resolve() == project_root / "edge"
    assert (package / "training" / "registry.py").resolve() == (
        project_root / "training" / "registry.py"
    )
    assert (package / "errors.py").resolve() == project_root / "orstream" / "errors.py"
    assert set(script.parts()) >= {"orstream", "orstream.edge", "orstream.server"}


def test_a_wrong_type_from_another_part_is_caught(project_root: Path, tmp_path: Path) -> None:
    script = _typecheck_script(project_root)
    script.build_view(tmp_path / "view")
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from orstream.edge.graph.rate_sampler import RateSampler\n\n"
        "sampler: int = RateSampler(1.0)\n"
    )
    result = subprocess.run(
        [
            project_root / ".venv" / "bin" / "mypy",
            "--config-file",
            project_root / "pyproject.toml",
            "--cache-dir",
            tmp_path / "cache",
            "--follow-imports=silent",
            probe,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(tmp_path / "view")},
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'expression has type "RateSampler", variable has type "int"' in result.stdout
