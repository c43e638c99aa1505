"""The tokenizer's training: its metrics by hand, the teacher rebuilt from the shipped segmenter
package, and ``orstream train tokenizer`` through both stages on a tiny phantom."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from project_paths import PROJECT_ROOT
from test_tokenizer_datamodule import make_phantom

from orstream.cli import main
from orstream.errors import OrstreamError
from orstream.training.models.segmenter.from_package import scope_module_path
from orstream.training.modules.lit_tokenizer import code_statistics, narration_recall, psnr, ssim
from orstream.training.modules.tokenizer_teacher import SegmenterTeacher, perceptual_distance

CONFIG = PROJECT_ROOT / "training" / "configs" / "tokenizer_phantom.yaml"
SEGMENTER = PROJECT_ROOT / "edge" / "packages" / "imis_segmenter"


def test_psnr_ssim_and_code_statistics_by_hand() -> None:
    target = torch.zeros(2, 3, 8, 8)
    off = target + 0.1  # 0.05 on 0..1 pixels: MSE 0.0025
    assert psnr(off, target).tolist() == pytest.approx([10 * math.log10(400)] * 2)
    # Clamped to 1 first: 0.5 on 0..1 pixels, MSE 0.25.
    assert psnr(target + 5, target).tolist() == pytest.approx([10 * math.log10(4)] * 2)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert ssim(image, image).item() == pytest.approx(1.0)
    assert ssim(image + 0.3 * torch.randn_like(image), image).item() < 0.9
    usage, perplexity = code_statistics(torch.tensor([[2, 2, 0, 0], [4, 0, 0, 0]]))
    assert usage == pytest.approx(3 / 8)
    assert perplexity == pytest.approx((2 + 1) / 2)  # two codes equally, then one


def test_narration_recall_asks_for_the_frames_own_narration_among_the_distinct_ones() -> None:
    a, b, c = torch.eye(3)
    targets = torch.stack([a, a, b, c])  # two frames of narration a
    # Frame 2 is nearer to a than to its own b; frame 3 is nearest to c.
    predicted = torch.stack([a + 0.1 * b, a, 0.9 * a + 0.5 * b, c])
    assert narration_recall(predicted, targets) == pytest.approx(3 / 4)


def test_exporter_scopes_name_the_module_of_a_rewritten_weight() -> None:
    assert (
        scope_module_path("/image_encoder/blocks/blocks.0/attn/qkv/MatMul") == "blocks.0.attn.qkv"
    )
    assert scope_module_path("/image_encoder/neck/neck.1/Mul") == "neck.1"


def test_the_teacher_is_the_segmenter_packages_encoder_and_passes_gradients() -> None:
    teacher = SegmenterTeacher.load(SEGMENTER)  # raises unless it matches the reference
    assert not any(p.requires_grad for p in teacher.parameters())
    torch.manual_seed(0)
    frames = torch.rand(2, 3, 64, 64) * 2 - 1
    pooled, features = teacher(frames)
    assert pooled.shape == (2, 128)
    assert len(features) == 5
    assert perceptual_distance(features, features).item() == 0.0
    blurred = torch.nn.functional.avg_pool2d(frames, 3, 1, 1).requires_grad_(True)
    _, other = teacher(blurred)
    distance = perceptual_distance(other, features)
    assert distance.item() > 0.0
    distance.backward()
    assert blurred.grad is not None and float(blurred.grad.abs().sum()) > 0
    teacher.train()
    assert not teacher.training  # frozen in eval mode
    with pytest.raises(OrstreamError, match="differs from the reference"):
        SegmenterTeacher.load(SEGMENTER, num_heads=4)


TINY = [
    "model.model_kwargs={input_size: [64, 64], channels: [8, 16], encoder_blocks: [0, 1],"
    " decoder_blocks: [0, 1], groups: 2, codes: 16, code_dim: 4, head_width: 16}",
    f"model.teacher={SEGMENTER}",
    "data.train_videos=[1, 2]",
    "data.val_videos=[3]",
    "data.frames_per_clip=2",
    "data.val_frames_per_clip=1",
    "data.batch_size=4",
    "data.cache_dir=null",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
]


def train(
    root: Path, runs: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, str]:
    code = main(
        [
            "train",
            "tokenizer",
            "--config",
            str(CONFIG),
            f"data.root={root}",
            *TINY,
            *extra,
            "--",
            f"--trainer.logger.init_args.save_dir={runs}",
        ]
    )
    assert code == 0
    return dict(
        line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line
    )


def test_trains_stage_1_then_stage_2_from_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_phantom(tmp_path / "phantom")
    printed = train(root, tmp_path / "runs", capsys)
    first = Path(printed["last checkpoint"])
    assert first.is_file() and Path(printed["best checkpoint"]).name.startswith("best-")
    assert float(printed["best val_psnr"]) > 0
    saved = torch.load(first, weights_only=False)
    assert saved["global_step"] == 2  # 8 frames in batches of 4
    assert saved["hyper_parameters"]["model_name"] == "meditok_small"
    assert saved["hyper_parameters"]["stage"] == 1
    assert all(key.startswith("model.") for key in saved["state_dict"])  # no teacher inside
    data = saved["orstream"]["data"]
    assert data["input_size"] == [64, 64] and data["with_text"] is False  # linked
    assert set(saved["orstream"]["metrics"]) == {
        "val_psnr",
        "val_ssim",
        "val_codebook_usage",
        "val_perplexity",
        "val_visual_cos",
    }
    header = Path(printed["metrics"]).read_text().splitlines()[0].split(",")
    assert {"train_l1", "train_l2", "train_vq", "train_perceptual", "train_visual"} <= set(header)
    assert "train_text" not in header

    # Stage 2 at learning rate 0: its weights stay exactly the stage-1 weights it started from.
    printed = train(
        root,
        tmp_path / "runs",
        capsys,
        "model.stage=2",
        f"model.init_weights={first}",
        "model.lr=0",
    )
    second = torch.load(Path(printed["last checkpoint"]), weights_only=False)
    assert second["hyper_parameters"]["init_weights"] == str(first)
    assert second["orstream"]["data"]["with_text"] is True
    assert {"val_text_cos", "val_text_r1"} <= set(second["orstream"]["metrics"])
    assert "train_text" in Path(printed["metrics"]).read_text().splitlines()[0].split(",")
    for key, value in saved["state_dict"].items():
        if key != "model.quantizer.idle":  # counts steps
            assert torch.equal(second["state_dict"][key], value), key


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.stage=3"], "stage must be 1 or 2, not 3"),
        (["model.init_weights=/nowhere.ckpt"], "init_weights: checkpoint /nowhere.ckpt not found"),
        (["model.teacher=null"], "need a teacher package"),
    ],
)
def test_bad_settings_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: list[str], message: str
) -> None:
    code = main(
        ["train", "tokenizer", "--config", str(CONFIG), f"data.root={tmp_path}", *overrides]
    )
    assert code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
