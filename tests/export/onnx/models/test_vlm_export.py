"""orstream export onnx of a vision-language checkpoint: the vlm package, its parity and its
golden reference, on a tiny random model built here."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from orstream.cli import main
from orstream.errors import OrstreamError
from orstream.export.onnx.models.vlm_export import export_vlm_package
from orstream.package.card import DECODE_FILE, VLM
from orstream.package.loading import load_package
from orstream.vlm.answering.language_runtime import check_reference
from orstream.vlm.answering.onnx_language import OnnxLanguage
from orstream.vlm.answering.torch_language import TorchLanguage
from tests.vlm_checkpoints import (
    FRAME_PACKAGE,
    INSTRUMENT_PACKAGE,
    tiny_vlm_checkpoint,
    tiny_vlm_package,
)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vlm_package(tmp_path_factory.mktemp("vlm"))


def test_package_holds_prefill_decode_projectors_weights_and_tokenizer(package: Path) -> None:
    loaded = load_package(package)
    card = loaded.card
    assert card.task == VLM and card.vlm is not None
    assert card.graphs == ("model", "decode", "projector_surgical", "projector_slide")
    for name in (
        "model.onnx",
        DECODE_FILE,
        "projector_slide.onnx",
        "weights.npz",
        "tokenizer.json",
        "reference.npz",
    ):
        assert (package / name).is_file()
    encoders = card.vlm.encoders
    assert encoders.frame_package == str(FRAME_PACKAGE)
    assert encoders.frame_package_sha256 == load_package(FRAME_PACKAGE).card.hashes.model_onnx
    assert (encoders.frame_grid, encoders.slide_regions, encoders.window_s) == ((1, 2), (2, 2), 3)
    assert encoders.instrument_package == str(INSTRUMENT_PACKAGE)
    assert (
        encoders.instrument_package_sha256
        == load_package(INSTRUMENT_PACKAGE).card.hashes.model_onnx
    )
    assert encoders.tokens_per_frame == 3  # two cells and the instrument token
    assert encoders.slide_package_sha256 is not None  # the shipped slide package
    assert card.vlm.language.layers == 2 and card.vlm.language.kv_heads == 2
    assert card.training.metrics["val_accuracy"] == 0.25


def test_graphs_take_any_batch_and_length(package: Path) -> None:
    def dims(path: Path, name: str) -> list[int | str]:
        graph = onnx.load(str(path)).graph
        value = next(v for v in [*graph.input, *graph.output] if v.name == name)
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert dims(package / "model.onnx", "inputs_embeds") == ["batch", "length", 32]
    assert dims(package / "model.onnx", "keys") == ["batch", 2, 2, "length", 8]
    assert dims(package / DECODE_FILE, "past_keys") == ["batch", 2, 2, "past", 8]
    assert dims(package / DECODE_FILE, "keys") == ["batch", 2, 2, "total", 8]
    assert dims(package / DECODE_FILE, "logits") == ["batch", 320]


def test_parity_is_recorded_alone_and_left_padded_in_a_batch(package: Path) -> None:
    card = load_package(package).card
    assert card.vlm is not None
    prefill, decode = card.export.parity, card.vlm.decode.parity
    assert {p.batch for p in prefill} == {1, 3} and {p.batch for p in decode} == {1, 3}
    assert any(len(p.source.split("-")) > 3 for p in prefill)  # several lengths together
    for result in (*prefill, *decode, *card.vlm.projectors["slide"].parity):
        assert max(result.max_abs_diff.values()) <= result.tolerance == 1e-4


def test_both_runtimes_reproduce_the_golden_reference(package: Path) -> None:
    loaded = load_package(package)
    reference = loaded.reference("decode")
    assert reference is not None
    assert reference.inputs["past_keys"].shape[3] + 1 == reference.outputs["keys"].shape[3]
    OnnxLanguage(loaded)
    TorchLanguage(loaded)


def test_a_runtime_that_differs_from_the_reference_is_refused(
    package: Path, tmp_path: Path
) -> None:
    runtime = TorchLanguage(package)
    with torch.no_grad():
        runtime.model.language.norm.weight.mul_(1.5)
    with pytest.raises(OrstreamError, match="golden reference"):
        check_reference(runtime, load_package(package))


def test_a_replaced_weights_file_is_refused(package: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    with np.load(copy / "weights.npz") as weights:
        arrays = {name: weights[name] for name in weights.files}
    arrays["language.norm.weight"] = arrays["language.norm.weight"] * 2
    np.savez(copy / "weights.npz", **arrays)
    with pytest.raises(OrstreamError, match=r"weights.npz does not match card.json"):
        load_package(copy)


def test_a_checkpoint_without_its_tokenizer_is_refused(tmp_path: Path) -> None:
    path = tiny_vlm_checkpoint(tmp_path)
    checkpoint = torch.load(path, weights_only=False)
    del checkpoint["orstream"]["tokenizer"]
    torch.save(checkpoint, path)
    with pytest.raises(OrstreamError, match="carries no tokenizer"):
        export_vlm_package(path, tmp_path / "out", progress=lambda _: None)
    assert not (tmp_path / "out").exists()


def test_the_export_command_writes_a_vlm_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tiny_vlm_checkpoint(tmp_path)
    code = main(
        [
            "export",
            "onnx",
            "--checkpoint",
            str(path),
            "--out",
            str(tmp_path / "pkg"),
            "--max-batch",
            "2",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "decode" in printed and "projector" in printed
    assert load_package(tmp_path / "pkg").card.max_batch == 2
