"""The built wheel must hold every module of every part, mapped into the orstream namespace."""

import ast
import subprocess
import sys
import zipfile
from pathlib import Path


def _parts(root: Path) -> dict[str, str]:
    """The namespace -> folder mapping that setup.py declares."""
    tree = ast.parse((root / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PARTS":
            return dict(ast.literal_eval(node.value))
    raise AssertionError("setup.py declares no PARTS mapping")


def _source_modules(root: Path) -> set[str]:
    modules = set()
    for namespace, folder in _parts(root).items():
        for path in (root / folder).rglob("*.py"):
            parts = path.relative_to(root / folder).with_suffix("").parts
            modules.add(f"{namespace.replace('.', '/')}/{'/'.join(parts)}.py")
    return modules


def test_wheel_holds_every_module(project_root: Path, tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(project_root),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("orstream-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _source_modules(project_root)
    assert expected, "no modules found in the source tree"
    assert expected - names == set()
    assert "orstream/streams/__init__.py" in names
    assert "orstream/training/registry.py" in names
    # Data the code needs at run time: every file of the shipped model packages (cards, graphs,
    # text prompts, golden references) and the training configs.
    shipped = {
        "orstream/edge/" + path.relative_to(project_root / "edge").as_posix()
        for path in (project_root / "edge" / "packages").rglob("*")
        if path.is_file() and "engines" not in path.parts
    }
    assert "orstream/edge/packages/imis_segmenter/text_prompts.npy" in shipped
    assert shipped - names == set()
    assert "orstream/training/configs/workflow_phantom.yaml" in names
    slide = project_root / "orstream" / "slides" / "packages"
    slide_files = {
        "orstream/slides/packages/" + path.relative_to(slide).as_posix()
        for path in slide.rglob("*")
        if path.is_file()
    }
    assert "orstream/slides/packages/slide_mil/slide_encoder.onnx" in slide_files
    assert slide_files - names == set()
