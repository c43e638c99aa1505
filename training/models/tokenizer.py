"""Visual tokenizer in the MedITok style: images to a grid of discrete tokens and back.

MedITok's structure, kept here: an encoder maps the image to a latent grid; the latent vector at
each position is split into ``groups`` sub-vectors, and each sub-vector is looked up in its own
sub-codebook by cosine similarity (sub-vectors and codes are L2-normalised, so the nearest code
is the one with the largest dot product). A token is the ``groups`` indices of one position, so
a few small codebooks give ``codes ** groups`` combinations where one codebook would need them
all. The quantized latent (the chosen unit-length codes) goes to a decoder that rebuilds the
image; the straight-through estimator passes the decoder's gradient to the encoder unchanged,
and the codebook is trained by the VQ loss ``|q - sg(z)|^2 + beta * |z - sg(q)|^2`` on the
normalised vectors (``beta`` = 0.25, MedITok's commitment weight).

Scaled down from MedITok (ViT encoder and decoder, 16x downsampling, 8 sub-codebooks x 4096 codes
x 8 dims) to train on 2 CPU cores:

- convolutional encoder and decoder (residual blocks, GroupNorm, SiLU) instead of ViTs: at the
  default size 2.0 M parameters and 3.4 GMACs per 256x256 image, small enough to train on one
  CPU thread (``training/configs/tokenizer_phantom.yaml``);
- 8x downsampling by default (a 32x32 token grid for 256x256 frames), so the small model
  reaches a useful PSNR; ``channels`` sets the depth (one stride-2 step per entry);
- 8 sub-codebooks x 512 codes x 8 dims (a 64-channel latent, 72 bits per position).

Two alignment heads read the quantized latent (a per-position MLP, mean pooling, a linear map),
so the tokens carry semantics as well as pixels, as in MedITok's two training stages:
:meth:`VisualTokenizer.visual_embedding` is pulled towards a trained image encoder's pooled
features (stage 1), :meth:`VisualTokenizer.text_embedding` towards the MiniLM sentence
embedding (384-d) of what is said about the frame (stage 2); the losses live in
:mod:`orstream.training.modules.lit_tokenizer`.

Codes that no position has picked for ``restart_after`` training steps are re-initialised from
latents of the current batch (the codebook otherwise keeps codes that never win a lookup and so
never receive a gradient). Under DDP the batch is the global one: a code is idle when no rank
picked it, and the new codes are latents of every rank's share that rank 0 draws and sends to
all, since DDP keeps the ranks' weights equal only through their gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orstream.training.distributed.gather import gather_global_batch, in_process_group
from orstream.training.registry import register_model

TEXT_WIDTH = 384
"""Width of MiniLM's sentence embeddings."""


class TokenizerOutput(NamedTuple):
    """What :meth:`VisualTokenizer.forward` gives for a batch of images."""

    reconstruction: Tensor  # [B, 3, H, W], same normalisation as the input
    indices: Tensor  # [B, groups, h, w] int64
    vq_loss: Tensor  # scalar: codebook + beta * commitment
    quantized: Tensor  # [B, groups * code_dim, h, w], straight-through


