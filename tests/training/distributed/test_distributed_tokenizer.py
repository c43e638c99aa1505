"""``orstream train tokenizer`` on two gloo CPU processes is the one-process run of the same
global batch (``ddp_comparison.assert_same_run``): the same losses step by step, the same
metrics over every held-out frame, the same weights."""

from pathlib import Path

from ddp_comparison import assert_same_run
from test_lit_tokenizer import CONFIG, SEGMENTER
from test_tokenizer_datamodule import make_phantom


def test_the_tokenizer_trains_on_two_processes(tmp_path: Path) -> None:
    root = make_phantom(tmp_path / "phantom")
    overrides = [
        # No code restarts and no flips: their draws come from each rank's own seed, so they
        # would differ from one process's (test_distributed_quantizer checks the restarts).
        "model.model_kwargs={input_size: [64, 64], channels: [8, 16], encoder_blocks: [0, 1],"
        " decoder_blocks: [0, 1], groups: 2, codes: 16, code_dim: 4, head_width: 16,"
        " restart_after: 0}",
        f"model.teacher={SEGMENTER}",
        "model.stage=2",  # every loss: pixels, perceptual, VQ, visual and text alignment
        f"data.root={root}",
        "data.train_videos=[1, 2]",
        "data.val_videos=[3]",
        "data.frames_per_clip=3",  # 12 frames: 3 global batches of 4 an epoch
        "data.val_frames_per_clip=3",
        "data.val_batch_size=2",
        "data.augment=false",
        "data.cache_dir=null",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
    ]
    # The decoder's last 3x3 conv before the group norm of one channel per group: the norm
    # takes away whatever its bias adds.
    normed_away = {"model.decoder.3.bias": slice(None)}
    assert_same_run("tokenizer", CONFIG, overrides, 2, tmp_path, normed_away)
