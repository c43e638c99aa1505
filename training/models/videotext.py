"""Video-text model in the OphCLIP style: clips and sentences in one embedding space.

Video tower: a per-frame timm encoder (trained with the rest, or the interactive segmenter
package's trained ViT image encoder, frozen: :class:`PackagedFrameEncoder`), a linear map to
``width``, and a temporal transformer
over the frames of a clip (learned positions; ``causal=True`` masks the future, so the
embedding at frame t depends on frames up to t only, as a live feed needs), pooled to one
L2-normalised clip embedding (the last frame's state when causal, the mean otherwise). Text
tower: sentence embeddings of the frozen MiniLM
(:mod:`orstream.training.models.text_encoder`, 384-d), computed once per sentence outside the
model, through a trained projection to the same space. A learned temperature scales the cosine
similarities, as CLIP's logit scale does.

Training is hierarchical, as OphCLIP's is: clips against their narrations (fine) and longer
segments against their step descriptions or the video's title (coarse), each with the symmetric
InfoNCE of :func:`symmetric_infonce`. Clips of silent videos (no narration) take part through
retrieval: :func:`retrieved_positives` finds, in a bank of narration embeddings, the nearest
ones to a silent clip, which then count as extra positives (:func:`multi_positive_infonce`).
"""

from __future__ import annotations

import math
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orstream.training.models.segmenter.from_package import load_image_encoder
from orstream.training.models.workflow import IMAGENET_MEAN, IMAGENET_STD
from orstream.training.registry import register_model

TEXT_WIDTH = 384
"""Width of MiniLM's sentence embeddings."""


