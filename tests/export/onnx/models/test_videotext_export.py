"""Exporting the video-text model: a streaming clip encoder, a text encoder and step prompts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from videotext_checkpoints import MODEL_KWARGS, save_random_videotext_checkpoint

from orstream.cli import main
from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.edge.backends.reference_check import check_reference
from orstream.errors import OrstreamError
from orstream.export.onnx.parity import phantom_frames
from orstream.labels import STEP_CODES
from orstream.package.loading import load_package
from orstream.package.preprocess import ImagePreprocessor
from orstream.training.data.videotext_data import step_description
from orstream.training.models.text_encoder import TextEncoder
from orstream.training.models.videotext import VideoTextModel
from orstream.training.registry import create_model
from orstream.wordpiece import WordPieceTokenizer


def _model(package: Path) -> VideoTextModel:
    model = create_model("ophclip_small", **MODEL_KWARGS)
    saved = torch.load(package.parent / "videotext.ckpt", weights_only=False)["state_dict"]
    model.load_state_dict({k[len("model.") :]: v for k, v in saved.items()})
    assert isinstance(model, VideoTextModel)
    return model.eval()


def test_the_package_holds_both_graphs_the_vocabulary_and_step_prompts(
    random_videotext_package: Path,
) -> None:
    package = load_package(random_videotext_package)
    card = package.card
    text = package.text_section()
    assert card.task == "video_text" and card.graphs == ("model", "text")
    assert card.clip.length == 4 and card.clip.fps == pytest.approx(0.4)  # 4 frames in 10 s
    assert [s.input for s in card.state] == ["state_in.window", "state_in.filled"]
    assert text.prompts == tuple(step_description(code) for code in STEP_CODES)
    assert package.step_prompts().shape == (len(STEP_CODES), 32)
    assert (package.root / "vocab.txt").is_file() and text.tokens == 64
    assert [p.batch for p in card.export.parity] == [1, 3, 1, 3]
    assert [p.batch for p in text.parity] == [1, 3]
    assert card.training.cases == {"train": [1, 2], "val": [3]}
    for graph in card.graphs:
        backend = OnnxRuntimeBackend(graph=graph)
        backend.load(package)
        assert check_reference(backend, package, graph).max_abs_diff <= 1e-5


def test_streaming_clip_embeddings_are_the_models_embeddings_of_the_last_frames(
    random_videotext_package: Path,
) -> None:
    package = load_package(random_videotext_package)
    model = _model(random_videotext_package)
    session = ort.InferenceSession(str(package.model_path), providers=["CPUExecutionProvider"])
    preprocess = ImagePreprocessor.from_card(package.card)
    images = np.stack([preprocess(frame) for frame in phantom_frames(7)])
    state = package.card.initial_state()
    for t in range(len(images)):
        clip, window, filled = session.run(None, {"frame": images[t], **state})
        state = {"state_in.window": window, "state_in.filled": filled}
        first = max(0, t - 3)  # the window: at most 4 frames, fewer at the start
        with torch.no_grad():
            expected = model.embed_video(torch.from_numpy(images[None, first : t + 1, 0]))
        np.testing.assert_allclose(clip, expected.numpy(), atol=1e-4)
        assert filled.sum() == min(t + 1, 3)


def test_text_graph_embeds_as_minilm_and_the_trained_projection(
    random_videotext_package: Path,
) -> None:
    package = load_package(random_videotext_package)
    model = _model(random_videotext_package)
    backend = OnnxRuntimeBackend(graph="text")
    backend.load(package)
    texts = ["Surgical step: sellar opening.", "the suction near the sella"]
    ids, mask = WordPieceTokenizer(package.vocab_path).encode_fixed(texts, 64)
    actual = backend.infer({"input_ids": ids, "attention_mask": mask})["text_embedding"]
    with torch.no_grad():
        expected = model.embed_text(TextEncoder.load().encode(texts)).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(actual, axis=1), 1.0, atol=1e-5)
    # The shipped prompt rows are the same function of the step descriptions.
    prompts = package.step_prompts()
    ids, mask = WordPieceTokenizer(package.vocab_path).encode_fixed(
        package.text_section().prompts[:3], 64
    )
    rows = backend.infer({"input_ids": ids, "attention_mask": mask})["text_embedding"]
    np.testing.assert_allclose(rows, prompts[:3], atol=1e-5)


def test_a_changed_prompt_file_is_refused(random_videotext_package: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "package"
    shutil.copytree(random_videotext_package, copy)
    np.save(copy / "step_prompts.npy", np.zeros((len(STEP_CODES), 32), np.float32))
    with pytest.raises(OrstreamError, match=r"step_prompts\.npy does not match card\.json"):
        load_package(copy)
    shutil.copyfile(random_videotext_package / "step_prompts.npy", copy / "step_prompts.npy")
    (copy / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(OrstreamError, match=r"vocab\.txt does not match card\.json"):
        load_package(copy)


def test_the_export_command_knows_a_videotext_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = save_random_videotext_checkpoint(tmp_path / "v.ckpt")
    out = tmp_path / "pkg"
    args = ["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*args, "--parity-frames", "2", "--max-batch", "2"]) == 0
    printed = capsys.readouterr().out
    assert "window 4" in printed and "15 step prompts" in printed
    assert "text  text" in printed and "clip  phantom" in printed
    card = json.loads((out / "card.json").read_text())
    assert card["text"]["inputs"][0]["shape"] == [1, 64]
    assert card["text"]["logit_scale"] == pytest.approx(1 / 0.07, rel=1e-5)


def test_the_clip_rate_is_that_of_the_training_windows(tmp_path: Path) -> None:
    from orstream.export.onnx.models.videotext_export import clip_fps
    from orstream.export.onnx.models.workflow_export import load_model_checkpoint

    checkpoint = load_model_checkpoint(
        save_random_videotext_checkpoint(tmp_path / "v.ckpt"), lambda _: None
    )
    model = checkpoint.model
    assert isinstance(model, VideoTextModel)
    assert clip_fps(checkpoint, model) == pytest.approx(4 / 10)  # a narrated clip's rate
    windowed = replace(checkpoint, record={"data": {"segment_window_s": 2.0}})
    assert clip_fps(windowed, model) == pytest.approx(4 / 2.0)  # 4 frames in 2 s windows
