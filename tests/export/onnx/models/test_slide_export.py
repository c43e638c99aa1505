"""A slide encoder checkpoint exports with its patch encoder to one slide package: both graphs,
any tile count, a golden reference that the runtime checks, and files checked by hash."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from slide_checkpoints import random_slide_package, save_random_slide_checkpoints

from orstream.errors import OrstreamError
from orstream.export.onnx.models.slide_export import export_slide_package
from orstream.package.card import SLIDE
from orstream.package.loading import load_package, sha256_file, write_card
from orstream.slides.slide_models import DEFAULT_PACKAGE, SlideModels
from orstream.training.registry import create_model


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_slide_package(tmp_path_factory.mktemp("slide_export"))


def test_the_package_holds_both_encoders_and_their_tiling(package: Path) -> None:
    loaded = load_package(package)
    card = loaded.card
    assert card.task == SLIDE
    assert card.graphs == ("model", "slide")
    assert card.slide is not None
    assert (card.slide.mpp, card.slide.tile, card.slide.min_tissue) == (4.0, 32, 0.5)
    assert [label.name for label in card.labels["subtypes"]] == ["none", "glandular", "solid"]
    assert {p.batch for p in card.export.parity} == {1, 2}
    assert {p.source for p in card.slide.parity} == {
        "phantom-1-tiles", "phantom-7-tiles", "phantom-64-tiles"
    }  # fmt: skip
    reference = loaded.reference("slide")
    assert reference is not None and reference.inputs["features"].shape == (1, 8, 16)


def test_the_slide_graph_takes_any_tile_count_as_torch_does(package: Path) -> None:
    models = SlideModels(package, threads=1)
    torch.manual_seed(0)
    checkpoint = torch.load(package.parent / "slide.ckpt", weights_only=True)
    slide = create_model("slide_mil_encoder", feature_dim=16, hidden=8, dropout=0.1).eval()
    slide.load_state_dict({k[6:]: v for k, v in checkpoint["state_dict"].items()})
    for tiles in (1, 3, 257):
        features = np.random.default_rng(tiles).standard_normal((tiles, 16)).astype(np.float32)
        got = models.classify(features)
        with torch.no_grad():
            out = slide(torch.from_numpy(features)[None], torch.ones(1, tiles, dtype=torch.bool))
        assert got.tile_tumour.shape == (tiles,)
        assert np.allclose(got.attention, out["attention"][0].numpy(), atol=1e-5)
        assert got.attention.sum() == pytest.approx(1.0, abs=1e-5)
        assert got.fraction == pytest.approx(float(out["fraction"][0]), abs=1e-5)
        expected = torch.softmax(out["subtype"][0], 0).numpy()
        assert np.allclose(got.probabilities, expected, atol=1e-5)


def test_a_package_whose_graph_disagrees_with_its_golden_reference_is_refused(
    package: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "package"
    shutil.copytree(package, copy)
    with np.load(copy / "reference.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["slide.out.fraction"] = arrays["slide.out.fraction"] + 0.01
    np.savez(copy / "reference.npz", **arrays)
    card = load_package(package).card
    hashes = card.hashes.model_copy(update={"reference": sha256_file(copy / "reference.npz")})
    write_card(copy, card.model_copy(update={"hashes": hashes}))
    load_package(copy)  # every file is the one the card names...
    with pytest.raises(OrstreamError, match=r"slide output 'fraction' is 0\.01 from the golden"):
        SlideModels(copy)  # ...but the graph does not give the reference's outputs


def test_the_shipped_package_loads_and_reproduces_its_reference() -> None:
    models = SlideModels(DEFAULT_PACKAGE, threads=1)
    assert models.labels == ("none", "glandular", "solid")
    assert models.tile == 112
    out = models.classify(np.zeros((4, 512), np.float32))
    assert out.probabilities.shape == (3,) and out.tile_tumour.shape == (4,)


def test_a_package_of_another_task_is_refused(random_workflow_package: Path) -> None:
    with pytest.raises(OrstreamError, match="is a workflow_recognition package, not slide"):
        SlideModels(random_workflow_package)


def test_a_slide_checkpoint_without_its_patch_encoder_is_one_line(tmp_path: Path) -> None:
    checkpoint = save_random_slide_checkpoints(tmp_path)
    (tmp_path / "patch.ckpt").unlink()
    with pytest.raises(OrstreamError, match=r"its patch encoder checkpoint .*patch\.ckpt is not"):
        export_slide_package(checkpoint, tmp_path / "package", progress=lambda _: None)


def test_the_export_command_reports_both_encoders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orstream.cli import main

    checkpoint = save_random_slide_checkpoints(tmp_path)
    out = tmp_path / "package"
    args = ["--checkpoint", str(checkpoint), "--out", str(out), "--parity-frames", "4"]
    assert main(["export", "onnx", *args, "--max-batch", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"package   {out}")
    assert "slide     features [1, N, 16] -> none, glandular, solid, fraction, heatmap" in printed
    parity = [line.split()[0] for line in printed[printed.index(
        "parity    ONNX Runtime vs PyTorch, max abs diff:") + 1 :]]  # fmt: skip
    assert set(parity) == {"patch", "slide"}
