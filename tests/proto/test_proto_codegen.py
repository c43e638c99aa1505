"""The committed generated modules match their .proto files and import each other."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from orstream.proto import codegen

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _committed_generated(root: Path) -> set[Path]:
    return {
        path.relative_to(root)
        for path in (root / "orstream").rglob("*")
        if path.name.endswith(GENERATED_SUFFIXES)
    }


def test_regeneration_changes_nothing(tmp_path: Path) -> None:
    written = codegen.generate(tmp_path)
    root = codegen.PROTO_ROOT
    assert set(written) == _committed_generated(root), "generated files differ in name"
    stale = [
        str(path) for path in written if (tmp_path / path).read_text() != (root / path).read_text()
    ]
    assert stale == [], "run `python -m orstream.proto.codegen` and commit the result"


def test_codegen_command_writes_into_a_folder(project_root: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orstream.proto.codegen", "--out", str(tmp_path)],
        cwd=project_root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "orstream/v1/edge_pb2_grpc.py").is_file()
    # Only files that declare a service get a gRPC module.
    assert not (tmp_path / "orstream/v1/results_pb2_grpc.py").exists()


def test_codegen_reports_a_broken_proto(tmp_path: Path) -> None:
    broken = tmp_path / "src/orstream/v1/broken.proto"
    broken.parent.mkdir(parents=True)
    broken.write_text('syntax = "proto3";\npackage orstream.v1;\nmessage Broken { int32 = 1; }\n')
    from orstream.errors import OrstreamError

    with pytest.raises(OrstreamError, match="protoc failed"):
        codegen.generate(tmp_path / "out", root=tmp_path / "src")


def test_generated_modules_import_each_other_inside_orstream_proto() -> None:
    grpc_module = importlib.import_module("orstream.proto.orstream.v1.edge_pb2_grpc")
    edge = importlib.import_module("orstream.proto.orstream.v1.edge_pb2")
    assert grpc_module.EdgeServiceStub is not None
    assert edge.SubscribeResponse.__module__ == "orstream.proto.orstream.v1.edge_pb2"
    # The result messages edge.proto uses come from the results module, not a second copy.
    results = importlib.import_module("orstream.proto.orstream.v1.results_pb2")
    assert edge.SubscribeResponse().result.__class__ is results.FrameResult
    assert "orstream.v1" not in sys.modules
