"""Model package cards and files: schema, round trip, and every way a package can be wrong."""

from __future__ import annotations

import copy
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.package.card import (
    CARD_FILE,
    DECODER_FILE,
    DECODER_INPUTS,
    MODEL_FILE,
    TEXT_PROMPTS_FILE,
    ModelCard,
)
from orstream.package.loading import load_package, read_card, sha256_file, write_card
from orstream.package.signatures import check_graph_signature

MODEL_BYTES = b"stand-in model bytes: load_package checks files and hashes, not ONNX content"


def _card_dict() -> dict[str, Any]:
    """A complete card for a 2-class step model with one state tensor, as JSON would hold it."""
    return {
        "format": 1,
        "name": "tiny",
        "task": "workflow_recognition",
        "version": "0",
        "inputs": [
            {
                "name": "image",
                "shape": [1, 3, 8, 6],
                "dtype": "float32",
                "layout": "NCHW",
                "color": "RGB",
                "resize": {"height": 8, "width": 6, "interpolation": "area"},
                "scale": 255.0,
                "mean": [0.5, 0.5, 0.5],
                "std": [0.25, 0.25, 0.25],
            }
        ],
        "outputs": [
            {
                "name": "step_logits",
                "shape": [1, 2],
                "dtype": "float32",
                "meaning": "step logits",
                "activation": "softmax",
                "labels": "steps",
            },
            {
                "name": "instrument_logits",
                "shape": [1, 2],
                "dtype": "float32",
                "meaning": "instrument logits",
                "activation": "sigmoid",
                "labels": "instruments",
            },
        ],
        "labels": {
            "steps": [
                {"index": 0, "code": -1, "name": "out_of_patient"},
                {"index": 1, "code": 1, "name": "nasal_corridor_creation"},
            ],
            "instruments": [
                {"index": 0, "code": 0, "name": "no_visible_instrument"},
                {"index": 1, "code": 1, "name": "bipolar_forceps"},
            ],
        },
        "clip": {"length": 1, "stride": 1, "fps": 1.0},
        "state": [
            {
                "name": "h",
                "input": "state_in.h",
                "output": "state_out.h",
                "shape": [1, 4, 2],
                "dtype": "float32",
            }
        ],
        "thresholds": {"instrument_logits": 0.5},
        "hashes": {"checkpoint": None, "model_onnx": hashlib.sha256(MODEL_BYTES).hexdigest()},
        "export": {
            "exporter": "torchscript",
            "opset": 18,
            "torch_version": "2.14.1",
            "onnx_version": "1.23.2",
            "onnxruntime_version": "1.32.0",
        },
    }


def _write_package(folder: Path, card: dict[str, Any], model: bytes = MODEL_BYTES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD_FILE).write_text(json.dumps(card))
    (folder / MODEL_FILE).write_bytes(model)
    return folder


def test_valid_package_loads_with_its_card(tmp_path: Path) -> None:
    package = load_package(_write_package(tmp_path / "pkg", _card_dict()))
    assert package.model_path == tmp_path / "pkg" / MODEL_FILE
    assert package.card.inputs[0].resize is not None
    assert package.card.inputs[0].resize.interpolation == "area"
    assert package.card.graph_inputs() == {
        "image": ((1, 3, 8, 6), "float32"),
        "state_in.h": ((1, 4, 2), "float32"),
    }
    assert list(package.card.graph_outputs()) == ["step_logits", "instrument_logits", "state_out.h"]


def test_write_card_round_trips(tmp_path: Path) -> None:
    card = ModelCard.model_validate(_card_dict())
    path = write_card(tmp_path, card)
    assert path == tmp_path / CARD_FILE
    assert read_card(path) == card
    assert not list(tmp_path.glob("*.partial"))


