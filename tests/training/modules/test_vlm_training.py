"""orstream train vlm: every stage from the shipped config on tiny phantoms, a few steps each,
with the real segmenter and slide packages making the visual tokens."""

import csv
from pathlib import Path

import pytest
import torch

from orstream.cli import main
from orstream.training.modules.lit_vlm import LitVLM
from orstream.vlm.text_tokenizer import TextTokenizer
from tests.project_paths import PROJECT_ROOT

VLM_CONFIG = PROJECT_ROOT / "training" / "configs" / "vlm_phantom.yaml"
TINY_MODEL = (
    "model.model_kwargs={vocab_size: 600, width: 32, layers: 1, heads: 4, kv_heads: 2, "
    "mlp_hidden: 64}"
)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from orstream.slides.phantom.dataset_writer import write_slide_dataset
    from orstream.streams.phantom.writer import PhantomSpec, write_dataset

    root = tmp_path_factory.mktemp("vlm_phantoms")
    write_dataset(PhantomSpec(3, 24, seed=41, width=160, height=96, fps=2.0), root / "surgical")
    write_slide_dataset(root / "slides", 3, seed=43, size=1024)
    return root / "surgical", root / "slides"


def train(stage: int, phantoms: tuple[Path, Path], runs: Path, *extra: str) -> int:
    """``orstream train vlm --stage STAGE`` on the tiny phantoms, 3 steps; its exit code."""
    surgical, slides = phantoms
    return main(
        [
            "train",
            "vlm",
            "--config",
            str(VLM_CONFIG),
            "--stage",
            str(stage),
            TINY_MODEL,
            f"data.surgical_root={surgical}",
            f"data.slide_root={slides}",
            "data.val_videos=[3]",
            "data.val_slides=[slide_003]",
            f"data.tokenizer={runs / 'tokenizer.json'}",
            f"data.frame_package={PROJECT_ROOT / 'edge' / 'packages' / 'imis_segmenter'}",
            "data.batch_size=8",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=3",
            "trainer.log_every_n_steps=1",
            *extra,
            "--",
            f"--trainer.logger.init_args.save_dir={runs}",
        ]
    )


def printed(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    lines = capsys.readouterr().out.splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def test_stage_1_then_stage_2_from_its_weights(
    phantoms: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(1, phantoms, tmp_path) == 0
    first = printed(capsys)
    assert 0.0 <= float(first["best val_token_accuracy"]) <= 1.0
    tokenizer = TextTokenizer.load(tmp_path / "tokenizer.json")
    assert tokenizer.vocab_size <= 600
    stage_1 = torch.load(Path(first["last checkpoint"]), weights_only=False)
    assert stage_1["hyper_parameters"]["model_name"] == "gmai_vl_small"
    assert stage_1["orstream"]["data"]["stage"] == 1
    assert stage_1["orstream"]["tokenizer"] == tokenizer.to_json()
    # Stage 2 starts from stage 1's weights, loaded when fitting begins.
    resumed = LitVLM(
        model_kwargs=stage_1["hyper_parameters"]["model_kwargs"],
        stage=2,
        init_weights=first["last checkpoint"],
    )
    resumed.setup("fit")
    for name, value in resumed.state_dict().items():
        assert torch.equal(value, stage_1["state_dict"][name])

    code = train(
        2,
        phantoms,
        tmp_path,
        f"model.init_weights={first['last checkpoint']}",
        "model.val_generate=6",
        "model.max_new_tokens=8",
    )
    assert code == 0
    second = printed(capsys)
    # A stage-2 checkpoint carries its weights: it loads without stage 1's file.
    Path(first["last checkpoint"]).unlink()
    LitVLM.load_from_checkpoint(second["last checkpoint"], map_location="cpu")
    stage_2 = torch.load(Path(second["last checkpoint"]), weights_only=False)
    assert stage_2["orstream"]["data"]["stage"] == 2
    metrics = stage_2["orstream"]["metrics"]
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert 0.0 <= metrics["val_format_ok"] <= 1.0
    # The held-out questions answered span both sources.
    kinds = {name.removeprefix("val_accuracy_") for name in metrics if "accuracy_" in name}
    assert "out_of_patient" in kinds
    assert kinds & {"tumour_present", "subtype", "tumour_fraction", "region", "multiple_choice"}


def test_a_held_out_case_that_is_not_there_is_one_clear_error(
    phantoms: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(1, phantoms, tmp_path, "data.val_videos=[9]") != 0
    assert "no held-out videos [9]" in capsys.readouterr().err


def test_stage_3_reinforces_from_an_earlier_stage_and_logs_its_rewards(
    phantoms: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(1, phantoms, tmp_path) == 0
    start = printed(capsys)["last checkpoint"]
    grpo = [
        f"model.init_weights={start}",
        "model.group_size=3",
        "model.max_new_tokens=6",
        "model.val_generate=4",
        "model.lr=0.0001",
        "data.batch_size=2",
        "checkpoint.monitor=val_accuracy",
    ]
    assert train(3, phantoms, tmp_path, *grpo) == 0
    third = printed(capsys)
    assert 0.0 <= float(third["best val_accuracy"]) <= 1.0
    # The best checkpoint is named by the monitor that chose it.
    best = Path(third["best checkpoint"]).name
    assert best.endswith(f"-{float(third['best val_accuracy']):.4f}.ckpt"), best
    checkpoint = torch.load(Path(third["last checkpoint"]), weights_only=False)
    assert checkpoint["orstream"]["data"]["stage"] == 3
    assert 0.0 <= checkpoint["orstream"]["metrics"]["val_format_ok"] <= 1.0
    # Only the policy is saved (the frozen reference stays out), and it has moved.
    assert not any(name.startswith("reference") for name in checkpoint["state_dict"])
    first = torch.load(Path(start), weights_only=False)["state_dict"]
    assert any(not torch.equal(first[k], v) for k, v in checkpoint["state_dict"].items())
    assert checkpoint["global_step"] == 3  # manual optimisation: one update per batch
    with Path(third["metrics"]).open() as handle:
        rows = list(csv.DictReader(handle))
    steps = [row for row in rows if row.get("train_reward")]
    assert len(steps) == 3
    assert float(steps[0]["train_kl"]) == 0.0  # the policy starts as the reference
    for row in steps:
        assert 0.0 <= float(row["train_correct"]) <= float(row["train_format_ok"]) + 1e-9
        assert 0.0 <= float(row["train_reward"]) <= 1.5
    Path(start).unlink()
    LitVLM.load_from_checkpoint(third["last checkpoint"], map_location="cpu")


def test_stage_3_without_a_checkpoint_to_start_from_is_one_clear_error(
    phantoms: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(3, phantoms, tmp_path) != 0
    assert "stage 3 starts from stage 2: give model.init_weights" in capsys.readouterr().err
