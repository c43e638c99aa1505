"""Training samplers that give every rank of a DDP run its share of the same global batches.

A *global batch* is what one optimiser step sees over all ranks: ``batch_size`` samples per
rank times ``num_replicas``. An epoch's order is drawn from ``seed`` and the epoch alone (never
from a rank's own random state), so every rank computes the same global batches and takes a
disjoint part of each: rank r the r-th slice of ``batch_size``. One process with a batch size of
``batch_size * num_replicas`` sees exactly these global batches, so a run's batches do not depend
on how many processes share them. A shorter last global batch is split as evenly as the ranks
allow (repeating its samples only when it holds fewer than one per rank, since every rank must
take the same number of steps), or dropped with ``drop_last`` when a full one exists.

A rank yields its indices flat, batch after batch; a DataLoader with the same ``batch_size``
cuts them back into the rank's batches, since only the last can be shorter. The samplers
subclass :class:`~torch.utils.data.DistributedSampler`, so Lightning recognises them as already
distributed (rather than wrapping them in its own), and calls their ``set_epoch`` each epoch.

A sample may come in several *variants* (a training clip at several playback speeds): each
epoch takes every sample in one variant drawn from the same seed and epoch, and yields it as
``sample + size * variant``, so the ranks agree on the variants as on the batches, and a sampler
that batches by length knows each variant's length before it batches.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, Self, cast

import torch
from torch.utils.data import Dataset, DistributedSampler

from orstream.errors import OrstreamError


def seed_of_run() -> int:
    """The seed ``seed_everything`` set for this run (every rank has the same), else 0: what
    Lightning's own distributed sampler is seeded with."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def replicas_of(trainer: Any) -> tuple[int, int]:
    """(num_replicas, rank) of a Lightning trainer; (1, 0) without one."""
    if trainer is None:
        return 1, 0
    return int(trainer.world_size), int(trainer.global_rank)


class GlobalBatchSampler(DistributedSampler[int]):
    """This rank's share of an epoch's global batches (subclasses choose the batches).

    Args:
        size: samples in the dataset.
        batch_size: samples per rank and step.
        num_replicas: ranks sharing each global batch.
        rank: this rank, 0 .. num_replicas - 1.
        seed: with the epoch (``set_epoch``), fixes the epoch's order on every rank.
        drop_last: leave out a shorter last global batch when a full one exists.
        variants: versions of each sample, 0 .. variants - 1 (see the module's docstring).
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        drop_last: bool = False,
        variants: int = 1,
    ) -> None:
        if batch_size < 1:
            raise OrstreamError(f"batch_size must be at least 1, got {batch_size}")
        if variants < 1:
            raise OrstreamError(f"a sample needs at least one variant, got {variants}")
        # DistributedSampler reads nothing of a dataset but its length.
        dataset = cast(Dataset[int], range(size))
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, seed=seed, drop_last=drop_last
        )
        self.size = size
        self.batch_size = batch_size
        self.variants = variants

    @classmethod
    def for_run(cls, trainer: Any, *args: Any, **kwargs: Any) -> Self:
        """This rank's sampler under ``trainer`` (None: one process), seeded as the run is;
        ``args`` and ``kwargs`` are the subclass's own."""
        num_replicas, rank = replicas_of(trainer)
        kwargs.update(num_replicas=num_replicas, rank=rank, seed=seed_of_run())
        return cls(*args, **kwargs)

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.num_replicas

    def epoch_samples(self) -> int:
        """Samples an epoch draws over all ranks (before cutting into global batches)."""
        return self.size

    def global_batches(self, generator: torch.Generator, variant: list[int]) -> list[list[int]]:
        """The epoch's global batches of samples, full ones first and a shorter one last;
        ``variant`` holds the variant each sample takes this epoch."""
        raise NotImplementedError

    def _kept(self) -> tuple[int, int]:
        """(full global batches, samples of the shorter last one that is kept)."""
        full, rest = divmod(self.epoch_samples(), self.global_batch_size)
        if self.drop_last and full:
            rest = 0
        return full, rest

    def __len__(self) -> int:
        full, rest = self._kept()
        if not rest:
            return full * self.batch_size
        # _share's split: the first (padded % ranks) ranks take one sample more.
        padded = max(rest, self.num_replicas)
        share = padded // self.num_replicas + (self.rank < padded % self.num_replicas)
        return full * self.batch_size + share

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        variant = [0] * self.size
        if self.variants > 1:
            variant = torch.randint(self.variants, (self.size,), generator=generator).tolist()
        full, rest = self._kept()
        batches = self.global_batches(generator, variant)[: full + (1 if rest else 0)]
        for batch in batches:
            yield from (sample + self.size * variant[sample] for sample in self._share(batch))

    def _share(self, batch: Sequence[int]) -> list[int]:
        if len(batch) == self.global_batch_size:
            start = self.rank * self.batch_size
            return list(batch[start : start + self.batch_size])
        # A shorter last batch: at least one sample per rank, split as evenly as possible.
        padded = [batch[i % len(batch)] for i in range(max(len(batch), self.num_replicas))]
        parts = torch.tensor(padded).tensor_split(self.num_replicas)
        return [int(i) for i in parts[self.rank]]