def test_state_helpers_follow_the_card() -> None:
    card = ModelCard.model_validate(_card_dict())
    state = card.initial_state()
    assert list(state) == ["state_in.h"]
    assert state["state_in.h"].shape == (1, 4, 2)
    assert state["state_in.h"].dtype == np.float32
    assert not state["state_in.h"].any()
    produced = np.arange(8, dtype=np.float32).reshape(1, 4, 2)
    fed_back = card.next_state({"step_logits": np.zeros((1, 2)), "state_out.h": produced})
    assert list(fed_back) == ["state_in.h"]
    assert fed_back["state_in.h"] is produced


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_missing_folder_card_or_model(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="not found"):
        load_package(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OrstreamError, match="not a folder"):
        load_package(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OrstreamError, match=f"has no {CARD_FILE}"):
        load_package(tmp_path / "empty")
    folder = _write_package(tmp_path / "pkg", _card_dict())
    (folder / MODEL_FILE).unlink()
    with pytest.raises(OrstreamError, match=f"has no {MODEL_FILE}"):
        load_package(folder)


def test_card_that_is_not_json_names_the_position(tmp_path: Path) -> None:
    folder = _write_package(tmp_path / "pkg", _card_dict())
    (folder / CARD_FILE).write_text('{"name": "tiny",\n  "task": }')
    with pytest.raises(OrstreamError, match=r"card.json: not valid JSON \(line 2 column") as info:
        load_package(folder)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c.pop("clip"), "'clip'"),
        (lambda c: c.update(colour="red"), "'colour'"),
        (lambda c: c["inputs"][0].update(dtype="float13"), "'inputs.0.dtype'"),
        (
            lambda c: c["inputs"][0]["resize"].update(interpolation="lanczos9"),
            "'inputs.0.resize.interpolation'",
        ),
        (lambda c: c["state"][0].update(extra=1), "'state.0.extra'"),
        (lambda c: c["hashes"].update(model_onnx="abc"), "'hashes.model_onnx'"),
        (lambda c: c["inputs"][0]["resize"].update(height=9), "'inputs.0'"),
        (lambda c: c["outputs"][0].update(shape=[1, 3]), "'step_logits' has 3 classes"),
        (lambda c: c.update(thresholds={"step_logits": 0.5}), "not a sigmoid output"),
    ],
)
def test_schema_errors_name_the_field(tmp_path: Path, edit: Any, field: str) -> None:
    card = copy.deepcopy(_card_dict())
    edit(card)
    folder = _write_package(tmp_path / "pkg", card)
    with pytest.raises(OrstreamError, match="invalid card") as info:
        load_package(folder)
    message = str(info.value)
    assert field in message
    assert "\n" not in message


def test_model_that_is_not_the_carded_one_is_refused(tmp_path: Path) -> None:
    folder = _write_package(tmp_path / "garbage", _card_dict(), model=b"\x00garbage" * 100)
    with pytest.raises(OrstreamError, match=f"{MODEL_FILE} does not match {CARD_FILE}"):
        load_package(folder)
    folder = _write_package(tmp_path / "truncated", _card_dict(), model=MODEL_BYTES[:20])
    with pytest.raises(OrstreamError, match=r"corrupt, truncated or replaced"):
        load_package(folder)


def test_graph_signature_check_names_the_difference(tmp_path: Path) -> None:
    card = ModelCard.model_validate(_card_dict())
    inputs = dict(card.graph_inputs())
    outputs = dict(card.graph_outputs())
    check_graph_signature(card, inputs, outputs, tmp_path / MODEL_FILE)

    def refused(graph_inputs: dict[str, Any], graph_outputs: dict[str, Any]) -> str:
        with pytest.raises(OrstreamError, match=f"does not match {CARD_FILE}") as info:
            check_graph_signature(card, graph_inputs, graph_outputs, tmp_path / MODEL_FILE)
        return str(info.value)

    assert "input 'image' has shape [1, 3, 16, 6] in the graph, [1, 3, 8, 6]" in refused(
        {**inputs, "image": ((1, 3, 16, 6), "float32")}, outputs
    )
    assert "[1, 3, ?, ?]" in refused({**inputs, "image": ((1, 3, None, None), "float32")}, outputs)
    assert "is float16 in the graph, float32 in the card" in refused(
        inputs, {**outputs, "state_out.h": ((1, 4, 2), "float16")}
    )
    renamed = {("pixels" if k == "image" else k): v for k, v in inputs.items()}
    assert "graph inputs ['pixels', 'state_in.h']" in refused(renamed, outputs)


