"""`orstream eval tokenizer` on a tiny phantom dataset with a random tokenizer package: the
measures worked by hand, the report's keys and ranges, JPEG held to the tokens' bits, bad
input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_runs import run_cli

from orstream.edge.models.shipped import SHIPPED_PACKAGE
from orstream.errors import OrstreamError
from orstream.export.evaluation.tokenizer import (
    JPEG_QUALITIES,
    code_statistics,
    jpeg_at_budget,
    psnr,
    ssim,
    token_bits,
)
from orstream.export.onnx.parity import phantom_frames
from orstream.streams.phantom.writer import PhantomSpec, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tokenizer_eval")
    write_dataset(PhantomSpec(2, 20, seed=17, width=160, height=96, fps=4.0), root)
    return root


def test_psnr_of_a_uniform_error_is_worked_by_hand() -> None:
    target = np.zeros((2, 4, 4, 3))
    rebuilt = target.copy()
    rebuilt[0] += 0.1  # MSE 0.01: 20 dB
    rebuilt[1, 0, 0, 0] = 0.48  # MSE 0.48^2 / 48 = 0.0048: 23.19 dB
    np.testing.assert_allclose(psnr(rebuilt, target), [20.0, -10 * math.log10(0.0048)])
    assert psnr(target, target).tolist() == [100.0, 100.0]  # an exact copy: capped


def test_ssim_is_one_for_a_copy_and_lower_for_noise() -> None:
    image = phantom_frames(1)[0].astype(np.float32)[None] / 255.0
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 0.1, image.shape), 0, 1)
    assert ssim(image, image) == pytest.approx(1.0)
    assert 0.0 < ssim(noisy, image) < 0.9


def test_bits_per_pixel_of_the_default_tokenizer() -> None:
    # 8 sub-codebooks of 512 codes (9 bits) on a 32x32 grid of a 256x256 image.
    assert token_bits(8, (32, 32), 512) == 73728
    assert token_bits(8, (32, 32), 512) / (256 * 256) == 1.125


def test_codebook_usage_and_perplexity_by_hand() -> None:
    indices = np.zeros((2, 2, 1, 2), np.int64)  # 2 images, 2 groups, 1x2 grid
    indices[:, 1] = [[[0, 1]], [[0, 1]]]  # group 1: codes 0 and 1 equally often
    usage, perplexity = code_statistics(indices, codes=4)
    assert usage == 3 / 8  # 1 code of group 0, 2 of group 1, of 2 x 4
    assert perplexity == pytest.approx((1 + 2) / 2)  # exp(0) and exp(log 2)


def test_jpeg_is_the_largest_file_within_the_bits() -> None:
    image = phantom_frames(1)[0]
    bits = 8 * 9000
    decoded, size, quality = jpeg_at_budget(image, bits)
    assert decoded.shape == image.shape and size * 8 <= bits
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    sizes = {
        q: cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, q])[1].size for q in JPEG_QUALITIES
    }
    assert sizes[quality] == size == max(s for s in sizes.values() if s * 8 <= bits)
    with pytest.raises(OrstreamError, match="no JPEG of a 320x180 frame fits 800 bits"):
        jpeg_at_budget(image, 800)


def test_the_report_has_every_score_in_range(random_tokenizer_package: Path, dataset: Path) -> None:
    code, printed, error = run_cli(
        "eval",
        "tokenizer",
        "--package",
        str(random_tokenizer_package),
        "--data",
        str(dataset),
        "--json",
    )
    assert code == 0, error
    report = json.loads(printed)
    assert report["videos"] == [2]  # the card's val cases
    assert report["frames"] == 2  # 1 frame from each 10 s narrated clip of 20 s
    assert report["bpp"] == 4 * 16 * 16 * 8 / (32 * 32)
    assert 0 < report["jpeg_bpp"] <= report["bpp"] and 1 <= report["jpeg_quality"] <= 100
    for key in ("psnr", "jpeg_psnr"):
        assert 0 < report[key] < 100
    for key in ("ssim", "jpeg_ssim"):
        assert -1 <= report[key] <= 1
    assert 0 < report["codebook_usage"] <= 1 and 1 <= report["perplexity"] <= 256
    assert report["jpeg_psnr"] > report["psnr"]  # random weights rebuild nothing


def test_the_table_and_the_videos_option(random_tokenizer_package: Path, dataset: Path) -> None:
    code, printed, _ = run_cli(
        "eval",
        "tokenizer",
        "--package",
        str(random_tokenizer_package),
        "--data",
        str(dataset),
        "--videos",
        "1-2",
        "--frames-per-clip",
        "2",
    )
    assert code == 0
    assert "8 frames of held-out videos [1, 2]" in printed
    assert "target PSNR 26 dB: not met" in printed


def test_bad_input_is_one_line(
    random_tokenizer_package: Path, dataset: Path, tmp_path: Path
) -> None:
    for args, message in (
        (["--package", str(SHIPPED_PACKAGE), "--data", str(dataset)], "package, not tokenizer"),
        (
            ["--package", str(random_tokenizer_package), "--data", str(tmp_path / "none")],
            "dataset root not found",
        ),
        (
            ["--package", str(random_tokenizer_package), "--data", str(dataset), "--videos", "7"],
            "narrations_07.csv: no such file",
        ),
    ):
        code, printed, error = run_cli("eval", "tokenizer", *args)
        assert code == 2 and not printed and message in error, error
        assert error.count("\n") == 1
