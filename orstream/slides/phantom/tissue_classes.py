"""The phantom's tissue classes: the pixel values of its region masks and their names."""

from __future__ import annotations

from enum import IntEnum


class TissueClass(IntEnum):
    """Region classes; the value is the pixel value in ``masks/<slide>.png``."""

    BACKGROUND = 0
    STROMA = 1
    TUMOUR = 2
    NECROSIS = 3
    FAT = 4


TISSUE_CLASS_NAMES = {c: c.name.lower() for c in TissueClass}

SUBTYPES = ("none", "glandular", "solid")
"""Slide subtypes: no tumour, gland-forming tumour (nuclei ringing lumens), solid sheets."""