class ShuffledSamples(GlobalBatchSampler):
    """Samples in a random order; with ``num_samples`` an epoch takes that many, reshuffling
    when the dataset runs out (as :class:`~torch.utils.data.RandomSampler` does)."""

    def __init__(self, size: int, batch_size: int, num_samples: int | None = None, **kwargs: Any):
        super().__init__(size, batch_size, **kwargs)
        self.num_samples_per_epoch = size if num_samples is None else num_samples

    def epoch_samples(self) -> int:
        return self.num_samples_per_epoch

    def global_batches(self, generator: torch.Generator, variant: list[int]) -> list[list[int]]:
        rounds = math.ceil(self.num_samples_per_epoch / max(self.size, 1))
        order = torch.cat([torch.randperm(self.size, generator=generator) for _ in range(rounds)])
        order_list = order[: self.num_samples_per_epoch].tolist()
        step = self.global_batch_size
        return [order_list[i : i + step] for i in range(0, len(order_list), step)]


class SimilarLengthSamples(GlobalBatchSampler):
    """Global batches of samples with similar lengths, in random order.

    ``lengths`` holds each sample's length, or a row per sample of its variants' lengths. Each
    epoch the lengths (of the variants drawn) are scaled by a random factor in ``1 +- jitter``
    (so batches are not the same every epoch), sorted and cut into global batches; the full
    ones are shuffled and a shorter one goes last. A rank's share of a batch is similar in
    length too.
    """

    def __init__(
        self,
        lengths: Sequence[int] | Sequence[Sequence[int]],
        batch_size: int,
        jitter: float = 0.2,
        **kwargs: Any,
    ):
        table = torch.tensor(lengths, dtype=torch.float64)
        self.lengths = table if table.dim() == 2 else table[:, None]
        super().__init__(len(self.lengths), batch_size, variants=self.lengths.shape[1], **kwargs)
        self.jitter = jitter

    def global_batches(self, generator: torch.Generator, variant: list[int]) -> list[list[int]]:
        lengths = self.lengths[torch.arange(self.size), torch.tensor(variant, dtype=torch.long)]
        noise = torch.rand(self.size, dtype=torch.float64, generator=generator) * 2 - 1
        order = (lengths * (1.0 + self.jitter * noise)).argsort().tolist()
        step = self.global_batch_size
        batches = [order[i : i + step] for i in range(0, len(order), step)]
        full = [batch for batch in batches if len(batch) == step]
        shorter = [batch for batch in batches if len(batch) < step]
        shuffled = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
        return shuffled + shorter
