"""``orstream train vlm`` on two gloo CPU processes is the one-process run of the same global
batches (``ddp_comparison.assert_same_run``): batches of one source each, the ranks' shares of
them, the held-out questions answered by generation split between the ranks, and a tokenizer
and visual-token cache that the first run learns and writes from one process only. Stage 3
(GRPO) samples its own answers on each rank, so it is checked for ranks kept in step instead."""

from pathlib import Path

import pytest
import torch
from ddp_comparison import assert_same_run
from test_distributed_training import train_on_two_processes
from test_vlm_training import TINY_MODEL, VLM_CONFIG, printed, train

from orstream.slides.phantom.dataset_writer import write_slide_dataset
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from tests.project_paths import PROJECT_ROOT


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("vlm_ddp")
    write_dataset(PhantomSpec(3, 16, seed=61, width=160, height=96, fps=2.0), root / "surgical")
    write_slide_dataset(root / "slides", 3, seed=63, size=1024)
    return root / "surgical", root / "slides"


def test_the_vision_language_model_trains_on_two_processes(
    phantoms: tuple[Path, Path], tmp_path: Path
) -> None:
    surgical, slides = phantoms
    overrides = [
        TINY_MODEL,
        "model.stage=2",
        "model.val_generate=5",  # odd: the ranks answer 3 and 2
        "model.max_new_tokens=6",
        f"data.surgical_root={surgical}",
        f"data.slide_root={slides}",
        "data.val_videos=[3]",
        "data.val_slides=[slide_003]",
        f"data.tokenizer={tmp_path / 'tokenizer.json'}",
        f"data.frame_package={PROJECT_ROOT / 'edge' / 'packages' / 'imis_segmenter'}",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
    ]
    assert_same_run("vlm", VLM_CONFIG, overrides, 8, tmp_path)


def test_stage_3_keeps_the_ranks_in_step_while_each_samples_its_own_answers(
    phantoms: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train(1, phantoms, tmp_path) == 0
    start = printed(capsys)["last checkpoint"]
    surgical, slides = phantoms
    overrides = [
        TINY_MODEL,
        "model.stage=3",
        f"model.init_weights={start}",
        "model.group_size=3",
        "model.policy_updates=2",
        "model.val_generate=5",
        "model.max_new_tokens=6",
        f"data.surgical_root={surgical}",
        f"data.slide_root={slides}",
        "data.val_videos=[3]",
        "data.val_slides=[slide_003]",
        f"data.tokenizer={tmp_path / 'tokenizer.json'}",
        f"data.frame_package={PROJECT_ROOT / 'edge' / 'packages' / 'imis_segmenter'}",
        "data.batch_size=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "trainer.log_every_n_steps=1",
    ]
    ranks, version, _ = train_on_two_processes("vlm", VLM_CONFIG, overrides, tmp_path / "two")
    shares = [set(r["epochs"][0][: 3 * 2]) for r in ranks]
    assert not shares[0] & shares[1]  # each rank its own questions
    assert ranks[0]["val_metrics"] == ranks[1]["val_metrics"]
    # Different answers sampled, yet the same weights: DDP averaged every update's gradients.
    assert ranks[0]["weight_sums"] == ranks[1]["weight_sums"]
    first = torch.load(start, weights_only=False)["state_dict"]
    assert ranks[0]["weight_sums"] != [float(v.double().sum()) for v in first.values()]
    last = torch.load(version / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 3 * 2  # two policy updates per batch
