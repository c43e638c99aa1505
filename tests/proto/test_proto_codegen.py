"""The committed generated modules match their .proto files; results survive the wire."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from orstream.proto import codegen
from orstream.proto.convert import (
    result_from_proto,
    result_to_proto,
    segment_from_proto,
    segment_to_proto,
)
from orstream.results import FrameResult, InstrumentResult, StepResult
from orstream.step_timeline import StepSegment

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


def _full_result() -> FrameResult:
    return FrameResult(
        stream_id="cam1",
        index=4321,
        pts_ns=180_041_666_667,
        capture_ns=9_000_000_000,
        produced_ns=9_042_500_000,
        models=("pitvis_workflow@1.2.0", "other@0.1"),
        step=StepResult(code=5, confidence=0.8731),
        instruments=InstrumentResult(slots=(16, 8), present=((16, 0.91), (8, 0.55))),
        stale=True,
    )


def test_frame_result_round_trips_with_readable_names() -> None:
    result = _full_result()
    message = result_to_proto(result)
    assert message.step.name == "sellotomy"
    assert [p.name for p in message.instruments.present] == ["suction", "kerrisons"]
    wire = type(message).FromString(message.SerializeToString())
    assert result_from_proto(wire) == result


@pytest.mark.parametrize(
    "result",
    [
        FrameResult("cam0", 0, 0, 1, 2, ()),
        FrameResult("cam0", 7, 5, 1, 2, ("m@1",), step=StepResult(-1, 1.0)),
        FrameResult(
            "cam0", 8, 5, 1, 2, ("m@1",), instruments=InstrumentResult(slots=(0, -2), present=())
        ),
    ],
    ids=["no-kinds", "step-only-out-of-patient", "instruments-none-visible"],
)
def test_missing_kinds_stay_missing(result: FrameResult) -> None:
    message = result_to_proto(result)
    assert message.HasField("step") == (result.step is not None)
    assert message.HasField("instruments") == (result.instruments is not None)
    assert result_from_proto(message) == result


def test_step_segment_round_trips() -> None:
    segment = StepSegment(code=9, start_index=120, end_index=480, start_pts_ns=5, end_pts_ns=15)
    message = segment_to_proto(segment)
    assert message.name == "tumour_excision"
    assert segment_from_proto(type(message).FromString(message.SerializeToString())) == segment
