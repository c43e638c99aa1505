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


def write_blank_slide(path: Path, size: int = 2048) -> Path:
    """A pyramidal TIFF like the phantom's, of bare glass only: no tissue anywhere."""
    import numpy as np

    from orstream.slides.phantom.pyramid_writer import write_pyramid

    def glass(x0: int, y0: int, side: int) -> np.ndarray:
        noise = np.random.default_rng((x0, y0)).integers(-3, 4, (side, side, 1))
        return (np.array([236, 233, 238]) + noise).clip(0, 255).astype(np.uint8)

    write_pyramid(path, size, size, 0.5, glass, "blank glass", lambda *_: None)
    return path
