"""Lightning training of the video-text model, thin over the registry-built ``nn.Module``.

Each batch mixes narrated clips (fine), step runs and whole cases (coarse) and silent clips
(:mod:`orstream.training.data.videotext_datamodule`). The loss is the sum of:

- fine: InfoNCE both ways between narrated clips and their narrations;
- coarse (weighted ``coarse_weight``): the same between segments and their step descriptions or
  titles;
- retrieval (weighted ``retrieval_weight``): each silent clip against the whole bank of
  training narrations, its ``retrieved_k`` nearest (by the current embeddings) its positives;
- prompts (weighted ``prompt_weight``): each segment paired with a step description against
  every step's description at once (a bank of the 15 texts), not only those in its batch: the
  coarse pairing, with all the step texts as negatives, as zero-shot naming compares them.

Equal texts in one batch are positives of each other. Validation embeds every narrated clip of
the held-out cases and its narration and logs text->video and video->text recall at 1 and 5
(``val_t2v_r1``, ``val_t2v_r5`` (the checkpoint monitor), ``val_v2t_r1``, ``val_v2t_r5``), and
``val_zeroshot_step_acc``: how often the step description nearest to a clip names the step of
most of its seconds (no step label is ever trained on).

Under DDP each rank gathers the global batch's clip and text embeddings
(:mod:`orstream.training.distributed.gather`) and computes the global batch's loss, so a clip's
negatives are those one process would score it against; validation gathers every rank's clips
(:mod:`orstream.training.distributed.metrics`), each held-out clip once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from orstream.labels import STEP_CODES
from orstream.training.distributed.gather import gather_global_batch
from orstream.training.distributed.metrics import gather_unique
from orstream.training.models.videotext import (
    VideoTextModel,
    multi_positive_infonce,
    retrieved_positives,
)
from orstream.training.modules.recorded_module import RecordedModule
from orstream.training.registry import create_model

Batch = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def both_ways(logits: Tensor, ids: Tensor) -> Tensor:
    """InfoNCE both ways over [B, B] logits, texts with equal ids positives of each other."""
    positives = ids[:, None] == ids[None, :]
    return (
        multi_positive_infonce(logits, positives) + multi_positive_infonce(logits.T, positives)
    ) / 2


def recall_at(similarity: Tensor, k: int) -> float:
    """Fraction of rows of a [N, N] similarity whose diagonal is among their ``k`` largest."""
    top = similarity.topk(min(k, similarity.shape[1]), dim=1).indices
    return float((top == torch.arange(len(similarity))[:, None]).any(dim=1).float().mean())


class LitVideoText(RecordedModule):
    """Trains a registered video-text model.

    Args:
        model_name: registry name (``ophclip_small``).
        model_kwargs: keyword arguments of the model factory.
        lr: peak learning rate.
        weight_decay: AdamW's.
        coarse_weight: weight of the segment-level loss.
        retrieval_weight: weight of the silent clips' loss.
        retrieved_k: narrations each silent clip takes as positives.
        prompt_weight: weight of the segments' loss against every step description.
    """

    def __init__(
        self,
        model_name: str = "ophclip_small",
        model_kwargs: dict[str, Any] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        coarse_weight: float = 0.5,
        retrieval_weight: float = 0.5,
        retrieved_k: int = 2,
        prompt_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        model = create_model(model_name, **(model_kwargs or {}))
        assert isinstance(model, VideoTextModel)
        self.model = model
        self.example_input_array = torch.zeros(2, 4, 3, *model.input_size)
        self.narration_bank = torch.zeros(0, 384)
        self.step_prompts = torch.zeros(0, 384)
        self.prompt_rows = torch.zeros(0, dtype=torch.long)
        """Row of ``step_prompts`` by text id (-1: not a step description)."""
        self._val: list[tuple[Tensor, Tensor]] = []  # (clip indices, [video, text, step] rows)
        self.val_metrics: dict[str, float] = {}

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the frames the model takes (the data module is linked to it)."""
        return self.model.input_size

    def forward(self, frames: Tensor) -> Tensor:
        return self.model.embed_video(frames)

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        for name in ("narration_bank", "step_prompts"):
            given = getattr(datamodule, name, None)
            if given is not None:
                setattr(self, name, given.to(self.device))
        text_ids: dict[int, int] = getattr(datamodule, "step_text_ids", {})
        rows = torch.full((max(text_ids, default=-1) + 1,), -1, dtype=torch.long)
        for text_id, row in text_ids.items():
            rows[text_id] = row
        self.prompt_rows = rows.to(self.device)

    def training_step(self, batch: Batch, batch_index: int) -> Tensor:
        frames, sentences, ids, is_clip, silent, *_ = batch
        video = gather_global_batch(self.model.embed_video(frames))
        text = gather_global_batch(self.model.embed_text(sentences))
        ids, is_clip, silent = (gather_global_batch(t) for t in (ids, is_clip, silent))
        logits = self.model.logits(video, text)
        loss = logits.new_zeros(())
        fine = is_clip & ~silent
        coarse = ~is_clip
        for rows, weight, name in (
            (fine, 1.0, "fine"),
            (coarse, self.hparams["coarse_weight"], "coarse"),
        ):
            if int(rows.sum()) > 1:
                part = both_ways(logits[rows][:, rows], ids[rows])
                self.log(f"train_{name}", part)
                loss = loss + weight * part
        quiet = is_clip & silent
        if bool(quiet.any()) and len(self.narration_bank):
            bank = self.model.embed_text(self.narration_bank)
            positives = retrieved_positives(
                video[quiet].detach(), bank.detach(), self.hparams["retrieved_k"]
            )
            part = multi_positive_infonce(self.model.logits(video[quiet], bank), positives)
            self.log("train_retrieval", part)
            loss = loss + self.hparams["retrieval_weight"] * part
        prompt_weight = self.hparams["prompt_weight"]
        if prompt_weight > 0 and len(self.prompt_rows) and len(self.step_prompts):
            lookup = self.prompt_rows
            rows = torch.full_like(ids, -1)
            inside = coarse & (ids >= 0) & (ids < len(lookup))
            rows[inside] = lookup[ids[inside]]
            described = rows >= 0
            if bool(described.any()):
                prompts = self.model.embed_text(self.step_prompts)
                logits = self.model.logits(video[described], prompts)
                part = torch.nn.functional.cross_entropy(logits, rows[described])
                self.log("train_prompts", part)
                loss = loss + prompt_weight * part
        # Every rank computed the global batch's loss: no sync needed.
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_index: int) -> None:
        frames, sentences, *_, steps, indices = batch
        video, text = self.model.embed_video(frames), self.model.embed_text(sentences)
        self._val.append((indices.cpu(), torch.cat([video, text, steps[:, None].float()], 1).cpu()))

    def on_validation_epoch_end(self) -> None:
        _, rows = gather_unique(
            torch.cat([i for i, _ in self._val]), torch.cat([r for _, r in self._val]), self.device
        )
        self._val.clear()
        rows = rows.to(self.device)
        width = (rows.shape[1] - 1) // 2
        video, text, steps = rows[:, :width], rows[:, width:-1], rows[:, -1].long()
        similarity = video @ text.T
        metrics = {
            "val_t2v_r1": recall_at(similarity.T, 1),
            "val_t2v_r5": recall_at(similarity.T, 5),
            "val_v2t_r1": recall_at(similarity, 1),
            "val_v2t_r5": recall_at(similarity, 5),
        }
        if len(self.step_prompts):
            codes = torch.tensor(STEP_CODES, device=video.device)
            nearest = (video @ self.model.embed_text(self.step_prompts).T).argmax(dim=1)
            metrics["val_zeroshot_step_acc"] = float((codes[nearest] == steps).float().mean())
        for name, value in metrics.items():
            # Every rank holds the same value: sync_dist's mean leaves it as it is.
            self.log(name, value, prog_bar=name == "val_t2v_r5", sync_dist=True)
        self.val_metrics = metrics

    def configure_optimizers(self) -> Any:
        # A frozen frame encoder (PackagedFrameEncoder) takes no step.
        return self.adamw_one_cycle(p for p in self.parameters() if p.requires_grad)
