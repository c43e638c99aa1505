"""Exporting the visual tokenizer: an encoder to indices and a detokenizer back to images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tokenizer_checkpoints import save_random_tokenizer_checkpoint, tokenizer_model

from orstream.cli import main
from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.edge.backends.reference_check import check_reference
from orstream.edge.backends.torch_backend import TorchBackend
from orstream.errors import OrstreamError
from orstream.export.onnx.models.tokenizer_export import (
    TokenDecoder,
    check_index_parity,
    random_indices,
    reference_decode,
)
from orstream.export.onnx.parity import phantom_frames
from orstream.package.loading import load_package
from orstream.package.preprocess import ImagePreprocessor


def test_the_package_holds_both_graphs_and_their_parity(random_tokenizer_package: Path) -> None:
    package = load_package(random_tokenizer_package)
    card = package.card
    spec = package.tokenizer_section()
    assert card.task == "tokenizer" and card.graphs == ("model", "detokenizer")
    assert sorted(p.name for p in package.root.iterdir()) == [
        "card.json",
        "detokenizer.onnx",
        "model.onnx",
        "reference.npz",
    ]
    assert card.inputs[0].shape == (1, 3, 32, 32) and card.inputs[0].mean == (0.5, 0.5, 0.5)
    assert card.graph_outputs() == {"indices": ((1, 4, 16, 16), "int64")}
    assert (spec.groups, spec.codes, spec.grid, spec.image_size) == (4, 256, (16, 16), (32, 32))
    assert [(p.batch, p.equal >= 0.999) for p in spec.index_parity] == [(1, True), (3, True)]
    assert [(p.source, p.batch) for p in spec.parity] == [
        ("phantom", 1),
        ("phantom", 3),
        ("random", 1),
        ("random", 3),
    ]
    assert all(p.max_abs_diff["image"] <= 1e-4 for p in spec.parity)
    assert card.training.cases == {"train": [1], "val": [2]}


@pytest.mark.parametrize("backend", [OnnxRuntimeBackend, TorchBackend])
def test_every_cpu_backend_reproduces_both_golden_references(
    random_tokenizer_package: Path, backend: type[OnnxRuntimeBackend] | type[TorchBackend]
) -> None:
    package = load_package(random_tokenizer_package)
    reference = package.reference("detokenizer")
    model_reference = package.reference("model")
    assert reference is not None and model_reference is not None
    # The detokenizer's golden input is the encoder's golden output.
    np.testing.assert_array_equal(reference.inputs["indices"], model_reference.outputs["indices"])
    for graph in package.card.graphs:
        runner = backend(graph=graph)
        runner.load(package)
        check = check_reference(runner, package, graph)
        assert check.max_abs_diff <= (0.0 if graph == "model" else 1e-5)


def test_indices_equal_pytorchs_and_images_equal_its_decode(
    random_tokenizer_package: Path,
) -> None:
    package = load_package(random_tokenizer_package)
    model = tokenizer_model(random_tokenizer_package)
    images = ImagePreprocessor.from_card(package.card).batch(list(phantom_frames(3, seed=5)))
    encoder = OnnxRuntimeBackend()
    encoder.load(package)
    detokenizer = OnnxRuntimeBackend(graph="detokenizer")
    detokenizer.load(package)
    indices = encoder.infer({"image": images})["indices"]
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(images)).numpy()
        decoded = reference_decode(model, torch.from_numpy(indices)).numpy()
    np.testing.assert_array_equal(indices, expected)
    image = detokenizer.infer({"indices": indices})["image"]
    np.testing.assert_allclose(image, decoded, atol=1e-5)
    assert image.min() >= 0.0 and image.max() <= 1.0


def test_the_graphs_decoder_is_the_models_decode(random_tokenizer_package: Path) -> None:
    model = tokenizer_model(random_tokenizer_package)
    indices = torch.from_numpy(random_indices(2, 4, 256, (16, 16)))
    with torch.no_grad():
        ours = TokenDecoder(model)(indices)
        theirs = reference_decode(model, indices)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


class _ShiftedIndices:
    """An encoder that gives PyTorch's indices with one in ``every`` moved to the next code."""

    def __init__(self, model: torch.nn.Module, every: int) -> None:
        self.model, self.every = model, every

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            indices = self.model.encode(torch.from_numpy(inputs["image"])).numpy()
        flat = indices.reshape(-1)
        flat[:: self.every] = (flat[:: self.every] + 1) % 256
        return {"indices": indices}


def test_index_parity_allows_a_rare_flip_and_refuses_more(random_tokenizer_package: Path) -> None:
    model = tokenizer_model(random_tokenizer_package)
    images = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    one_in_2048: Any = _ShiftedIndices(model, 2048)  # 2 frames hold 2 x 4 x 16 x 16 indices
    rare = check_index_parity(model, one_in_2048, images, "noise", 2)
    assert rare.equal == 1 - 1 / 2048 and rare.frames == 2
    four_in_2048: Any = _ShiftedIndices(model, 512)
    with pytest.raises(OrstreamError, match=r"only 99\.8047% of the encoder's indices equal"):
        check_index_parity(model, four_in_2048, images, "noise", 2)


def test_the_export_command_knows_a_tokenizer_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = save_random_tokenizer_checkpoint(tmp_path / "t.ckpt")
    out = tmp_path / "pkg"
    args = ["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*args, "--parity-frames", "2", "--max-batch", "2"]) == 0
    printed = capsys.readouterr().out
    assert "4 sub-codebooks x 256 codes, grid [16, 16]" in printed
    assert "equal indices" in printed and "detokenizer  random" in printed
    assert load_package(out).card.task == "tokenizer"
