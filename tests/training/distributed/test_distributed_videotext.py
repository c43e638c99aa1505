"""``orstream train videotext`` on two gloo CPU processes is the one-process run of the same
global batch: each rank scores its clips against the whole global batch, so the contrastive
losses, the metrics and the final weights match (``ddp_comparison.assert_same_run``)."""

from pathlib import Path

from ddp_comparison import assert_same_run
from project_paths import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "training" / "configs" / "videotext_phantom.yaml"


def test_the_video_text_model_trains_on_two_processes(tmp_path: Path) -> None:
    from orstream.streams.phantom.writer import PhantomSpec, write_dataset

    root = tmp_path / "phantom"
    write_dataset(PhantomSpec(3, 30, seed=61, width=160, height=96, fps=4.0), root)
    overrides = [
        # Group norm and no dropout: a step depends on its global batch alone, not on how the
        # batch is split (batch norm's statistics would be per process).
        "model.model_kwargs={backbone: test_efficientnet_gn, input_size: [48, 80], width: 32,"
        " layers: 1, max_frames: 4, dropout: 0.0}",
        f"data.root={root}",
        "data.train_videos=1-2",
        "data.val_videos=3",
        "data.silent_videos=2",
        "data.cache_dir=null",
        "data.segment_window_s=null",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
    ]
    # Attention is blind to the keys' bias (softmax ignores what adds to every score alike).
    key_bias = {"model.temporal.layers.0.self_attn.in_proj_bias": slice(32, 64)}
    assert_same_run("videotext", CONFIG, overrides, 2, tmp_path, key_bias)
