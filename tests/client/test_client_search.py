"""``orstream client search`` and ``orstream client prompts`` against a real edge gRPC server
with a real (random) video-text model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runs import run_cli
from edge_samples import sample_status

from orstream.client.prompts_command import parse_set
from orstream.edge.models.video_text_model import VideoTextModel
from orstream.edge.models.video_text_runner import VideoTextRunner
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.errors import OrstreamError
from orstream.export.onnx.parity import phantom_frames
from orstream.package.loading import load_package
from orstream.streams.frame import Frame
from orstream.video_search import SearchRequest

S = 1_000_000_000


@pytest.fixture(scope="module")
def model(random_videotext_package: Path) -> VideoTextModel:
    model = VideoTextModel(VideoTextRunner.load(load_package(random_videotext_package)))
    for i, image in enumerate(phantom_frames(8)):
        model.infer([Frame(image, pts_ns=i * 5 * S, capture_ns=i, index=i * 10, stream_id="endo")])
    return model


@pytest.fixture(scope="module")
def address(model: VideoTextModel) -> Iterator[str]:
    server = EdgeGrpcServer(ResultHub(), sample_status, "127.0.0.1:0", video_text=model)
    server.start()
    yield f"127.0.0.1:{server.port}"
    server.stop(grace_s=0.5)


def test_search_prints_the_models_moments(address: str, model: VideoTextModel) -> None:
    code, out, _ = run_cli("client", "search", "the suction", "--address", address, "--json")
    assert code == 0
    answer = json.loads(out)
    expected = model.search(SearchRequest("the suction"))
    assert answer["stream_id"] == "endo" and answer["searched"] == 8
    assert [m["index"] for m in answer["moments"]] == [m.index for m in expected.moments]
    assert answer["moments"][0]["end_s"] == expected.moments[0].pts_ns / 1e9
    code, out, _ = run_cli("client", "search", "the suction", "--address", address, "--limit", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith('stream endo: "the suction" over 8 clips') and len(lines) == 2
    assert f"frame {expected.moments[0].index}" in lines[1]


def test_bad_searches_are_one_line(address: str) -> None:
    code, _, err = run_cli("client", "search", " ", "--address", address)
    assert code == 2 and "the search text is empty" in err
    code, _, err = run_cli("client", "search", "x", "--address", address, "--stream", "exo")
    assert code != 0 and "no clips of stream 'exo'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("client", "search", "w " * 90, "--address", address)
    assert code != 0 and "the text is too long" in err


def test_prompts_are_set_and_reset(address: str, model: VideoTextModel) -> None:
    code, out, _ = run_cli(
        "client", "prompts", "--address", address, "--set", "5=the sella is opened", "--json"
    )
    assert code == 0 and json.loads(out)["5"] == "the sella is opened"
    assert model.prompts()[5] == "the sella is opened"
    code, out, _ = run_cli("client", "prompts", "--address", address, "--reset")
    assert code == 0 and len(out.splitlines()) == 15
    assert model.prompts()[5] == model.package.text_section().prompts[5]  # index 5: step 5
    code, _, err = run_cli("client", "prompts", "--address", address)
    assert code == 2 and "give --set CODE=TEXT or --reset" in err


def test_set_options_are_parsed_strictly() -> None:
    assert parse_set("-1=the scope is out=of the nose") == (-1, "the scope is out=of the nose")
    for bad in ("5", "five=x", "=x"):
        with pytest.raises(OrstreamError, match="give CODE=TEXT"):
            parse_set(bad)
