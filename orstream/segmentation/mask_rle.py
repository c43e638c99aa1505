"""Run-length encoding of binary masks, compact enough to send a mask per prompt over gRPC.

A mask of height H and width W is read in row-major (C) order as one line of H*W pixels. Its
runs alternate between background and foreground and always start with a background run, which
is 0 long when the first pixel is foreground; all later runs are at least 1 pixel long. The
runs therefore sum to H*W and decode to exactly the same pixels.

On the wire (``orstream.v1.MaskRle``, converted in ``orstream.proto.convert``) the runs are a
packed repeated uint32, i.e. protobuf varints of 7 bits per byte: a mask with a few objects
costs hundreds of bytes instead of megabytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orstream.errors import OrstreamError


@dataclass(frozen=True)
class MaskRle:
    """A binary mask as runs of equal pixels in row-major order.

    Attributes:
        height: Rows of the mask.
        width: Columns of the mask.
        counts: Run lengths in row-major order, alternating background and foreground and
            starting with background (a leading 0 when the first pixel is foreground).
    """

    height: int
    width: int
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.height < 0 or self.width < 0:
            raise OrstreamError(
                f"mask RLE: size {self.height}x{self.width} has a negative dimension"
            )
        if any(count < 0 for count in self.counts):
            raise OrstreamError("mask RLE: a run length is negative")
        total = sum(self.counts)
        if total != self.height * self.width:
            raise OrstreamError(
                f"mask RLE: runs cover {total} pixels, but a {self.height}x{self.width} "
                f"mask has {self.height * self.width}"
            )


def encode_mask(mask: np.ndarray) -> MaskRle:
    """Encodes a 2-D mask (bool, or integers where non-zero is foreground).

    Raises:
        OrstreamError: If the mask is not 2-D.
    """
    if mask.ndim != 2:
        raise OrstreamError(f"mask RLE: expected a 2-D mask, got shape {mask.shape}")
    height, width = mask.shape
    flat = np.ascontiguousarray(mask).reshape(-1).astype(bool, copy=False)
    if flat.size == 0:
        return MaskRle(height=height, width=width, counts=())
    # A run starts at 0 and wherever the value changes; the first run is background by
    # convention, so a mask starting with foreground gets an empty leading run.
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    runs = np.diff(np.append(starts, flat.size))
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return MaskRle(height=height, width=width, counts=tuple(runs.tolist()))


def decode_mask(rle: MaskRle) -> np.ndarray:
    """Decodes an RLE back to a ``bool`` array of shape ``(height, width)``."""
    counts = np.asarray(rle.counts, dtype=np.int64)
    values = np.arange(counts.size) % 2 == 1
    flat = np.repeat(values, counts)
    return flat.reshape(rle.height, rle.width)
