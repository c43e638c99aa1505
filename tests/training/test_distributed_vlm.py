"""``orstream train vlm`` on two gloo CPU processes is the one-process run of the same global
batches (``ddp_comparison.assert_same_run``): batches of one source each, the ranks' shares of
them, the held-out questions answered by generation split between the ranks, and a tokenizer
and visual-token cache that the first run learns and writes from one process only."""

from pathlib import Path

import pytest
from ddp_comparison import assert_same_run
from test_vlm_training import TINY_MODEL, VLM_CONFIG

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
