"""Whole-slide images: opening slides with OpenSlide, finding tissue, and tiling it at a
target magnification; ``phantom`` makes pyramidal H&E-like slides with exact ground truth."""
