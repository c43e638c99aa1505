"""The Lightning module: masked losses, online validation metrics, checkpoint contents."""

import itertools
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from test_pitvis_datamodule import FPS, write_case

from orstream.labels import STEP_CODES
from orstream.pitvis.instrument_slots import instrument_slots
from orstream.pitvis.metrics import video_instrument_metrics, video_step_metrics
from orstream.step_smoothing import StepSmoother
from orstream.training.data.pitvis_datamodule import PitVisDataModule
from orstream.training.modules.lit_workflow import LitWorkflow, instrument_pos_weights
from orstream.training.registry import create_model

SIZE = (64, 64)
TINY_MODEL = {"input_size": list(SIZE), "channels": 16, "num_layers": 3, "dropout": 0.0}

COLOURS = np.array(
    [[30, 30, 30], [220, 80, 80], [80, 220, 80], [80, 80, 220], [220, 220, 80]], dtype=np.uint8
)


def step_labels(seconds: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Out of patient, then steps 1..4 in blocks whose lengths vary with ``shift``."""
    step = np.full(seconds, -1, dtype=np.int64)
    bounds = np.linspace(1 + shift % 2, seconds, 5).astype(int)
    for code, (start, stop) in enumerate(itertools.pairwise(bounds), start=1):
        step[start:stop] = code
    instruments = np.where(step[:, None] > 0, [[0, -2]], [[-1, -1]]).astype(np.int64)
    instruments[step == 2] = [5, -2]
    instruments[step == 4] = [7, 16]
    return step, instruments


def write_learnable_dataset(root: Path, videos: list[int], seconds: int = 12) -> Path:
    for video in videos:
        labels = step_labels(seconds, video)

        def image(index: int, height: int, width: int, step: np.ndarray = labels[0]) -> np.ndarray:
            code = step[min(index // FPS, len(step) - 1)]
            picture = np.empty((height, width, 3), dtype=np.uint8)
            colour = COLOURS[max(code, 0)]
            picture[:] = colour
            picture[height // 4 : height // 2, width // 4 : width // 2] = 255 - colour
            return picture

        write_case(root, video, seconds, image=image, labels=labels)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_learnable_dataset(tmp_path_factory.mktemp("pitvis"), [1, 2, 3, 4])


def data_module(root: Path, model: LitWorkflow, clip_length: int | None = 8) -> PitVisDataModule:
    return PitVisDataModule(
        str(root),
        val_videos=[3, 4],
        input_size=model.input_size,
        sample_fps=model.sample_fps,
        receptive_field=model.receptive_field,
        clips_per_video=4,
        clip_length=clip_length,
        batch_size=2,
        disk_cache=False,
    )


def test_instrument_slots_take_the_two_most_probable_instruments() -> None:
    probs = np.zeros((5, 19))
    probs[0, [0]] = 0.9  # nothing above threshold among instruments -> "none visible"
    probs[1, [3, 7, 12]] = [0.6, 0.95, 0.7]
    probs[2, [18]] = 0.51
    probs[3, [0, 4]] = [0.8, 0.49]
    probs[4, [2, 5]] = [0.9, 0.9]  # predicted out of patient: no instrument slots
    steps = np.array([1, 4, 9, 14, -1])
    expected = [[0, -2], [7, 12], [18, -2], [0, -2], [-1, -2]]
    assert instrument_slots(steps, probs).tolist() == expected


def test_masked_outputs_do_not_count_in_the_loss() -> None:
    torch.manual_seed(0)
    module = LitWorkflow(model_kwargs=TINY_MODEL)
    stages = [(torch.randn(1, 5, 15), torch.randn(1, 5, 19)) for _ in range(2)]
    batch = {
        "step": torch.tensor([[1, 2, 3, 4, 5]]),
        "instruments": torch.rand(1, 5, 19).round(),
        "step_mask": torch.tensor([[False, False, True, True, True]]),
        "instrument_mask": torch.tensor([[False, True, True, False, True]]),
    }
    losses = module._loss(stages, batch)
    changed = dict(batch)
    changed["step"] = torch.tensor([[9, 9, 3, 4, 5]])
    changed["instruments"] = batch["instruments"].clone()
    changed["instruments"][0, [0, 3]] = 1 - changed["instruments"][0, [0, 3]]
    assert torch.equal(torch.stack(module._loss(stages, changed)), torch.stack(losses))
    changed["step"] = torch.tensor([[1, 2, 3, 4, 6]])
    assert not torch.equal(module._loss(stages, changed)[0], losses[0])


def test_instrument_pos_weights_favour_rare_classes_within_the_cap() -> None:
    weights = instrument_pos_weights(np.array([0.5, 0.04, 0.0, 0.9, 0.001]), cap=10.0)
    assert weights.tolist() == pytest.approx([1.0, 24**0.5, 10.0, 1.0, 10.0])


def test_instrument_bce_weights_the_positives() -> None:
    module = LitWorkflow(model_kwargs=TINY_MODEL, instrument_pos_weight_cap=10.0)
    module.instrument_pos_weight.copy_(torch.arange(1, 20, dtype=torch.float32))
    targets = torch.zeros(1, 2, 19)
    targets[0, 0, 3] = targets[0, 1, 0] = 1.0
    stage = (torch.zeros(1, 2, 15), torch.zeros(1, 2, 19))  # every probability 0.5
    batch = {
        "step": torch.zeros(1, 2, dtype=torch.int64),
        "instruments": targets,
        "step_mask": torch.ones(1, 2, dtype=torch.bool),
        "instrument_mask": torch.ones(1, 2, dtype=torch.bool),
    }
    _, instrument_loss = module._loss([stage], batch)
    # positives cost their class weight x ln 2, negatives ln 2; the mean over 2 x 19 terms
    expected = (4 + 1 + 36) * np.log(2) / 38
    assert float(instrument_loss) == pytest.approx(expected, rel=1e-5)


def test_fitting_weights_instruments_by_the_training_labels(dataset: Path, tmp_path: Path) -> None:
    module = LitWorkflow(model_kwargs=TINY_MODEL, instrument_pos_weight_cap=3.0)
    data = data_module(dataset, module, clip_length=None)
    trainer = L.Trainer(
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(module, datamodule=data)
    expected = instrument_pos_weights(data.instrument_frequencies(), 3.0)
    assert torch.equal(module.instrument_pos_weight, expected)
    # "none visible" is the most common label, instrument 5 rarer, instrument 1 never shown
    assert 1.0 < expected[0] < expected[5] < expected[1] == 3.0
    trainer.save_checkpoint(tmp_path / "weighted.ckpt")
    saved = torch.load(tmp_path / "weighted.ckpt", weights_only=False)
    assert saved["orstream"]["instrument_pos_weight"] == pytest.approx(expected.tolist(), abs=1e-4)
    assert "instrument_pos_weight" not in saved["state_dict"]


def test_validation_scores_equal_frame_by_frame_streaming(dataset: Path) -> None:
    torch.manual_seed(1)
    module = LitWorkflow(model_kwargs=TINY_MODEL, eval_chunk=5)
    data = data_module(dataset, module)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.validate(module, datamodule=data)
    model = module.model.eval()
    expected: dict[str, list[float]] = {"score": [], "f1": [], "edit": [], "instruments": []}
    for video in data.val_data:
        smoother = StepSmoother(15, min_dwell=module.hparams["min_dwell"])
        state = model.initial_state(1)
        codes, slots = [], []
        with torch.no_grad():
            for image in video.frames:
                frame = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0
                frame = (frame - torch.tensor(model.mean).view(3, 1, 1)) / torch.tensor(
                    model.std
                ).view(3, 1, 1)
                step_logits, instrument_logits, *state = model.streaming_step(frame, *state)
                codes.append(STEP_CODES[smoother.update(step_logits[0].softmax(-1).numpy())])
                probs = instrument_logits.sigmoid().numpy()
                slots.append(instrument_slots(np.array(codes[-1:]), probs)[0])
        steps = video_step_metrics(video.step_code, np.array(codes))
        expected["score"].append(steps.score)
        expected["f1"].append(steps.f1)
        expected["edit"].append(steps.edit)
        expected["instruments"].append(
            video_instrument_metrics(video.instrument_code, np.array(slots)).f1
        )
    metrics = module.val_metrics
    assert metrics["val_step_score"] == pytest.approx(np.mean(expected["score"]))
    assert metrics["val_step_f1"] == pytest.approx(np.mean(expected["f1"]))
    assert metrics["val_step_edit"] == pytest.approx(np.mean(expected["edit"]))
    assert metrics["val_instrument_f1"] == pytest.approx(np.mean(expected["instruments"]))
    assert trainer.callback_metrics["val_step_score"] == pytest.approx(metrics["val_step_score"])


def test_training_learns_and_the_checkpoint_rebuilds_without_lightning(
    dataset: Path, tmp_path: Path
) -> None:
    L.seed_everything(2)
    # Steps here last 2-3 s, shorter than the default smoother dwell is meant for.
    module = LitWorkflow(model_kwargs=TINY_MODEL, lr=3e-3, min_dwell=1)
    data = data_module(dataset, module, clip_length=None)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_step_score", mode="max")
    trainer = L.Trainer(
        max_epochs=12,
        logger=False,
        callbacks=[checkpoint],
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    trainer.fit(module, datamodule=data)
    assert trainer.callback_metrics["train_loss_epoch"] < 2.5  # untrained: ln(15) + 19 ln(2)
    assert module.val_metrics["val_step_score"] > 0.8

    trainer.save_checkpoint(tmp_path / "last.ckpt")
    best = torch.load(checkpoint.best_model_path, weights_only=False)
    assert best["orstream"]["metrics"]["val_step_score"] == pytest.approx(
        float(checkpoint.best_model_score)
    )
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert saved["hyper_parameters"]["model_name"] == "pitvis_workflow"
    assert saved["hyper_parameters"]["model_kwargs"] == TINY_MODEL
    assert all(key.startswith("model.") for key in saved["state_dict"])
    assert saved["orstream"]["metrics"] == module.val_metrics
    assert set(saved["orstream"]["metrics"]) == {
        "val_step_score",
        "val_step_f1",
        "val_step_edit",
        "val_instrument_f1",
    }
    described = saved["orstream"]["data"]
    assert described["root"] == str(dataset.resolve())
    assert described["train_videos"] == [1, 2] and described["val_videos"] == [3, 4]

    rebuilt = create_model(
        saved["hyper_parameters"]["model_name"], **saved["hyper_parameters"]["model_kwargs"]
    )
    rebuilt.load_state_dict(
        {key.removeprefix("model."): value for key, value in saved["state_dict"].items()}
    )
    frames = torch.randn(1, 6, 3, *SIZE)
    with torch.no_grad():
        for ours, theirs in zip(rebuilt.eval()(frames), module.model.eval()(frames), strict=True):
            torch.testing.assert_close(ours, theirs)