def _dynamic(card: dict[str, Any], max_batch: int = 6) -> dict[str, Any]:
    card = copy.deepcopy(card)
    card["export"].update(batch="dynamic", max_batch=max_batch)
    return card


def test_a_card_without_the_batch_field_runs_batch_1() -> None:
    card = ModelCard.model_validate(_card_dict())
    assert not card.dynamic_batch and card.max_batch == 1 and card.export.batch == 1
    dynamic = ModelCard.model_validate(_dynamic(_card_dict()))
    assert dynamic.dynamic_batch and dynamic.max_batch == 6
    # the card's shapes stay those of one row: what pre-processing and references read
    assert dynamic.graph_inputs() == card.graph_inputs()
    assert dynamic.initial_state()["state_in.h"].shape == (1, 4, 2)


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ({"batch": 4}, "Input should be 1 or 'dynamic'"),
        ({"max_batch": 4}, 'max_batch 4 needs batch "dynamic", not 1'),
        ({"batch": "dynamic", "max_batch": 0}, "greater than or equal to 1"),
    ],
)
def test_batch_fields_are_checked(tmp_path: Path, export: dict[str, Any], message: str) -> None:
    card = _card_dict()
    card["export"].update(export)
    with pytest.raises(OrstreamError, match="invalid card") as info:
        load_package(_write_package(tmp_path / "pkg", card))
    assert message in str(info.value) and "'export" in str(info.value)


def test_a_dynamic_batch_needs_a_symbolic_axis_0_in_every_graph(tmp_path: Path) -> None:
    static = ModelCard.model_validate(_card_dict())
    dynamic = ModelCard.model_validate(_dynamic(_card_dict()))
    path = tmp_path / MODEL_FILE

    def symbolic(tensors: dict[str, Any], name: str | None) -> dict[str, Any]:
        return {key: ((name, *shape[1:]), dtype) for key, (shape, dtype) in tensors.items()}

    inputs, outputs = static.graph_inputs(), static.graph_outputs()
    for axis in ("batch", None):
        check_graph_signature(dynamic, symbolic(inputs, axis), symbolic(outputs, axis), path)
    with pytest.raises(OrstreamError) as info:
        check_graph_signature(dynamic, inputs, symbolic(outputs, "batch"), path)
    assert str(info.value).endswith(
        "input 'image' has shape [1, 3, 8, 6] in the graph, [batch, 3, 8, 6] in the card"
    )
    with pytest.raises(OrstreamError, match=r"has shape \[batch, 4, 3\] in the graph, \[batch"):
        wider = {**symbolic(inputs, "batch"), "state_in.h": (("batch", 4, 3), "float32")}
        check_graph_signature(dynamic, wider, symbolic(outputs, "batch"), path)
    with pytest.raises(OrstreamError, match=r"\[batch, 3, 8, 6\] in the graph, \[1, 3, 8, 6\]"):
        check_graph_signature(static, symbolic(inputs, "batch"), outputs, path)
    segmentation = ModelCard.model_validate(_dynamic(_segmentation_card_dict()))
    assert segmentation.decoder is not None and segmentation.dynamic_batch
    decoder_inputs = symbolic(segmentation.decoder.graph_inputs(), "batch")
    decoder_outputs = symbolic(segmentation.decoder.graph_outputs(), "batch")
    check_graph_signature(segmentation, decoder_inputs, decoder_outputs, path, "decoder")
    points = segmentation.decoder.graph_inputs()["points"]  # batch 1, as the card says
    with pytest.raises(OrstreamError, match=r"input 'points' has shape \[1, \d+, 2\] in the graph"):
        fixed = {**decoder_inputs, "points": points}
        check_graph_signature(segmentation, fixed, decoder_outputs, path, "decoder")


