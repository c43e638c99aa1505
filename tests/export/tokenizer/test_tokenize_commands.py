"""`orstream tokenize` and `orstream detokenize`: images and short videos there and back, and
one clear line for every bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_runs import run_cli
from tokenizer_checkpoints import tokenizer_model

from orstream.edge.models.shipped import SHIPPED_PACKAGE
from orstream.export.onnx.models.tokenizer_export import reference_decode
from orstream.export.onnx.parity import phantom_frames
from orstream.export.tokenizer.runner import to_pixels
from orstream.package.loading import load_package
from orstream.package.preprocess import ImagePreprocessor
from orstream.streams.sources.video_file import H264Writer, probe_video


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """Six phantom frames, RGB uint8 [6, 180, 320, 3]."""
    return phantom_frames(6, seed=2)


@pytest.fixture(scope="module")
def video(frames: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Those frames as a 4 fps H.264 video."""
    path = tmp_path_factory.mktemp("video") / "case.mp4"
    with H264Writer(path, 320, 180, 4.0) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def _write_png(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def _tokenize(package: Path, source: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(
        "tokenize", "--package", str(package), "--input", str(source), "--out", str(out), *extra
    )


def _detokenize(package: Path, tokens: Path, out: Path) -> tuple[int, str, str]:
    return run_cli(
        "detokenize", "--package", str(package), "--input", str(tokens), "--out", str(out)
    )


def test_an_image_goes_to_its_tokens_and_back(
    random_tokenizer_package: Path, frames: np.ndarray, tmp_path: Path
) -> None:
    image = frames[3]
    source = _write_png(tmp_path / "frame.png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    code, printed, _ = _tokenize(random_tokenizer_package, source, tmp_path / "frame.npz")
    assert code == 0 and "1 image of 320x180 -> 4 x 16 x 16 indices" in printed
    with np.load(tmp_path / "frame.npz") as saved:
        indices = saved["indices"]
        assert indices.dtype == np.int16 and indices.shape == (1, 4, 16, 16)
        assert str(saved["kind"]) == "image" and list(saved["source_size"]) == [180, 320]
        assert str(saved["version"]) == load_package(random_tokenizer_package).card.version
    model = tokenizer_model(random_tokenizer_package)
    card = load_package(random_tokenizer_package).card
    with torch.no_grad():
        tensor = torch.from_numpy(ImagePreprocessor.from_card(card)(image))
        np.testing.assert_array_equal(indices, model.encode(tensor).numpy())
        expected = to_pixels(
            reference_decode(model, torch.from_numpy(indices.astype(np.int64)))
            .permute(0, 2, 3, 1)
            .numpy()
        )[0]
    code, printed, _ = _detokenize(
        random_tokenizer_package, tmp_path / "frame.npz", tmp_path / "back.png"
    )
    assert code == 0 and "back.png (320x180)" in printed
    back = cv2.cvtColor(cv2.imread(str(tmp_path / "back.png")), cv2.COLOR_BGR2RGB)
    resized = cv2.resize(expected, (320, 180), interpolation=cv2.INTER_LINEAR)
    assert back.shape == (180, 320, 3)
    assert np.abs(back.astype(int) - resized).max() <= 1  # float noise may round a pixel apart


def test_an_alpha_channel_is_dropped(
    random_tokenizer_package: Path, frames: np.ndarray, tmp_path: Path
) -> None:
    bgr = cv2.cvtColor(frames[1], cv2.COLOR_RGB2BGR)
    alpha = np.dstack([bgr, np.full(bgr.shape[:2], 7, np.uint8)])
    for name, image in (("rgb", bgr), ("rgba", alpha)):
        assert (
            _tokenize(
                random_tokenizer_package,
                _write_png(tmp_path / f"{name}.png", image),
                tmp_path / f"{name}.npz",
            )[0]
            == 0
        )
    with np.load(tmp_path / "rgb.npz") as rgb, np.load(tmp_path / "rgba.npz") as rgba:
        np.testing.assert_array_equal(rgb["indices"], rgba["indices"])


def test_a_video_goes_to_tokens_per_frame_and_back(
    random_tokenizer_package: Path, video: Path, tmp_path: Path
) -> None:
    tokens = tmp_path / "case.npz"
    code, printed, _ = _tokenize(random_tokenizer_package, video, tokens)
    assert code == 0 and "6 frames of 320x180" in printed
    with np.load(tokens) as saved:
        assert saved["indices"].shape == (6, 4, 16, 16) and list(saved["frames"]) == list(range(6))
        assert float(saved["fps"]) == 4.0 and str(saved["kind"]) == "video"
    code, printed, _ = _detokenize(random_tokenizer_package, tokens, tmp_path / "back.mp4")
    assert code == 0 and "6 frames, 320x180, 4 fps" in printed
    info = probe_video(tmp_path / "back.mp4")
    assert (info.frame_count, info.width, info.height, info.fps) == (6, 320, 180, 4.0)
    code, _, _ = _detokenize(random_tokenizer_package, tokens, tmp_path / "pngs")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [
        f"frame_{i:06d}.png" for i in range(6)
    ]


def test_fps_takes_the_frame_nearest_each_instant(
    random_tokenizer_package: Path, video: Path, tmp_path: Path
) -> None:
    code, printed, _ = _tokenize(
        random_tokenizer_package, video, tmp_path / "half.npz", "--fps", "2"
    )
    assert code == 0 and "3 frames" in printed
    assert _tokenize(random_tokenizer_package, video, tmp_path / "all.npz")[0] == 0
    with np.load(tmp_path / "half.npz") as half, np.load(tmp_path / "all.npz") as every:
        assert list(half["frames"]) == [0, 2, 4] and float(half["fps"]) == 2.0
        np.testing.assert_array_equal(half["indices"], every["indices"][[0, 2, 4]])


def test_bad_inputs_are_refused_in_one_line(
    random_tokenizer_package: Path, frames: np.ndarray, tmp_path: Path
) -> None:
    package = random_tokenizer_package
    gray = _write_png(tmp_path / "gray.png", cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY))
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    color = _write_png(tmp_path / "color.png", frames[0])
    cases = [
        (_tokenize(package, gray, tmp_path / "g.npz"), "1 channel(s) (grayscale)"),
        (_tokenize(package, text, tmp_path / "t.npz"), "neither an image nor a readable video"),
        (_tokenize(package, tmp_path / "missing.png", tmp_path / "m.npz"), "no such file"),
        (_tokenize(package, color, tmp_path / "c.txt"), "a tokens file must end in .npz"),
        (_tokenize(SHIPPED_PACKAGE, color, tmp_path / "w.npz"), "package, not tokenizer"),
        (
            _detokenize(SHIPPED_PACKAGE, tmp_path / "any.npz", tmp_path / "w.png"),
            "package, not tokenizer",
        ),
        (_detokenize(package, text, tmp_path / "t.png"), "is not a tokens file"),
    ]
    for (code, printed, error), message in cases:
        assert code == 2 and not printed and message in error
        assert error.count("\n") == 1 and error.startswith("orstream: error: ")


def _retokenized(source: Path, target: Path, **changes: np.ndarray) -> Path:
    with np.load(source) as saved:
        arrays = {name: saved[name] for name in saved.files}
    arrays.update(changes)
    np.savez(target, **arrays)  # type: ignore[arg-type]
    return target


def test_tokens_the_package_cannot_decode_are_refused(
    random_tokenizer_package: Path, frames: np.ndarray, tmp_path: Path
) -> None:
    package = random_tokenizer_package
    source = _write_png(tmp_path / "frame.png", frames[0])
    tokens = tmp_path / "frame.npz"
    assert _tokenize(package, source, tokens)[0] == 0
    with np.load(tokens) as saved:
        indices = saved["indices"]
    high = indices.copy()
    high[0, 1, 2, 3] = 256
    cases = [
        (
            _retokenized(tokens, tmp_path / "v.npz", version=np.array("0123456789ab")),
            "holds tokens of package meditok_small version 0123456789ab",
        ),
        (
            _retokenized(tokens, tmp_path / "s.npz", indices=indices[:, :3]),
            "indices are int16 [1, 3, 16, 16], the package needs integers [N, 4, 16, 16]",
        ),
        (
            _retokenized(tokens, tmp_path / "f.npz", indices=indices.astype(np.float32)),
            "the package needs integers",
        ),
        (_retokenized(tokens, tmp_path / "r.npz", indices=high), "indices run from"),
    ]
    for path, message in cases:
        code, _, error = _detokenize(package, path, tmp_path / "out.png")
        assert code == 2 and message in error, error
    code, _, error = _detokenize(package, tokens, tmp_path / "out.mp4")
    assert code == 2 and "an image's tokens are written as a .png file" in error
    assert not (tmp_path / "out.png").exists()
