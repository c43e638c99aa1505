"""Lightning training of the workflow recognizer, thin over the registry-built ``nn.Module``.

Losses, summed over TCN stages as in MS-TCN / TeCNO: cross-entropy on the step class of every
frame (out of patient is class 0 and is learnt like any step), plus BCE-with-logits on the
19-class instrument multi-hot of the frames inside the patient only (out-of-patient frames have
no instrument truth, and the PitVis instrument metric leaves them out). Only outputs whose whole
history is in the clip count (the data module's masks), so training matches streaming inference.

Most instruments are visible in a few percent of the frames, so an unweighted BCE learns to say
"absent" everywhere. With ``instrument_pos_weight_cap`` set, each class's positives are weighted
by sqrt(negatives / positives) of the training labels (the data module's
``instrument_frequencies``), between 1 and the cap. The square root rather than the full ratio:
with weight w the 0.5 decision threshold of the slot decoder moves to a probability of
1 / (1 + w), and the full ratio would put it at the class's base rate, far below where F1 peaks.
The weights are computed when fitting starts and recorded in the checkpoint (``orstream``
record); the state dict stays the model's weights only.

Validation is online: each held-out video runs through the model in chunks, with the temporal
state carried between chunks exactly as the edge carries it frame by frame; the step
probabilities go through the causal :func:`orstream.step_smoothing.smooth_step_sequence`, and
the PitVis metrics are computed per video and averaged over videos: ``val_step_score`` (the
checkpoint monitor), ``val_step_f1``, ``val_step_edit`` and ``val_instrument_f1``. Under DDP each
rank validates its share of the videos and the per-video metrics of all ranks are gathered
(:mod:`orstream.training.distributed.metrics`), so every rank averages over every held-out video
once, as one process would.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from orstream.labels import NUM_INSTRUMENT_CLASSES, STEP_CODES
from orstream.pitvis.instrument_slots import instrument_slots
from orstream.pitvis.metrics import average_videos, video_instrument_metrics, video_step_metrics
from orstream.step_smoothing import smooth_step_sequence
from orstream.training.distributed.metrics import gather_unique
from orstream.training.models.workflow import WorkflowRecognizer
from orstream.training.modules.recorded_module import RecordedModule
from orstream.training.registry import create_model

METRIC_NAMES = ("val_step_score", "val_step_f1", "val_step_edit", "val_instrument_f1")


def instrument_pos_weights(frequencies: np.ndarray, cap: float) -> Tensor:
    """Per-class BCE positive weights sqrt(negatives / positives), clipped to [1, cap] (a class
    never seen positive gets the cap)."""
    positive = np.asarray(frequencies, dtype=np.float64)
    with np.errstate(divide="ignore"):
        ratio = np.where(positive > 0, (1.0 - positive) / positive, np.inf)
    return torch.from_numpy(np.clip(np.sqrt(ratio), 1.0, cap)).float()


class LitWorkflow(RecordedModule):
    """Trains a registered workflow model.

    Args:
        model_name: registry name (``orstream.training.registry``).
        model_kwargs: keyword arguments of the model factory.
        lr: AdamW learning rate (cosine-annealed to ``lr * 0.01`` over the run).
        weight_decay: AdamW weight decay.
        instrument_loss_weight: weight of the instrument BCE against the step cross-entropy.
        instrument_pos_weight_cap: largest positive weight of an instrument class in the BCE;
            ``None`` leaves the BCE unweighted.
        min_dwell: samples a new step must lead before the online smoother switches to it.
        eval_chunk: samples per forward pass during validation (the state joins the chunks).
    """

    def __init__(
        self,
        model_name: str = "pitvis_workflow",
        model_kwargs: dict[str, Any] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        instrument_loss_weight: float = 1.0,
        instrument_pos_weight_cap: float | None = None,
        min_dwell: int = 3,
        eval_chunk: int = 256,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        model = create_model(model_name, **(model_kwargs or {}))
        if not isinstance(model, WorkflowRecognizer):
            raise TypeError(f"{model_name!r} is not a workflow recognizer")
        self.model = model
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(model.mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(model.std).view(3, 1, 1), persistent=False)
        if instrument_pos_weight_cap is not None and instrument_pos_weight_cap < 1.0:
            raise ValueError(
                f"instrument_pos_weight_cap must be at least 1, got {instrument_pos_weight_cap}"
            )
        self.instrument_pos_weight: Tensor
        self.register_buffer(
            "instrument_pos_weight", torch.ones(NUM_INSTRUMENT_CLASSES), persistent=False
        )
        self.example_input_array = torch.zeros(1, 2, 3, *model.input_size)
        self.val_metrics: dict[str, float] = {}
        self._video_metrics: dict[int, list[float]] = {}  # video number -> METRIC_NAMES

    @property
    def input_size(self) -> tuple[int, int]:
        return self.model.input_size

    @property
    def sample_fps(self) -> float:
        return self.model.sample_fps

    @property
    def receptive_field(self) -> int:
        return self.model.receptive_field

    def forward(self, frames: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """The model's forward on normalised frames (see ``WorkflowRecognizer.forward``)."""
        return self.model(frames, *state)

    def normalise(self, frames: Tensor) -> Tensor:
        """[B, T, 3, H, W] in 0..1 -> the model's normalised input."""
        return (frames - self.mean) / self.std

    def _loss(
        self, stages: list[tuple[Tensor, Tensor]], batch: dict[str, Any]
    ) -> tuple[Tensor, Tensor]:
        step_mask, instrument_mask = batch["step_mask"], batch["instrument_mask"]
        step_loss = torch.zeros((), device=self.device)
        instrument_loss = torch.zeros((), device=self.device)
        for step_logits, instrument_logits in stages:
            if step_mask.any():
                step_loss = step_loss + F.cross_entropy(
                    step_logits[step_mask], batch["step"][step_mask]
                )
            if instrument_mask.any():
                instrument_loss = instrument_loss + F.binary_cross_entropy_with_logits(
                    instrument_logits[instrument_mask],
                    batch["instruments"][instrument_mask],
                    pos_weight=self.instrument_pos_weight,
                )
        return step_loss, instrument_loss

    def on_fit_start(self) -> None:
        cap = self.hparams["instrument_pos_weight_cap"]
        if cap is None:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        frequencies = getattr(datamodule, "instrument_frequencies", None)
        if not callable(frequencies):
            raise TypeError(
                "instrument_pos_weight_cap needs a data module with instrument_frequencies"
            )
        self.instrument_pos_weight.copy_(instrument_pos_weights(frequencies(), cap))

    def training_step(self, batch: dict[str, Any], batch_index: int) -> Tensor:
        stages, _ = self.model.forward_stages(self.normalise(batch["frames"]))
        step_loss, instrument_loss = self._loss(stages, batch)
        loss = step_loss + self.hparams["instrument_loss_weight"] * instrument_loss
        size = batch["frames"].shape[0]
        # sync_dist: under DDP the logged losses are those of the global batch, not rank 0's part.
        self.log(
            "train_loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=size,
            sync_dist=True,
        )
        self.log("train_step_loss", step_loss, on_epoch=True, batch_size=size, sync_dist=True)
        self.log(
            "train_instrument_loss", instrument_loss, on_epoch=True, batch_size=size, sync_dist=True
        )
        return loss

    def online_stages(self, frames: Tensor) -> list[tuple[Tensor, Tensor]]:
        """All stages' logits over a whole video, run chunk by chunk through the state."""
        state: tuple[Tensor, ...] = ()
        chunks: list[list[tuple[Tensor, Tensor]]] = []
        for chunk in frames.split(self.hparams["eval_chunk"], dim=1):
            stages, state = self.model.forward_stages(self.normalise(chunk), *state)
            chunks.append(stages)
        return [
            (torch.cat([c[i][0] for c in chunks], 1), torch.cat([c[i][1] for c in chunks], 1))
            for i in range(len(chunks[0]))
        ]

    def validation_step(self, batch: dict[str, Any], batch_index: int) -> None:
        stages = self.online_stages(batch["frames"])
        step_loss, instrument_loss = self._loss(stages, batch)
        loss = step_loss + self.hparams["instrument_loss_weight"] * instrument_loss
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=1, sync_dist=True)
        step_logits, instrument_logits = stages[-1]
        step_probs = step_logits[0].softmax(-1).float().cpu().numpy()
        classes = smooth_step_sequence(step_probs, min_dwell=self.hparams["min_dwell"])
        step_codes = np.asarray(STEP_CODES)[classes]
        steps = video_step_metrics(batch["step_code"][0].cpu().numpy(), step_codes)
        instruments = video_instrument_metrics(
            batch["instrument_code"][0].cpu().numpy(),
            instrument_slots(step_codes, instrument_logits[0].sigmoid().float().cpu().numpy()),
        )
        video = int(batch["video"][0])
        self._video_metrics[video] = [steps.score, steps.f1, steps.edit, instruments.f1]

    def on_validation_epoch_end(self) -> None:
        local, self._video_metrics = self._video_metrics, {}
        if self.trainer.sanity_checking:
            return  # a few batches of the untrained model: not the checkpoint's metrics
        _, rows = gather_unique(
            torch.tensor(list(local), dtype=torch.int64),
            torch.tensor(list(local.values()), dtype=torch.float64).view(-1, len(METRIC_NAMES)),
            self.device,
        )
        metrics = {
            name: average_videos(rows[:, column].tolist())
            for column, name in enumerate(METRIC_NAMES)
        }
        self.val_metrics = metrics
        for name, value in metrics.items():
            # NaN (no scorable frame in any val video) must not win a "max" checkpoint monitor.
            logged = -1.0 if math.isnan(value) else value
            # Every rank holds the same value: sync_dist's mean leaves it as it is.
            self.log(name, logged, prog_bar=name == "val_step_score", sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"]
        )
        epochs = self.trainer.max_epochs if self.trainer.max_epochs else 0
        if epochs < 1:
            return optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=epochs, eta_min=self.hparams["lr"] * 0.01
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"instrument_pos_weight": [round(float(w), 4) for w in self.instrument_pos_weight]}