DECODER_BYTES = b"stand-in decoder bytes"
TEXT_PROMPTS = np.arange(2 * 6, dtype=np.float32).reshape(2, 6)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _tensor(name: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": "float32"}


def _segmentation_card_dict(text: bytes | None = None) -> dict[str, Any]:
    """An interactive segmentation card: encoder 32x48 -> [1, 8, 2, 3], decoder with 4 point
    slots, 3 candidates and 2 classes with 6-wide text prompts."""
    card = _card_dict()
    card["task"] = "interactive_segmentation"
    card["inputs"][0].update(
        shape=[1, 3, 32, 48], resize={"height": 32, "width": 48, "interpolation": "area"}
    )
    card["outputs"] = [
        {
            "name": "image_embeddings",
            "shape": [1, 8, 2, 3],
            "dtype": "float32",
            "meaning": "image embedding",
            "activation": "none",
        }
    ]
    card["labels"] = {
        "segmentation": [
            {"index": 0, "code": 16, "name": "suction"},
            {"index": 1, "code": 101, "name": "sella"},
        ]
    }
    card["state"] = []
    card["thresholds"] = {}
    card["decoder"] = {
        "file": "decoder.onnx",
        "sha256": hashlib.sha256(DECODER_BYTES).hexdigest(),
        "inputs": [
            _tensor("image_embeddings", [1, 8, 2, 3]),
            _tensor("points", [1, 4, 2]),
            _tensor("point_labels", [1, 4]),
            _tensor("boxes", [1, 4]),
            _tensor("mask_prompt", [1, 1, 8, 12]),
            _tensor("text_embedding", [1, 6]),
            _tensor("has_box", [1]),
            _tensor("has_mask", [1]),
            _tensor("has_text", [1]),
        ],
        "outputs": [
            {**_tensor("masks", [1, 3, 8, 12]), "meaning": "mask logits", "activation": "sigmoid"},
            {**_tensor("iou", [1, 3]), "meaning": "predicted IoU", "activation": "none"},
        ],
        "text_file": "text_prompts.npy",
        "text_sha256": hashlib.sha256(text or _npy_bytes(TEXT_PROMPTS)).hexdigest(),
        "prompt_template": "A segmentation area of a {}.",
    }
    return card


def _write_segmentation_package(
    folder: Path, card: dict[str, Any] | None = None, text: bytes | None = None
) -> Path:
    text = text or _npy_bytes(TEXT_PROMPTS)
    _write_package(folder, card or _segmentation_card_dict(text))
    (folder / "decoder.onnx").write_bytes(DECODER_BYTES)
    (folder / "text_prompts.npy").write_bytes(text)
    return folder


def test_segmentation_package_loads_with_its_decoder(tmp_path: Path) -> None:
    package = load_package(_write_segmentation_package(tmp_path / "pkg"))
    decoder = package.card.decoder
    assert decoder is not None
    assert package.decoder_path == tmp_path / "pkg" / DECODER_FILE
    assert package.text_prompts_path == tmp_path / "pkg" / TEXT_PROMPTS_FILE
    assert (decoder.point_slots, decoder.mask_size, decoder.text_dim) == (4, (8, 12), 6)
    assert list(decoder.graph_inputs()) == list(DECODER_INPUTS)
    assert decoder.graph_outputs() == {
        "masks": ((1, 3, 8, 12), "float32"),
        "iou": ((1, 3), "float32"),
    }
    np.testing.assert_array_equal(package.text_prompts(), TEXT_PROMPTS)
    assert read_card(write_card(tmp_path, package.card)) == package.card


def test_workflow_packages_have_no_decoder(tmp_path: Path) -> None:
    package = load_package(_write_package(tmp_path / "pkg", _card_dict()))
    assert package.card.decoder is None
    assert package.decoder_path is None and package.text_prompts_path is None
    with pytest.raises(OrstreamError, match="has no prompt decoder"):
        package.text_prompts()


@pytest.mark.parametrize("file", [DECODER_FILE, TEXT_PROMPTS_FILE])
def test_a_missing_or_tampered_decoder_file_is_refused(tmp_path: Path, file: str) -> None:
    folder = _write_segmentation_package(tmp_path / "pkg")
    original = (folder / file).read_bytes()
    (folder / file).write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(OrstreamError, match=f"{file} does not match {CARD_FILE}") as info:
        load_package(folder)
    assert "corrupt, truncated or replaced" in str(info.value)
    assert "\n" not in str(info.value)
    (folder / file).unlink()
    with pytest.raises(OrstreamError, match=f"has no {file}$"):
        load_package(folder)


def test_text_prompts_must_hold_one_row_per_class(tmp_path: Path) -> None:
    text = _npy_bytes(np.zeros((3, 6), np.float32))
    folder = _write_segmentation_package(tmp_path / "rows", text=text)
    expected = r"holds float32 \[3, 6\], the card expects float32 \[2, 6\]"
    with pytest.raises(OrstreamError, match=expected):
        load_package(folder)
    text = _npy_bytes(np.zeros((2, 6), np.float64))
    folder = _write_segmentation_package(tmp_path / "dtype", text=text)
    with pytest.raises(OrstreamError, match=r"holds float64 \[2, 6\]"):
        load_package(folder)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("decoder"), "needs a decoder section"),
        (lambda c: c["decoder"]["inputs"].pop(), "decoder inputs must be"),
        (lambda c: c["decoder"]["inputs"][1].update(shape=[1, 4, 3]), "'points' has shape"),
        (lambda c: c["decoder"]["inputs"][2].update(shape=[1, 5]), "'point_labels' has shape"),
        (lambda c: c["decoder"]["outputs"][0].update(shape=[1, 3, 8, 8]), "'masks' has shape"),
        (lambda c: c["decoder"]["inputs"][7].update(dtype="int64"), "must be float32"),
        (lambda c: c["decoder"].update(file="../model.onnx"), "'decoder.file'"),
        (lambda c: c["decoder"].update(labels="instruments"), "unknown labels 'instruments'"),
        (lambda c: c["decoder"].update(prompt_template="a {name}"), "must hold {}"),
        (
            lambda c: c["decoder"]["inputs"][0].update(shape=[1, 8, 3, 2]),
            "'image_embeddings' [1, 8, 3, 2] is not an output",
        ),
    ],
)
def test_decoder_schema_errors_are_one_line(tmp_path: Path, edit: Any, message: str) -> None:
    card = copy.deepcopy(_segmentation_card_dict())
    edit(card)
    folder = _write_segmentation_package(tmp_path / "pkg", card)
    with pytest.raises(OrstreamError, match="invalid card") as info:
        load_package(folder)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_decoder_signature_check_names_the_difference(tmp_path: Path) -> None:
    card = ModelCard.model_validate(_segmentation_card_dict())
    assert card.decoder is not None
    inputs = dict(card.decoder.graph_inputs())
    outputs = dict(card.decoder.graph_outputs())
    check_graph_signature(card, inputs, outputs, tmp_path / DECODER_FILE, "decoder")
    with pytest.raises(OrstreamError, match=r"input 'points' has shape \[1, 8, 2\] in the graph"):
        check_graph_signature(
            card,
            {**inputs, "points": ((1, 8, 2), "float32")},
            outputs,
            tmp_path / DECODER_FILE,
            "decoder",
        )
    with pytest.raises(OrstreamError, match="has no prompt decoder"):
        check_graph_signature(
            ModelCard.model_validate(_card_dict()),
            inputs,
            outputs,
            tmp_path / DECODER_FILE,
            "decoder",
        )
