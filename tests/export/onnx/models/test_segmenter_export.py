"""Export a random tiny interactive segmenter through `orstream export onnx` and hold the package
(encoder, decoder, text prompts, card) against PyTorch, MiniLM and bad checkpoints."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from segmenter_checkpoints import CLASSES, MODEL_KWARGS, save_random_segmenter_checkpoint
from workflow_checkpoints import save_random_checkpoint

from orstream.cli import main
from orstream.errors import OrstreamError
from orstream.export.onnx.models.segmenter_export import (
    POINT_SLOTS,
    TOLERANCE,
    checkpoint_model_name,
    export_segmenter_package,
    load_segmenter_checkpoint,
)
from orstream.labels import SEGMENTATION_CLASSES
from orstream.package.card import DECODER_FILE, DECODER_INPUTS
from orstream.package.loading import ModelPackage, load_package
from orstream.package.loading import sha256_file as sha256
from orstream.training.models.text_encoder import PROMPT_TEMPLATE, TextEncoder, prompt_text

HEIGHT, WIDTH = MODEL_KWARGS["input_size"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelPackage, Path, str]:
    """The package `orstream export onnx` writes for a segmenter checkpoint, and its report."""
    root = tmp_path_factory.mktemp("segmenter_export")
    checkpoint = save_random_segmenter_checkpoint(root / "seg.ckpt")
    report = io.StringIO()
    with contextlib.redirect_stdout(report), contextlib.redirect_stderr(io.StringIO()):
        args = ["--checkpoint", str(checkpoint), "--out", str(root / "pkg")]
        code = main(["export", "onnx", *args, "--parity-frames", "2", "--max-batch", "3"])
    assert code == 0
    return load_package(root / "pkg"), checkpoint, report.getvalue()


def test_the_export_command_writes_a_segmenter_package(
    exported: tuple[ModelPackage, Path, str],
) -> None:
    package, checkpoint, report = exported
    card = package.card
    assert card.task == "interactive_segmentation"
    assert card.hashes.checkpoint == sha256(checkpoint)
    assert card.hashes.model_onnx == sha256(package.model_path)
    assert card.inputs[0].shape == (1, 3, HEIGHT, WIDTH)
    assert card.dynamic_batch and card.max_batch == 3
    assert "dynamic batch, max_batch 3" in report
    assert card.outputs[0].name == "image_embeddings"
    assert card.outputs[0].shape == (1, 32, HEIGHT // 16, WIDTH // 16)
    codes = {name: code for code, name in SEGMENTATION_CLASSES.items()}
    labels = card.labels["segmentation"]
    assert [(label.index, label.name, label.code) for label in labels] == [
        (index, name, codes[name]) for index, name in enumerate(CLASSES)
    ]
    decoder = card.decoder
    assert decoder is not None and package.decoder_path is not None
    assert decoder.sha256 == sha256(package.decoder_path)
    assert decoder.point_slots == POINT_SLOTS
    assert decoder.mask_size == (HEIGHT // 4, WIDTH // 4)
    assert decoder.graph_outputs()["masks"][0] == (1, 3, HEIGHT // 4, WIDTH // 4)
    assert decoder.prompt_template == PROMPT_TEMPLATE
    assert "decoder   8 point slots" in report
    assert "sella" in report


def test_parity_of_both_graphs_is_recorded(exported: tuple[ModelPackage, Path, str]) -> None:
    package, _, report = exported
    card = package.card
    assert card.decoder is not None
    for results, outputs in (
        (card.export.parity, {"image_embeddings"}),
        (card.decoder.parity, {"masks", "iou"}),
    ):
        assert [(r.source, r.frames, r.batch) for r in results] == [
            ("random", 2, 1),
            ("random", 2, 3),
            ("phantom", 2, 1),
            ("phantom", 2, 3),
        ]
        for result in results:
            assert set(result.max_abs_diff) == outputs
            assert result.tolerance == TOLERANCE
            assert all(0 <= value <= TOLERANCE for value in result.max_abs_diff.values())
    assert report.count("  encoder  ") == 4 and report.count("  decoder  ") == 4


def test_text_prompts_are_minilm_embeddings_of_the_classes(
    exported: tuple[ModelPackage, Path, str],
) -> None:
    package, _, _ = exported
    expected = TextEncoder.load().encode([prompt_text(name) for name in CLASSES]).numpy()
    prompts = package.text_prompts()
    assert prompts.dtype == np.float32
    np.testing.assert_allclose(prompts, expected, atol=1e-6)


def test_the_decoder_graph_takes_fixed_float_inputs_and_matches_pytorch(
    exported: tuple[ModelPackage, Path, str],
) -> None:
    package, checkpoint, _ = exported
    assert package.decoder_path is not None
    session = onnxruntime.InferenceSession(
        str(package.decoder_path), providers=["CPUExecutionProvider"]
    )
    assert [arg.name for arg in session.get_inputs()] == list(DECODER_INPUTS)
    assert {arg.type for arg in session.get_inputs()} == {"tensor(float)"}
    model = load_segmenter_checkpoint(checkpoint, lambda _: None).model
    generator = torch.Generator().manual_seed(3)
    embeddings = torch.randn(1, 32, HEIGHT // 16, WIDTH // 16, generator=generator)
    points = torch.rand(1, POINT_SLOTS, 2, generator=generator) * torch.tensor([WIDTH, HEIGHT])
    labels = torch.tensor([[1.0, 0.0, 1.0] + [-1.0] * (POINT_SLOTS - 3)])
    inputs = (
        embeddings,
        points,
        labels,
        torch.tensor([[10.0, 5.0, 60.0, 40.0]]),
        torch.randn(1, 1, HEIGHT // 4, WIDTH // 4, generator=generator),
        torch.from_numpy(package.text_prompts()[1:2]),
        torch.ones(1),
        torch.ones(1),
        torch.zeros(1),
    )
    with torch.no_grad():
        expected = model.decode(*inputs)
    feeds = {name: value.numpy() for name, value in zip(DECODER_INPUTS, inputs, strict=True)}
    for got, want in zip(session.run(None, feeds), expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=TOLERANCE)
    # Prompts as rows: two other prompts on the same embedding beside the first one.
    rows = [inputs, tuple(value.clone() for value in inputs), tuple(v.clone() for v in inputs)]
    rows[1][1][:] = rows[1][1].flip(1)
    rows[2][6][:] = 0.0
    stacked = tuple(torch.cat(values) for values in zip(*rows, strict=True))
    with torch.no_grad():
        expected = model.decode(*stacked)
    feeds = {name: value.numpy() for name, value in zip(DECODER_INPUTS, stacked, strict=True)}
    for got, want in zip(session.run(None, feeds), expected, strict=True):
        assert got.shape[0] == 3
        np.testing.assert_allclose(got, want.numpy(), atol=TOLERANCE)


def test_a_tampered_decoder_is_refused(
    exported: tuple[ModelPackage, Path, str], tmp_path: Path
) -> None:
    package, _, _ = exported
    copy = Path(shutil.copytree(package.root, tmp_path / "copy"))
    data = bytearray((copy / DECODER_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / DECODER_FILE).write_bytes(bytes(data))
    with pytest.raises(OrstreamError, match=f"{DECODER_FILE} does not match card.json"):
        load_package(copy)


def test_parity_over_the_tolerance_fails_the_export(tmp_path: Path) -> None:
    checkpoint = save_random_segmenter_checkpoint(tmp_path / "seg.ckpt")
    with pytest.raises(OrstreamError, match=r"encoder parity failed on random frames at batch 1"):
        export_segmenter_package(
            checkpoint,
            tmp_path / "pkg",
            parity_frames=1,
            tolerance=1e-12,
            progress=lambda _: None,
        )
    assert not (tmp_path / "pkg").exists()
    assert not list(tmp_path.glob(".pkg*"))


def test_bad_segmenter_checkpoints_are_one_line(tmp_path: Path) -> None:
    unknown = save_random_segmenter_checkpoint(tmp_path / "unknown.ckpt", ["suction", "scalpel"])
    with pytest.raises(OrstreamError, match=r"unknown segmentation class\(es\) \['scalpel'\]"):
        load_segmenter_checkpoint(unknown, lambda _: None)
    empty = save_random_segmenter_checkpoint(tmp_path / "empty.ckpt", [])
    with pytest.raises(OrstreamError, match="must list the class names trained on"):
        load_segmenter_checkpoint(empty, lambda _: None)
    workflow = save_random_checkpoint(tmp_path / "workflow.ckpt")
    assert checkpoint_model_name(workflow) == "pitvis_workflow"
    with pytest.raises(OrstreamError, match="is not an interactive segmenter checkpoint"):
        load_segmenter_checkpoint(workflow, lambda _: None)
    with pytest.raises(OrstreamError, match="not found"):
        checkpoint_model_name(tmp_path / "absent.ckpt")


def test_a_stride_8_segmenter_exports_and_runs_on_both_backends(tmp_path: Path) -> None:
    from orstream.edge.backends import create_backend

    checkpoint = save_random_segmenter_checkpoint(tmp_path / "fine.ckpt", embedding_stride=8)
    result = export_segmenter_package(
        checkpoint, tmp_path / "package", parity_frames=2, progress=lambda _: None
    )
    package = result.package
    assert package.card.decoder is not None
    height, width = MODEL_KWARGS["input_size"]
    assert package.card.decoder.mask_size == (height // 2, width // 2)
    for graph in ("model", "decoder"):
        for backend in ("onnxruntime", "torch"):
            # create_backend holds each to the package's golden reference.
            chosen = create_backend([backend], package, graph=graph)
            assert chosen.name == backend