class MultiCodebookQuantizer(nn.Module):
    """``groups`` sub-codebooks of ``codes`` unit vectors of ``code_dim`` dims, cosine lookup.

    Args:
        groups: sub-vectors per position (one sub-codebook each).
        codes: codes per sub-codebook.
        code_dim: dimensions of a sub-vector.
        beta: commitment weight of the VQ loss.
        restart_after: training steps without a single use after which a code is re-initialised
            from a latent of the batch (0: never).
    """

    def __init__(
        self, groups: int, codes: int, code_dim: int, beta: float = 0.25, restart_after: int = 0
    ) -> None:
        super().__init__()
        self.groups, self.codes, self.code_dim = groups, codes, code_dim
        self.beta = beta
        self.restart_after = restart_after
        # Gaussian rows are uniform directions once normalised.
        self.codebook = nn.Parameter(torch.randn(groups, codes, code_dim))
        self.idle: Tensor
        self.register_buffer("idle", torch.zeros(groups, codes, dtype=torch.long))

    @property
    def latent_dim(self) -> int:
        return self.groups * self.code_dim

    def unit_codes(self) -> Tensor:
        """The L2-normalised codebook [groups, codes, code_dim]."""
        return F.normalize(self.codebook, dim=-1)

    def split(self, latent: Tensor) -> Tensor:
        """[B, groups * code_dim, h, w] -> L2-normalised sub-vectors [B, groups, code_dim, h, w]."""
        batch, channels, height, width = latent.shape
        if channels != self.latent_dim:
            raise ValueError(f"latent has {channels} channels, the quantizer {self.latent_dim}")
        parts = latent.view(batch, self.groups, self.code_dim, height, width)
        return F.normalize(parts, dim=2)

    @torch.no_grad()
    def nearest(self, parts: Tensor) -> Tensor:
        """Index [B, groups, h, w] of the code most similar (cosine) to each normalised
        sub-vector [B, groups, code_dim, h, w]."""
        codes = self.unit_codes()
        # One group at a time: [B, codes, h, w] similarities instead of all groups' at once.
        return torch.stack(
            [
                torch.einsum("bdhw,kd->bkhw", parts[:, group], codes[group]).argmax(dim=1)
                for group in range(self.groups)
            ],
            dim=1,
        )

    def embed(self, indices: Tensor) -> Tensor:
        """Indices [B, groups, h, w] -> their unit codes, a latent [B, groups * code_dim, h, w]."""
        batch, groups, height, width = indices.shape
        if groups != self.groups:
            raise ValueError(f"indices have {groups} groups, the quantizer {self.groups}")
        rows = torch.arange(groups, device=indices.device).view(1, groups, 1, 1)
        chosen = self.unit_codes()[rows, indices]  # [B, groups, h, w, code_dim]
        return chosen.permute(0, 1, 4, 2, 3).reshape(batch, self.latent_dim, height, width)

    def forward(self, latent: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Quantize a latent [B, groups * code_dim, h, w].

        Returns:
            The straight-through quantized latent (the codes forward, the identity backward to
            the normalised latent), the indices [B, groups, h, w] and the VQ loss.
        """
        parts = self.split(latent)
        indices = self.nearest(parts)
        quantized = self.embed(indices).view_as(parts)
        codebook_loss = F.mse_loss(quantized, parts.detach())
        commitment = F.mse_loss(parts, quantized.detach())
        if self.training and self.restart_after > 0:
            self._restart_idle_codes(parts.detach(), indices)
        straight = parts + (quantized - parts).detach()
        return (
            straight.view_as(latent),
            indices,
            codebook_loss + self.beta * commitment,
        )

    @torch.no_grad()
    def _restart_idle_codes(self, parts: Tensor, indices: Tensor) -> None:
        used = torch.zeros_like(self.idle, dtype=torch.uint8)
        used.scatter_(1, indices.transpose(0, 1).reshape(self.groups, -1), 1)
        if in_process_group():
            torch.distributed.all_reduce(used, torch.distributed.ReduceOp.MAX)
        self.idle.add_(1).masked_fill_(used.bool(), 0)
        dead = self.idle >= self.restart_after
        if not bool(dead.any()):
            return
        # Every position of the global batch, per group: [groups, B * h * w, code_dim].
        samples = gather_global_batch(parts).permute(1, 0, 3, 4, 2)
        samples = samples.reshape(self.groups, -1, self.code_dim)
        for group in dead.any(dim=1).nonzero().flatten().tolist():
            rows = dead[group].nonzero().flatten()
            picks = torch.randint(samples.shape[1], (len(rows),), device=samples.device)
            if in_process_group():
                torch.distributed.broadcast(picks, src=0)
            self.codebook.data[group, rows] = samples[group, picks]
        self.idle.masked_fill_(dead, 0)


class ResidualBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 conv, twice, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _encoder(channels: tuple[int, ...], blocks: tuple[int, ...], latent_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, channels[0], 3, stride=2, padding=1)]
    for level, (width, count) in enumerate(zip(channels, blocks, strict=True)):
        if level:
            layers.append(nn.Conv2d(channels[level - 1], width, 3, stride=2, padding=1))
        layers += [ResidualBlock(width) for _ in range(count)]
    layers += [nn.GroupNorm(8, channels[-1]), nn.SiLU(), nn.Conv2d(channels[-1], latent_dim, 1)]
    return nn.Sequential(*layers)


def _decoder(channels: tuple[int, ...], blocks: tuple[int, ...], latent_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(latent_dim, channels[-1], 3, padding=1)]
    for level in reversed(range(len(channels))):
        layers += [ResidualBlock(channels[level]) for _ in range(blocks[level])]
        if level:
            layers += [
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                nn.Conv2d(channels[level], channels[level - 1], 3, padding=1),
            ]
    # The last doubling as a sub-pixel convolution: a 3x3 conv at half resolution gives the
    # 2x2 pixels of each position, a quarter of the cost of a conv at full resolution.
    layers += [
        nn.GroupNorm(8, channels[0]),
        nn.SiLU(),
        nn.Conv2d(channels[0], 3 * 4, 3, padding=1),
        nn.PixelShuffle(2),
    ]
    return nn.Sequential(*layers)


class AlignmentHead(nn.Module):
    """Quantized latent [B, C, h, w] -> one vector per image [B, out_dim]: a per-position MLP,
    the mean over positions, LayerNorm and a linear map."""

    def __init__(self, latent_dim: int, width: int, out_dim: int) -> None:
        super().__init__()
        self.local = nn.Sequential(
            nn.Conv2d(latent_dim, width, 1), nn.GELU(), nn.Conv2d(width, width, 1)
        )
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, out_dim))

    def forward(self, quantized: Tensor) -> Tensor:
        out: Tensor = self.out(self.local(quantized).mean(dim=(2, 3)))
        return out


class VisualTokenizer(nn.Module):
    """Encoder, multi-codebook quantizer, decoder and alignment heads (see the module docstring).

    Images are RGB scaled to [-1, 1] (``pixel / 127.5 - 1``); the reconstruction comes out the
    same way (unbounded: clamp it to show it).

    Args:
        input_size: (height, width) of the images, multiples of the downsampling factor.
        channels: encoder widths (multiples of 8, for GroupNorm), one per resolution; the image
            is downsampled by ``2 ** len(channels)`` (the decoder mirrors them).
        encoder_blocks: residual blocks of the encoder at each resolution.
        decoder_blocks: residual blocks of the decoder at each resolution.
        groups: sub-codebooks (sub-vectors per position).
        codes: codes per sub-codebook.
        code_dim: dimensions of each code.
        beta: commitment weight.
        restart_after: training steps after which an unused code is re-initialised (0: never).
        visual_dim: width of the image features the visual head is aligned with.
        text_dim: width of the sentence embeddings the text head is aligned with.
        head_width: hidden width of the alignment heads.
    """

    def __init__(
        self,
        input_size: tuple[int, int] = (256, 256),
        channels: tuple[int, ...] = (32, 64, 128),
        encoder_blocks: tuple[int, ...] = (1, 1, 2),
        decoder_blocks: tuple[int, ...] = (1, 1, 2),
        groups: int = 8,
        codes: int = 512,
        code_dim: int = 8,
        beta: float = 0.25,
        restart_after: int = 50,
        visual_dim: int = 128,
        text_dim: int = TEXT_WIDTH,
        head_width: int = 256,
    ) -> None:
        super().__init__()
        channels, encoder_blocks, decoder_blocks = (
            tuple(int(c) for c in values) for values in (channels, encoder_blocks, decoder_blocks)
        )
        if not len(channels) == len(encoder_blocks) == len(decoder_blocks) > 0:
            raise ValueError("channels, encoder_blocks and decoder_blocks need one entry per level")
        self.downsample = 2 ** len(channels)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if any(side % self.downsample for side in self.input_size):
            raise ValueError(
                f"input_size {list(self.input_size)} must be multiples of {self.downsample}"
            )
        self.quantizer = MultiCodebookQuantizer(groups, codes, code_dim, beta, restart_after)
        latent_dim = self.quantizer.latent_dim
        self.encoder = _encoder(channels, encoder_blocks, latent_dim)
        self.decoder = _decoder(channels, decoder_blocks, latent_dim)
        self.visual_head = AlignmentHead(latent_dim, head_width, visual_dim)
        self.text_head = AlignmentHead(latent_dim, head_width, text_dim)

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of the token grid of an ``input_size`` image."""
        return (self.input_size[0] // self.downsample, self.input_size[1] // self.downsample)

    def encode(self, images: Tensor) -> Tensor:
        """Images [B, 3, H, W] -> token indices [B, groups, H / f, W / f] (int64)."""
        return self.quantizer.nearest(self.quantizer.split(self.encoder(images)))

    def decode(self, indices: Tensor) -> Tensor:
        """Token indices [B, groups, h, w] -> images [B, 3, h * f, w * f]."""
        decoded: Tensor = self.decoder(self.quantizer.embed(indices))
        return decoded

    def forward(self, images: Tensor) -> TokenizerOutput:
        quantized, indices, vq_loss = self.quantizer(self.encoder(images))
        return TokenizerOutput(self.decoder(quantized), indices, vq_loss, quantized)

    def visual_embedding(self, quantized: Tensor) -> Tensor:
        """[B, visual_dim] from a quantized latent (aligned with image features in stage 1)."""
        out: Tensor = self.visual_head(quantized)
        return out

    def text_embedding(self, quantized: Tensor) -> Tensor:
        """[B, text_dim] from a quantized latent (aligned with sentence embeddings in stage 2)."""
        out: Tensor = self.text_head(quantized)
        return out


@register_model
def meditok_small(**kwargs: object) -> VisualTokenizer:
    """The MedITok-style tokenizer at the size that trains on 2 CPU cores."""
    return VisualTokenizer(**kwargs)  # type: ignore[arg-type]
