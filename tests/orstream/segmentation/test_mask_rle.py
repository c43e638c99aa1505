"""Masks survive run-length encoding pixel for pixel, in memory and on the wire."""

import sys
import time

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.proto.convert import segment_mask_from_proto, segment_mask_to_proto
from orstream.proto.orstream.v1 import results_pb2
from orstream.results import SegmentMask
from orstream.segmentation.mask_rle import MaskRle, decode_mask, encode_mask


def _over_the_wire(rle: MaskRle) -> tuple[MaskRle, int]:
    """The RLE after a trip through the serialised proto message, and the message's size."""
    sent = segment_mask_to_proto(SegmentMask(16, "suction", 0.9, rle, (0, 0, 0, 0)))
    data = sent.SerializeToString()
    return segment_mask_from_proto(results_pb2.SegmentMask.FromString(data)).mask, len(data)


def _round_trip(mask: np.ndarray) -> MaskRle:
    rle = encode_mask(mask)
    assert sum(rle.counts) == mask.size
    decoded = decode_mask(rle)
    assert decoded.dtype == np.bool_
    assert decoded.shape == mask.shape
    np.testing.assert_array_equal(decoded, mask.astype(bool))
    assert decode_mask(_over_the_wire(rle)[0]).tolist() == decoded.tolist()
    return rle


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("density", [0.05, 0.5, 0.95])
def test_random_masks_round_trip_exactly(seed: int, density: float) -> None:
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 90, size=2)
    mask = rng.random((height, width)) < density
    _round_trip(mask)


def test_uint8_masks_treat_any_nonzero_as_foreground() -> None:
    mask = np.array([[0, 255, 1], [0, 0, 7]], dtype=np.uint8)
    rle = _round_trip(mask)
    assert rle.counts == (1, 2, 2, 1)


def test_runs_are_row_major_and_start_with_background() -> None:
    mask = np.zeros((3, 4), dtype=bool)
    mask[0, 3] = True
    mask[1, 0] = True  # continues the run begun at the end of row 0
    mask[:, 2] = False
    assert encode_mask(mask).counts == (3, 2, 7)
    mask[0, 0] = True
    assert encode_mask(mask).counts == (0, 1, 2, 2, 7)


def test_empty_full_and_single_pixel_masks() -> None:
    assert _round_trip(np.zeros((4, 5), dtype=bool)).counts == (20,)
    assert _round_trip(np.ones((4, 5), dtype=bool)).counts == (0, 20)
    single = np.zeros((4, 5), dtype=bool)
    single[2, 3] = True
    assert _round_trip(single).counts == (13, 1, 6)
    corner = np.zeros((4, 5), dtype=bool)
    corner[-1, -1] = True
    assert _round_trip(corner).counts == (19, 1)
    assert _round_trip(np.ones((1, 1), dtype=bool)).counts == (0, 1)
    assert _round_trip(np.zeros((0, 7), dtype=bool)).counts == ()


def test_wire_form_is_compact() -> None:
    mask = np.zeros((300, 500), dtype=bool)
    mask[100:200, 150:420] = True
    rle = encode_mask(mask)
    received, size = _over_the_wire(rle)
    assert received == rle
    # Packed varints: the 201 runs take 2 bytes each (3 for the outer background runs).
    assert rle.counts[0] == 50150 and rle.counts[-1] == 50080 and len(rle.counts) == 201
    assert 2 * 199 + 6 < size < 2 * 199 + 40
    assert size < mask.size // 100


def test_full_hd_mask_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    mask = np.zeros((1080, 1920), dtype=bool)
    for _ in range(6):
        y, x = rng.integers(0, 900), rng.integers(0, 1700)
        mask[y : y + 180, x : x + 220] = True
    start = time.perf_counter()
    rle = encode_mask(mask)
    received, size = _over_the_wire(rle)
    decoded = decode_mask(received)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(decoded, mask)
    with capsys.disabled():
        print(
            f"\n1080p mask: {len(rle.counts)} runs, {size} bytes, "
            f"encode+proto+decode {elapsed * 1e3:.1f} ms",
            file=sys.stderr,
        )


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(OrstreamError, match="2-D"):
        encode_mask(np.zeros((2, 3, 1), dtype=bool))
    with pytest.raises(OrstreamError, match="2-D"):
        encode_mask(np.zeros(5, dtype=bool))
    with pytest.raises(OrstreamError, match=r"cover 5 pixels.*has 6"):
        MaskRle(height=2, width=3, counts=(2, 3))
    with pytest.raises(OrstreamError, match="negative"):
        MaskRle(height=2, width=3, counts=(8, -2))
    with pytest.raises(OrstreamError, match="negative"):
        MaskRle(height=-2, width=3, counts=())
    corrupt = segment_mask_to_proto(
        SegmentMask(0, "", 0.5, encode_mask(np.eye(20, dtype=bool)), (0, 0, 20, 20))
    )
    del corrupt.mask.counts[-1]
    with pytest.raises(OrstreamError, match="cover"):
        segment_mask_from_proto(corrupt)