class PackagedFrameEncoder(nn.Module):
    """An interactive segmenter package's image encoder as a frozen per-frame encoder.

    OphCLIP's video tower starts from a pretrained image encoder; none can be downloaded here,
    and one trained from scratch by the contrastive loss alone learns little of what tells the
    steps apart (its clip embeddings probed at a step score of 0.29 on held-out phantom cases).
    The segmenter's encoder was trained on phantom frames to find anatomy and instruments, which
    is what the steps differ by: a linear probe on its pooled embedding of single frames reached
    0.69-0.92 frame accuracy on the same held-out cases. It takes the video-text model's input
    (ImageNet-normalised frames at the package's input size) and re-normalises it to the
    package's own mean and std inside the graph; the output is the embedding map's mean over
    positions.

    Args:
        package: the interactive segmenter package folder.
    """

    def __init__(self, package: Path) -> None:
        super().__init__()
        packaged = load_image_encoder(package)
        self.encoder = packaged.encoder.requires_grad_(False)
        self.input_size = packaged.input_size
        mean, std = torch.tensor(packaged.mean), torch.tensor(packaged.std)
        scale = torch.tensor(IMAGENET_STD) / std
        shift = (torch.tensor(IMAGENET_MEAN) - mean) / std
        self.scale: Tensor
        self.shift: Tensor
        self.register_buffer("scale", scale.view(1, 3, 1, 1))
        self.register_buffer("shift", shift.view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> PackagedFrameEncoder:
        # Frozen: stays in eval mode whatever the owner does.
        super().train(False)
        return self

    def forward(self, frames: Tensor) -> Tensor:
        """ImageNet-normalised frames [N, 3, H, W] -> pooled embeddings [N, C]."""
        embedding: Tensor = self.encoder(frames * self.scale + self.shift)
        return embedding.mean(dim=(2, 3))


class VideoTextModel(nn.Module):
    """Clip and sentence embeddings in one space (see the module docstring).

    Args:
        backbone: timm model name of the per-frame encoder (random init: nothing is downloaded).
        frame_package: an interactive segmenter package whose frozen image encoder encodes the
            frames instead of ``backbone`` (:class:`PackagedFrameEncoder`); ``input_size`` must
            then be the package's.
        input_size: (height, width) of the frames it takes.
        width: embedding width of the shared space.
        layers: temporal transformer layers.
        heads: attention heads per layer.
        max_frames: the longest clip (learned positions).
        causal: mask the future in the temporal transformer (streaming).
        text_width: width of the sentence embeddings given to :meth:`embed_text`.
        dropout: of the temporal transformer's layers (0: a training step depends on its
            batch alone, which comparisons of runs need).
    """

    def __init__(
        self,
        backbone: str = "mobilenetv3_small_050",
        input_size: tuple[int, int] = (112, 192),
        width: int = 128,
        layers: int = 2,
        heads: int = 4,
        max_frames: int = 16,
        causal: bool = True,
        text_width: int = TEXT_WIDTH,
        frame_package: str | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be a multiple of heads {heads}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.max_frames = max_frames
        self.causal = causal
        self.encoder: nn.Module
        if frame_package is None:
            self.encoder = timm.create_model(backbone, pretrained=False, num_classes=0)
        else:
            self.encoder = PackagedFrameEncoder(Path(frame_package))
            if self.encoder.input_size != self.input_size:
                raise ValueError(
                    f"input_size {list(self.input_size)} must be the frame package's "
                    f"{list(self.encoder.input_size)}"
                )
        with torch.no_grad():
            features = self.encoder(torch.zeros(1, 3, *self.input_size)).shape[-1]
        self.frame_projection = nn.Linear(features, width)
        self.positions = nn.Parameter(torch.zeros(max_frames, width))
        nn.init.normal_(self.positions, std=0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=dropout, batch_first=True
        )
        self.temporal = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.video_head = nn.Linear(width, width)
        self.text_projection = nn.Sequential(
            nn.Linear(text_width, width), nn.GELU(), nn.Linear(width, width)
        )
        # CLIP's initial temperature, 0.07, as a log scale.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def frame_features(self, frames: Tensor) -> Tensor:
        """Per-frame features [B, T, width] of clips [B, T, 3, H, W] (normalised RGB)."""
        batch, length = frames.shape[:2]
        if length > self.max_frames:
            raise ValueError(f"a clip holds at most {self.max_frames} frames, not {length}")
        encoded = self.encoder(frames.flatten(0, 1))
        return self.frame_projection(encoded).view(batch, length, -1)

    def embed_video(self, frames: Tensor) -> Tensor:
        """L2-normalised clip embeddings [B, width] of clips [B, T, 3, H, W]."""
        states = self.temporal_states(self.frame_features(frames))
        pooled = states[:, -1] if self.causal else states.mean(dim=1)
        return F.normalize(self.video_head(pooled), dim=-1)

    def temporal_states(self, features: Tensor) -> Tensor:
        """The temporal transformer over per-frame features [B, T, width]: [B, T, width]; with
        ``causal``, state t sees features 0..t only."""
        length = features.shape[1]
        mask = None
        if self.causal:
            mask = torch.triu(
                torch.ones(length, length, dtype=torch.bool, device=features.device), 1
            )
        return self.temporal(features + self.positions[:length], mask=mask)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The per-row shapes of :meth:`streaming_step`'s state: the window of the last
        ``max_frames - 1`` frame features and their fill flags."""
        slots = self.max_frames - 1
        return {"window": (slots, self.positions.shape[1]), "filled": (slots,)}

    def initial_state(self, batch: int = 1) -> tuple[Tensor, Tensor]:
        """The state before a stream's first frame: an empty window, nothing filled."""
        window, filled = self.state_shapes().values()
        return torch.zeros(batch, *window), torch.zeros(batch, *filled)

    def streaming_step(
        self, frame: Tensor, window: Tensor, filled: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One live frame [B, 3, H, W] in, the embedding of the clip it ends out.

        The state is the features of the last ``max_frames - 1`` frames (oldest first) and a
        1/0 flag per slot saying whether it holds a frame yet. The clip is the filled slots and
        this frame: with k of them it is placed at positions 0..k-1 and the empty slots are
        masked out, so the result equals :meth:`embed_video` of those k frames (exactly the
        clips training saw once the window is full). Each frame's features are computed once.

        Returns:
            (clip embedding [B, width], next window, next fill flags).
        """
        feature = self.frame_projection(self.encoder(frame))
        features = torch.cat([window, feature[:, None]], dim=1)
        valid = torch.cat([filled, torch.ones_like(filled[:, :1])], dim=1)
        batch, length = valid.shape
        slots = torch.arange(length, device=frame.device)
        first = length - valid.sum(dim=1, keepdim=True).long()
        positions = self.positions[(slots[None] - first).clamp(min=0)]
        # Attend to filled slots up to one's own; an empty slot attends to itself only, so
        # no row of the softmax is empty (its result is never used).
        allowed = (slots[None, :] <= slots[:, None])[None] & (
            (valid[:, None, :] > 0) | (slots[None, :] == slots[:, None])[None]
        )
        heads = self.temporal.layers[0].self_attn.num_heads
        mask = torch.zeros(batch, length, length, device=frame.device)
        mask = mask.masked_fill(~allowed, float("-inf"))
        mask = mask[:, None].expand(batch, heads, length, length).reshape(-1, length, length)
        states = self.temporal(features + positions, mask=mask)
        clip = F.normalize(self.video_head(states[:, -1]), dim=-1)
        return clip, features[:, 1:], valid[:, 1:]

    def embed_text(self, sentences: Tensor) -> Tensor:
        """L2-normalised text embeddings [N, width] of MiniLM sentence embeddings [N, 384]."""
        return F.normalize(self.text_projection(sentences), dim=-1)

    def logits(self, video: Tensor, text: Tensor) -> Tensor:
        """Scaled cosine similarities [B, N] of video [B, width] and text [N, width]
        embeddings (the scale is capped at 100, as CLIP caps it)."""
        return self.logit_scale.exp().clamp(max=100.0) * video @ text.T


def symmetric_infonce(logits: Tensor) -> Tensor:
    """InfoNCE both ways over a [B, B] similarity matrix whose diagonal holds the pairs."""
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def multi_positive_infonce(logits: Tensor, positives: Tensor) -> Tensor:
    """InfoNCE of each row of [B, N] logits with every True of ``positives`` [B, N] a positive:
    ``-log(sum over positives of softmax)``, averaged over the rows that have one."""
    has = positives.any(dim=1)
    if not bool(has.any()):
        return logits.sum() * 0.0
    log_probs = logits.log_softmax(dim=1)
    masked = log_probs.masked_fill(~positives, float("-inf"))
    return -torch.logsumexp(masked[has], dim=1).mean()


def retrieved_positives(video: Tensor, bank: Tensor, k: int) -> Tensor:
    """For clips without narration: the ``k`` narrations of a bank [N, width] nearest to each
    clip embedding [B, width], as a boolean [B, N] mask of extra positives."""
    k = min(k, bank.shape[0])
    nearest = (video @ bank.T).topk(k, dim=1).indices
    mask = torch.zeros(video.shape[0], bank.shape[0], dtype=torch.bool, device=video.device)
    return mask.scatter(1, nearest, True)


@register_model
def ophclip_small(**kwargs: object) -> VideoTextModel:
    """The video-text model at the size that trains on 2 CPU cores."""
    return VideoTextModel(**kwargs)  # type: ignore[arg-type]
