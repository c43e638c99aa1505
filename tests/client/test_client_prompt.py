"""``orstream client prompt`` against a real edge gRPC server with a real (random) segmenter."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from edge_samples import HEIGHT, WIDTH, frame, free_port, sample_status
from segmenter_checkpoints import random_segmenter_package

from orstream.cli import main
from orstream.client.prompt_command import (
    Click,
    build_request,
    format_answer,
    mask_area,
    mask_file_name,
    parse_box,
    parse_point,
)
from orstream.edge.models.frame_prompter import FramePrompter
from orstream.edge.models.segmenter_model import MaskPrediction, SegmenterModel
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.errors import OrstreamError
from orstream.package.loading import load_package
from orstream.results import SegmentMask
from orstream.segmentation.mask_rle import MaskRle, decode_mask, encode_mask
from orstream.segmentation.prompts import Prompt, PromptAnswer, PromptRequest

BOX = "40,30,200,150"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SegmenterModel:
    root = random_segmenter_package(tmp_path_factory.getbasetemp())
    return SegmenterModel.load(load_package(root))


@pytest.fixture(scope="module")
def prompter(model: SegmenterModel) -> FramePrompter:
    prompter = FramePrompter(model, keep_frames=4, keep_embeddings=2)
    for index in range(10):
        prompter.remember(frame(index))
    return prompter


@pytest.fixture(scope="module")
def address(prompter: FramePrompter) -> Iterator[str]:
    server = EdgeGrpcServer(ResultHub(), sample_status, "127.0.0.1:0", prompter=prompter)
    server.start()
    yield f"127.0.0.1:{server.port}"
    server.stop(grace_s=0.5)


def prompt(address: str, *args: str) -> list[str]:
    return ["client", "prompt", "--address", address, "--timeout", "30", *args]


def expected(model: SegmenterModel, index: int, *prompts: Prompt) -> list[MaskPrediction]:
    embedding = model.embed(frame(index).image)
    return [model.segment(embedding, p) for p in prompts]


def tight_box(mask: np.ndarray) -> str:
    if not mask.any():
        return "none"
    rows, cols = np.nonzero(mask)
    return f"{cols.min()},{rows.min()},{cols.max() + 1},{rows.max() + 1}"


def test_points_boxes_and_classes_parse_or_say_what_is_wrong() -> None:
    assert parse_point("120,80") == Click(120.0, 80.0, True)
    assert parse_point(" 12.5 , 3 , neg") == Click(12.5, 3.0, False)
    assert parse_point("7,9,POS") == Click(7.0, 9.0, True)
    assert parse_box("40,30,200,150.5") == (40.0, 30.0, 200.0, 150.5)
    for text in ("120", "120;80", "a,b", "1,2,maybe", "1,2,3,4", "nan,1", "inf,2", ""):
        with pytest.raises(OrstreamError, match="--point") as error:
            parse_point(text)
        assert "\n" not in str(error.value) and "X,Y,neg" in str(error.value)
    for text in ("1,2,3", "1,2,3,x", "1,2,3,4,5"):
        with pytest.raises(OrstreamError, match="X0,Y0,X1,Y1"):
            parse_box(text)


def test_request_carries_the_frame_choice_and_every_prompt() -> None:
    request = build_request("or2", None, [Click(5, 6, True), Click(7, 8, False)], None, ["sella"])
    clicks = Prompt(points=((5, 6), (7, 8)), point_labels=(1, 0))
    assert request == PromptRequest("or2", None, clicks, ("sella",))
    request = build_request("", 42, [], (1, 2, 3, 4), [])
    assert request == PromptRequest("", 42, Prompt(box=(1, 2, 3, 4)))
    assert build_request("", None, [], None, ["suction"]).region is None


def test_text_lines_name_each_mask() -> None:
    pixels = np.zeros((4, 6), bool)
    pixels[1:3, 2:5] = True
    masks = (
        SegmentMask(0, "", 0.93, encode_mask(pixels), (2, 1, 5, 3)),
        SegmentMask(101, "sella", 0.4, MaskRle(4, 6, (24,)), (0, 0, 0, 0)),
    )
    reply = PromptAnswer("cam0", 238, 9_920_000_000, masks, "imis_segmenter@1.0.0", 42.25, True)
    assert [mask_area(m) for m in masks] == [6, 0]
    lines = format_answer(reply, [Path("a.png"), Path("b.png")])
    assert lines[0] == (
        "cam0 #238 pts 9.920 s | imis_segmenter@1.0.0 | 42.2 ms (embedding cached) | 2 masks"
    )
    assert lines[1].split()[:8] == ["prompt", "score", "0.93", "area", "6", "px", "box", "2,1,5,3"]
    assert lines[1].endswith("-> a.png")
    assert lines[2].split()[:8] == ["sella", "score", "0.40", "area", "0", "px", "box", "none"]
    odd = PromptAnswer("rtsp://or 3", 7, 0, masks, "m@1", 1.0, False)
    assert mask_file_name(odd, 1, masks[1]) == "rtsp_or_3_000007_1_sella.png"
    assert mask_file_name(reply, 0, masks[0]) == "cam0_000238_0_prompt.png"


def test_box_and_classes_print_one_line_per_mask(
    address: str, model: SegmenterModel, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = prompt(address, "--stream", "cam0", "--index", "8", "--box", BOX)
    assert main([*argv, "--text", "suction", "--text", "sella"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, *rows = lines
    assert header.startswith(f"cam0 #8 pts 0.320 s | {model.label} | ")
    assert header.endswith(" | 3 masks")
    want = expected(
        model, 8, Prompt(box=(40, 30, 200, 150)), Prompt(text="suction"), Prompt(text="sella")
    )
    assert [row.split()[0] for row in rows] == ["prompt", "suction", "sella"]
    for row, prediction in zip(rows, want, strict=True):
        fields = row.split()
        assert float(fields[2]) == pytest.approx(prediction.score, abs=0.006)
        assert int(fields[4]) == int(prediction.mask.sum())
        assert fields[7] == tight_box(prediction.mask)


def test_json_holds_the_exact_masks(
    address: str, model: SegmenterModel, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = prompt(address, "--index", "9", "--point", "100,90", "--point", "10,10,neg")
    assert main([*argv, "--text", "bipolar_forceps", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {
        "stream",
        "index",
        "pts_ns",
        "model",
        "latency_ms",
        "embedding_cached",
        "masks",
    }
    assert (record["stream"], record["index"], record["pts_ns"]) == ("cam0", 9, 9 * 40_000_000)
    assert record["model"] == model.label and record["latency_ms"] > 0
    clicks = Prompt(points=((100, 90), (10, 10)), point_labels=(1, 0))
    want = expected(model, 9, clicks, Prompt(text="bipolar_forceps"))
    assert [(m["code"], m["name"]) for m in record["masks"]] == [(0, ""), (1, "bipolar_forceps")]
    for mask, prediction in zip(record["masks"], want, strict=True):
        rle = MaskRle(mask["mask"]["height"], mask["mask"]["width"], tuple(mask["mask"]["counts"]))
        pixels = decode_mask(rle)
        assert pixels.shape == (HEIGHT, WIDTH)
        np.testing.assert_array_equal(pixels, prediction.mask)
        assert mask["area"] == int(prediction.mask.sum())
        assert ",".join(map(str, mask["box"])) == tight_box(prediction.mask) or (
            mask["box"] == [0, 0, 0, 0] and not prediction.mask.any()
        )
        assert mask["score"] == pytest.approx(prediction.score, abs=1e-5)


def test_save_writes_each_mask_as_a_png(
    address: str, model: SegmenterModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "masks" / "new"
    argv = prompt(address, "--index", "8", "--box", BOX, "--text", "sella", "--save", str(folder))
    assert main(argv) == 0
    out = capsys.readouterr().out
    names = ["cam0_000008_0_prompt.png", "cam0_000008_1_sella.png"]
    assert sorted(p.name for p in folder.iterdir()) == names
    want = expected(model, 8, Prompt(box=(40, 30, 200, 150)), Prompt(text="sella"))
    for name, prediction in zip(names, want, strict=True):
        assert f"-> {folder / name}" in out
        written = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
        assert written is not None
        assert written.dtype == np.uint8 and written.shape == (HEIGHT, WIDTH)
        np.testing.assert_array_equal(written, prediction.mask.astype(np.uint8) * 255)


def test_latest_frame_of_the_only_stream(address: str, capsys: pytest.CaptureFixture[str]) -> None:
    for flags in ([], ["--latest"]):
        assert main(prompt(address, *flags, "--point", "100,90")) == 0
        stream, index = capsys.readouterr().out.split()[:2]
        assert stream == "cam0"
        assert int(index.lstrip("#")) in range(6, 10)  # the four frames the runtime keeps
    with pytest.raises(SystemExit):
        main(prompt(address, "--latest", "--index", "3", "--point", "100,90"))
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--point", f"{WIDTH + 5},10"], "INVALID_ARGUMENT", ["outside"]),
        (["--text", "scalpel"], "INVALID_ARGUMENT", ["scalpel", "suction", "sella"]),
        (["--box", "50,50,50,90"], "INVALID_ARGUMENT", ["box"]),
        (["--index", "5000", "--box", BOX], "NOT_FOUND", ["5000"]),
        (["--stream", "cam9", "--box", BOX], "NOT_FOUND", ["cam9"]),
    ],
)
def test_refused_prompts_are_one_error_line(
    address: str,
    args: list[str],
    code: str,
    words: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(prompt(address, *args)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"orstream: error: {address}: {code}: ")
    for word in words:
        assert word in captured.err


def test_a_runtime_without_a_segmenter_is_one_error_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = EdgeGrpcServer(ResultHub(), sample_status, "127.0.0.1:0")
    server.start()
    try:
        address = f"127.0.0.1:{server.port}"
        assert main(prompt(address, "--box", BOX)) == 2
    finally:
        server.stop(grace_s=0.5)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FAILED_PRECONDITION" in err and "no segmenter" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--point", "120;80"], "--point '120;80': expected X,Y"),
        (["--box", "1,2,3"], "--box '1,2,3': expected X0,Y0,X1,Y1"),
        ([], "nothing to segment: give --point, --box or --text"),
    ],
)
def test_argument_mistakes_are_one_line_before_any_connection(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No server listens there: the mistake is reported without trying to connect.
    assert main(prompt(f"127.0.0.1:{free_port()}", *args)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"orstream: error: {message}") and err.count("\n") == 1


def test_unreachable_server_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    assert main(["client", "prompt", "--address", address, "--timeout", "0.5", "--text", "x"]) == 2
    assert capsys.readouterr().err == (
        f"orstream: error: cannot reach an orstream edge server at {address} within 0.5 s\n"
    )


def test_prompt_command_loads_without_grpc_or_cv2() -> None:
    code = (
        "import sys; import orstream.client.prompt_command;"
        "print(sorted(m for m in ('grpc', 'google.protobuf', 'cv2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
