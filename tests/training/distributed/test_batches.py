"""Distributed samplers: disjoint rank shares of the same global batches, epoch by epoch."""

from itertools import pairwise

import pytest

from orstream.errors import OrstreamError
from orstream.training.distributed.batches import (
    GlobalBatchSampler,
    ShuffledSamples,
    SimilarLengthSamples,
)


def rank_batches(sampler: GlobalBatchSampler) -> list[list[int]]:
    """A rank's batches as a DataLoader with the sampler's batch size cuts them."""
    order = list(sampler)
    assert len(order) == len(sampler)
    size = sampler.batch_size
    return [order[i : i + size] for i in range(0, len(order), size)]


def global_batches(
    make: type[GlobalBatchSampler], replicas: int, epoch: int, **kwargs: object
) -> list[list[int]]:
    """Per step, the ranks' batches joined in rank order."""
    shares = []
    for rank in range(replicas):
        sampler = make(num_replicas=replicas, rank=rank, seed=7, **kwargs)  # type: ignore[arg-type]
        sampler.set_epoch(epoch)
        shares.append(rank_batches(sampler))
    assert len({len(share) for share in shares}) == 1  # every rank takes as many steps
    return [[i for part in step for i in part] for step in zip(*shares, strict=True)]


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_ranks_share_the_global_batches_one_process_sees(replicas: int) -> None:
    for epoch in (0, 1):
        split = global_batches(ShuffledSamples, replicas, epoch, size=24, batch_size=2)
        alone = global_batches(ShuffledSamples, 1, epoch, size=24, batch_size=2 * replicas)
        assert split == alone
        assert sorted(i for batch in split for i in batch) == list(range(24))  # each once
    first, second = (
        global_batches(ShuffledSamples, replicas, e, size=24, batch_size=2) for e in (0, 1)
    )
    assert first != second  # set_epoch reshuffles
    assert first == global_batches(ShuffledSamples, replicas, 0, size=24, batch_size=2)


def test_a_short_last_batch_is_split_or_dropped_and_steps_stay_equal() -> None:
    split = global_batches(ShuffledSamples, 2, 0, size=11, batch_size=2)
    assert [len(batch) for batch in split] == [4, 4, 3]
    assert sorted(i for batch in split for i in batch) == list(range(11))
    dropped = global_batches(ShuffledSamples, 2, 0, size=11, batch_size=2, drop_last=True)
    assert [len(batch) for batch in dropped] == [4, 4] and dropped == split[:2]
    # Fewer samples than ranks: one repeats, so that every rank still takes a step.
    tiny = global_batches(ShuffledSamples, 3, 0, size=2, batch_size=4, drop_last=True)
    assert len(tiny) == 1 and sorted(set(tiny[0])) == [0, 1] and len(tiny[0]) == 3


def test_an_epoch_budget_reshuffles_when_the_samples_run_out() -> None:
    split = global_batches(ShuffledSamples, 2, 0, size=5, batch_size=2, num_samples=12)
    drawn = [i for batch in split for i in batch]
    assert len(drawn) == 12
    assert sorted(drawn[:5]) == sorted(drawn[5:10]) == list(range(5))


def test_similar_length_batches_group_by_length_on_every_rank_count() -> None:
    lengths = [10, 300, 12, 310, 11, 305, 13, 290, 1000, 990]
    orders = set()
    for epoch in range(10):
        split = global_batches(SimilarLengthSamples, 2, epoch, lengths=lengths, batch_size=2)
        assert split == global_batches(
            SimilarLengthSamples, 1, epoch, lengths=lengths, batch_size=4
        )
        assert sorted(i for batch in split for i in batch) == list(range(len(lengths)))
        groups = {frozenset(lengths[i] for i in batch) for batch in split}
        assert {10, 11, 12, 13} in groups and {290, 300, 305, 310} in groups
        assert sorted(split[-1]) == [8, 9]  # the shorter batch goes last
        orders.add(tuple(tuple(batch) for batch in split))
    assert len(orders) > 1  # batch order and membership vary between epochs


def test_each_epoch_takes_every_sample_once_in_a_variant_batched_by_its_length() -> None:
    # Sample i at speed 0.5 / 1 / 2: a short case slowed down is as long as a long one.
    lengths = [[2 * n, n, n // 2] for n in [100, 104, 200, 208, 400, 408, 96, 404]]
    drawn_variants = set()
    for epoch in range(8):
        split = global_batches(SimilarLengthSamples, 2, epoch, lengths=lengths, batch_size=2)
        assert split == global_batches(
            SimilarLengthSamples, 1, epoch, lengths=lengths, batch_size=4
        )
        indices = [i for batch in split for i in batch]
        assert sorted(i % len(lengths) for i in indices) == list(range(len(lengths)))
        taken = {i % len(lengths): lengths[i % len(lengths)][i // len(lengths)] for i in indices}
        spans = sorted((min(b), max(b)) for b in ([taken[i % 8] for i in batch] for batch in split))
        for (_, longest), (shortest, _) in pairwise(spans):
            assert longest <= 1.5 * shortest  # cut from the lengths' order (jitter: 0.8-1.2)
        drawn_variants.add(tuple(i // len(lengths) for i in indices))
    assert len(drawn_variants) > 1 and {v for d in drawn_variants for v in d} == {0, 1, 2}
    shuffled = global_batches(ShuffledSamples, 2, 0, size=8, batch_size=2, variants=3)
    assert sorted(i % 8 for batch in shuffled for i in batch) == list(range(8))
    assert all(0 <= i < 24 for batch in shuffled for i in batch)


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(OrstreamError, match="batch_size must be at least 1"):
        ShuffledSamples(4, 0)
