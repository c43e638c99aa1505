"""Export a randomly initialised workflow recognizer, saved as `orstream train` saves it, to a
model package, and hold the package against PyTorch and against every kind of bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from workflow_checkpoints import MODEL_KWARGS, save_random_checkpoint

from orstream.edge.backends import OnnxRuntimeBackend
from orstream.errors import OrstreamError
from orstream.export.onnx.batch.batch_check import batch_rows, check_batch_rows, stack_rows
from orstream.export.onnx.models.workflow_export import (
    ExportResult,
    check_onnx_file,
    export_package,
    load_checkpoint,
)
from orstream.labels import NUM_INSTRUMENT_CLASSES, NUM_STEP_CLASSES, step_class_to_code
from orstream.package.loading import ModelPackage, load_package, sha256_file, write_card
from orstream.package.preprocess import ImagePreprocessor
from orstream.training.registry import create_model

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExportResult, Path, list[str]]:
    root = tmp_path_factory.mktemp("export")
    checkpoint = save_random_checkpoint(root / "tiny.ckpt")
    lines: list[str] = []
    result = export_package(checkpoint, root / "pkg", parity_frames=8, progress=lines.append)
    return result, checkpoint, lines


def test_package_loads_with_a_complete_card(exported: tuple[ExportResult, Path, list[str]]) -> None:
    result, checkpoint, lines = exported
    package = load_package(result.package.root)
    card = package.card
    assert card.hashes.checkpoint == sha256_file(checkpoint)
    assert card.hashes.model_onnx == sha256_file(package.model_path)
    assert card.inputs[0].shape == (1, 3, 32, 32)
    assert card.inputs[0].resize is not None and card.inputs[0].resize.interpolation == "area"
    assert [o.shape for o in card.outputs] == [(1, NUM_STEP_CLASSES), (1, NUM_INSTRUMENT_CLASSES)]
    assert [label.code for label in card.labels["steps"]] == [
        step_class_to_code(i) for i in range(NUM_STEP_CLASSES)
    ]
    assert card.labels["instruments"][5].code == 5
    model = create_model("pitvis_workflow", **MODEL_KWARGS)
    assert [s.name for s in card.state] == list(model.state_shapes())
    assert [s.shape[1:] for s in card.state] == list(model.state_shapes().values())
    assert card.clip.fps == model.sample_fps
    assert card.training.cases == {"train": [1, 2], "val": [3]}
    assert card.training.metrics["val_step_score"] == pytest.approx(0.25)
    assert card.step_smoothing.min_dwell == 2  # as validation scored it in training
    assert card.export.opset >= 17
    assert card.export.exporter == result.exporter
    assert card.dynamic_batch and card.max_batch == 8
    assert not list(package.root.parent.glob(".*partial"))
    assert any("onnx.checker" in line for line in lines)


def test_parity_on_random_and_phantom_frames_within_tolerance(
    exported: tuple[ExportResult, Path, list[str]],
) -> None:
    result, _, _ = exported
    card = result.package.card
    assert [(p.source, p.batch) for p in card.export.parity] == [
        ("random", 1),
        ("random", 8),
        ("phantom", 1),
        ("phantom", 8),
    ]
    assert card.export.parity == result.parity
    for parity in card.export.parity:
        assert parity.frames == 8
        assert set(parity.max_abs_diff) == set(card.graph_outputs())
        assert max(parity.max_abs_diff.values()) <= TOLERANCE


def test_onnx_streaming_equals_torch_whole_clip(
    exported: tuple[ExportResult, Path, list[str]],
) -> None:
    result, checkpoint, _ = exported
    model = load_checkpoint(checkpoint, progress=lambda _: None).model
    preprocess = ImagePreprocessor.from_card(result.package.card)
    frames = np.random.default_rng(5).integers(0, 256, (12, 48, 40, 3), dtype=np.uint8)
    images = np.concatenate([preprocess(frame) for frame in frames])
    with torch.inference_mode():
        step, instrument, *_ = model(torch.from_numpy(images)[None])  # type: ignore[operator]
    backend = OnnxRuntimeBackend()
    backend.load(result.package)
    card = result.package.card
    state = card.initial_state()
    for t, image in enumerate(images):
        outputs = backend.infer({"image": image[None], **state})
        np.testing.assert_allclose(outputs["step_logits"][0], step[0, t].numpy(), atol=TOLERANCE)
        np.testing.assert_allclose(
            outputs["instrument_logits"][0], instrument[0, t].numpy(), atol=TOLERANCE
        )
        state = card.next_state(outputs)
    # The state matters: a fresh state at the last frame gives different logits.
    fresh = backend.infer({"image": images[-1:], **card.initial_state()})
    assert np.abs(fresh["step_logits"][0] - step[0, -1].numpy()).max() > 10 * TOLERANCE


def test_the_graph_takes_streams_as_rows(exported: tuple[ExportResult, Path, list[str]]) -> None:
    package = exported[0].package
    batched = OnnxRuntimeBackend()
    batched.load(package)
    assert batched.max_batch == 8
    single = OnnxRuntimeBackend(max_batch=1)
    single.load(package)
    reference = package.reference()
    assert reference is not None
    rows = batch_rows(reference.inputs, 5)
    assert len({float(row["state_in.stage1_layer1"].sum()) for row in rows}) == 5
    check = check_batch_rows(batched, single, rows, "model")
    assert check.batch == 5 and check.max_abs_diff <= check.allowed
    with pytest.raises(OrstreamError, match="a call of 9 rows; this backend takes 1 to 8"):
        batched.infer(stack_rows(batch_rows(reference.inputs, 9)))


def test_dynamo_exporter_gives_a_package_within_tolerance(tmp_path: Path) -> None:
    checkpoint = save_random_checkpoint(tmp_path / "tiny.ckpt")
    result = export_package(
        checkpoint, tmp_path / "pkg", parity_frames=4, exporter="dynamo", progress=lambda _: None
    )
    assert result.exporter == "dynamo"
    assert result.package.card.export.exporter == "dynamo"
    assert result.package.card.dynamic_batch
    assert [(p.source, p.batch) for p in result.parity] == [
        ("random", 1),
        ("random", 8),
        ("phantom", 1),
        ("phantom", 8),
    ]
    assert max(max(p.max_abs_diff.values()) for p in result.parity) <= TOLERANCE


def test_parity_above_tolerance_fails_and_writes_nothing(tmp_path: Path) -> None:
    checkpoint = save_random_checkpoint(tmp_path / "tiny.ckpt")
    with pytest.raises(
        OrstreamError, match=r"parity failed on random frames at batch 1: .* > 1e-15"
    ):
        export_package(
            checkpoint,
            tmp_path / "pkg",
            parity_frames=2,
            tolerance=1e-15,
            exporter="torchscript",
            progress=lambda _: None,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.ckpt"]


def test_exporter_refuses_a_graph_that_disagrees_with_the_card(
    exported: tuple[ExportResult, Path, list[str]],
    tmp_path: Path,
) -> None:
    package = exported[0].package
    check_onnx_file(package.model_path, package.card)
    state = list(package.card.state)
    state[0] = state[0].model_copy(update={"shape": (1, 16, 3)})
    card = package.card.model_copy(update={"state": tuple(state)})
    with pytest.raises(OrstreamError, match=r"input 'state_in\.stage1_layer1' has shape"):
        check_onnx_file(package.model_path, card)
    broken = tmp_path / "model.onnx"
    broken.write_bytes(package.model_path.read_bytes()[:1000])
    with pytest.raises(OrstreamError, match="is not a valid ONNX model"):
        check_onnx_file(broken, package.card)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_exported_model_is_refused(
    exported: tuple[ExportResult, Path, list[str]], tmp_path: Path, damage: str
) -> None:
    source = exported[0].package
    data = source.model_path.read_bytes()
    data = (
        np.random.default_rng(2).integers(0, 256, len(data), dtype=np.uint8).tobytes()
        if damage == "garbage"
        else data[: len(data) // 2]
    )
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(data)
    write_card(folder, source.card)
    with pytest.raises(OrstreamError, match=r"model\.onnx does not match card\.json"):
        load_package(folder)
    new_hash = sha256_file(folder / "model.onnx")
    # the package holds no reference.npz: its card records none
    hashes = source.card.hashes.model_copy(update={"model_onnx": new_hash, "reference": None})
    write_card(folder, source.card.model_copy(update={"hashes": hashes}))
    with pytest.raises(OrstreamError, match=r"model\.onnx is not a valid ONNX model"):
        OnnxRuntimeBackend().load(load_package(folder))


def test_bad_checkpoints_are_one_line_errors(tmp_path: Path) -> None:
    def refused(path: Path, pattern: str) -> None:
        with pytest.raises(OrstreamError, match=pattern) as info:
            load_checkpoint(path, progress=lambda _: None)
        assert "\n" not in str(info.value)

    refused(tmp_path / "absent.ckpt", "not found")
    refused(tmp_path, "is not a file")
    (tmp_path / "text.ckpt").write_text("not a checkpoint\n")
    refused(tmp_path / "text.ckpt", "is not a PyTorch checkpoint")
    whole = save_random_checkpoint(tmp_path / "whole.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(whole[: len(whole) // 2])
    refused(tmp_path / "cut.ckpt", "is not a PyTorch checkpoint")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.ckpt")
    refused(tmp_path / "plain.ckpt", "is not an orstream model checkpoint")
    refused(
        save_random_checkpoint(tmp_path / "unknown.ckpt", model_name="no_such_model"),
        "unknown model 'no_such_model'",
    )
    other = save_random_checkpoint(tmp_path / "other.ckpt")
    checkpoint = torch.load(other, weights_only=True)
    checkpoint["hyper_parameters"]["model_kwargs"]["channels"] = 8
    torch.save(checkpoint, other)
    refused(other, "weights do not fit model 'pitvis_workflow'")


def test_existing_output_needs_overwrite_and_must_be_a_package(
    exported: tuple[ExportResult, Path, list[str]],
    tmp_path: Path,
) -> None:
    _, checkpoint, _ = exported
    with pytest.raises(OrstreamError, match="already exists"):
        export_package(checkpoint, exported[0].package.root, progress=lambda _: None)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(OrstreamError, match="is not a model package; not replacing it"):
        export_package(checkpoint, tmp_path / "notes", overwrite=True, progress=lambda _: None)
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    with pytest.raises(OrstreamError, match="--max-batch must be at least 2, not 1"):
        export_package(checkpoint, tmp_path / "one", max_batch=1, progress=lambda _: None)


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orstream.cli", "export", "onnx", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cli_writes_a_package_and_reports_parity(
    exported: tuple[ExportResult, Path, list[str]],
    tmp_path: Path,
) -> None:
    _, checkpoint, _ = exported
    done = _cli(
        "--checkpoint",
        checkpoint,
        "--out",
        tmp_path / "pkg",
        "--parity-frames",
        "3",
        "--max-batch",
        "3",
    )
    assert done.returncode == 0, done.stderr
    assert "dynamic batch, max_batch 3" in done.stdout
    for source in ("random", "phantom"):
        line = re.search(rf"^\s*{source}\s+3 frames\s+batch 3\s+(.*)$", done.stdout, re.MULTILINE)
        assert line is not None, done.stdout
        reported = dict(re.findall(r"(\w+) (\d\.\d+e[-+]\d+)", line.group(1)))
        assert set(reported) == {"step_logits", "instrument_logits", "state"}
        assert all(float(value) <= TOLERANCE for value in reported.values())
    assert "[export] wrote" in done.stderr
    package: ModelPackage = load_package(tmp_path / "pkg")
    assert json.loads(package.card_path.read_text())["export"]["parity"][0]["frames"] == 3
    again = _cli(
        "--checkpoint", checkpoint, "--out", tmp_path / "pkg", "--overwrite", "--parity-frames", "1"
    )
    assert again.returncode == 0, again.stderr
    assert load_package(tmp_path / "pkg").card.export.parity[0].frames == 1


@pytest.mark.parametrize("case", ["missing", "not_a_checkpoint", "unknown_model", "out_exists"])
def test_cli_bad_input_is_one_line_and_non_zero(tmp_path: Path, case: str) -> None:
    checkpoint = tmp_path / "model.ckpt"
    out = tmp_path / "pkg"
    expected = {
        "missing": "not found",
        "not_a_checkpoint": "is not a PyTorch checkpoint",
        "unknown_model": "unknown model 'retired_model'",
        "out_exists": "already exists (pass --overwrite",
    }[case]
    if case == "not_a_checkpoint":
        checkpoint.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    elif case == "unknown_model":
        save_random_checkpoint(checkpoint, model_name="retired_model")
    elif case == "out_exists":
        save_random_checkpoint(checkpoint)
        out.mkdir()
    done = _cli("--checkpoint", checkpoint, "--out", out)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("orstream: error:")]
    assert len(errors) == 1 and expected in errors[0], done.stderr
    assert "Traceback" not in done.stderr
