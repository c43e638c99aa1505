"""Imports follow DESIGN.md's dependency direction; the edge never needs torch or Lightning, and
neither the edge nor the server imports training code or Lightning (they run model packages).

torch is optional on the edge: only the GPU modules below import it, and the rest of the edge
reaches them lazily (through the backend registry), so a host without torch runs everything
else.
"""

import ast
import subprocess
import sys
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
    "client": "orstream.client",
}
PART_NAMES = {v: k for k, v in FOLDERS.items()}
ALLOWED = {
    "orstream": {"orstream"},
    "streams": {"orstream", "streams"},
    "edge": {"orstream", "streams", "edge", "proto"},
    "training": {"orstream", "streams", "training"},
    "export": {"orstream", "streams", "edge", "training", "export"},
    "server": {"orstream", "server", "proto"},
    "proto": {"orstream", "proto"},
    "client": {"orstream", "proto", "client"},
}
EDGE_FORBIDDEN_LIBRARIES = {"torch", "lightning", "pytorch_lightning", "timm", "torchvision"}
SERVING_FORBIDDEN_LIBRARIES = {"lightning", "pytorch_lightning", "timm"}
"""Training libraries that the server, and the core it shares with the edge, never import."""
EDGE_TORCH_MODULES = {
    "edge/backends/onnx_torch_ops.py",
    "edge/backends/onnx_torch_program.py",
    "edge/backends/torch_backend.py",
    "edge/backends/tensorrt_backend.py",
    "edge/backends/host_probe.py",
    "edge/models/gpu_preprocess.py",
    "edge/bench/gpu.py",
}
"""Edge modules that may import torch (the torch and TensorRT backends and the GPU check)."""


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
            library = module.split(".")[0]
            relative = path.relative_to(project_root).as_posix()
            torch_allowed = library == "torch" and relative in EDGE_TORCH_MODULES
            if part == "edge" and library in EDGE_FORBIDDEN_LIBRARIES and not torch_allowed:
                wrong.append(f"{relative} imports {module}")
            if part in ("orstream", "server") and library in SERVING_FORBIDDEN_LIBRARIES:
                wrong.append(f"{relative} imports {module}")
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


def test_running_the_edge_imports_no_torch(project_root: Path) -> None:
    # The runtime, its gRPC server, the backends' registry and ONNX Runtime's backend load
    # without torch: the torch modules are imported only when a torch backend is asked for.
    code = (
        "import sys\n"
        "import orstream.edge.app.compose, orstream.edge.service.server, orstream.edge.backends\n"
        "import orstream.edge.backends.onnxruntime_backend, orstream.edge.models.segmenter_model\n"
        "print(sorted(m for m in ('torch', 'lightning', 'timm') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=project_root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
