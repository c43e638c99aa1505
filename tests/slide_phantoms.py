"""The small slide phantom the slide tests share: how it is made and what it holds."""

from pathlib import Path

from orstream.slides.phantom.dataset_writer import write_slide_dataset

PHANTOM_SLIDES = 4
PHANTOM_SIZE = 2560
PHANTOM_SEED = 11


def write_test_slides(out: Path) -> Path:
    """Four 2560 x 2560 phantom slides (each subtype at least once) under ``out``."""
    write_slide_dataset(out, PHANTOM_SLIDES, PHANTOM_SEED, PHANTOM_SIZE)
    return out
