"""The overlay's colours (RGB, as orstream's frames are): one fixed colour per step and per
segmentation class."""

from __future__ import annotations

import numpy as np

from orstream.labels import OUT_OF_PATIENT, STEPS

Colour = tuple[int, int, int]

TEXT: Colour = (245, 245, 245)
MUTED: Colour = (175, 182, 190)
STALE_TEXT: Colour = (125, 125, 125)
PANEL: Colour = (14, 17, 22)
TRACK: Colour = (58, 62, 70)
ACCENT: Colour = (86, 196, 255)
STARTING: Colour = (120, 200, 255)
STALE: Colour = (255, 176, 0)
OUT_OF_PATIENT_BANNER: Colour = (38, 84, 170)
NO_SIGNAL: Colour = (200, 24, 32)
DARK_TEXT: Colour = (10, 10, 10)

PANEL_OPACITY = 0.62
"""Opacity of the dark panels behind text: enough contrast, and the tissue still shows through."""

# Sasha Trubetskoy's distinct colours, bright ones first, so neighbouring steps never look alike
# and every step keeps its colour across streams and runs.
STEP_COLOURS: dict[int, Colour] = {
    1: (230, 25, 75),
    2: (60, 180, 75),
    3: (255, 225, 25),
    4: (0, 130, 200),
    5: (245, 130, 48),
    6: (145, 30, 180),
    7: (70, 240, 240),
    8: (240, 50, 230),
    9: (210, 245, 60),
    10: (250, 190, 212),
    11: (0, 128, 128),
    12: (220, 190, 255),
    13: (170, 110, 40),
    14: (170, 255, 195),
    OUT_OF_PATIENT: (128, 128, 128),
}

STEP_COLOUR_TABLE = np.zeros((max(STEPS) + 2, 3), np.uint8)
"""``STEP_COLOUR_TABLE[code]`` is the colour of step ``code`` (row -1, the last, out of patient)."""
for _code, _colour in STEP_COLOURS.items():
    STEP_COLOUR_TABLE[_code] = _colour


def step_colour(code: int) -> Colour:
    """The colour of a step code (grey for codes outside PitVis)."""
    return STEP_COLOURS.get(code, STEP_COLOURS[OUT_OF_PATIENT])


def readable_on(colour: Colour) -> Colour:
    """Dark or light text, whichever reads better on ``colour``."""
    red, green, blue = colour
    return DARK_TEXT if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else TEXT


MASK_OPACITY = 0.4
"""Opacity of a segmentation mask's fill: the class colour reads clearly and the tissue under it
still shows (the outline is drawn solid)."""

PROMPTED_CODE = 0
"""Segmentation code of an object prompted by clicks or a box alone (no class)."""

# Sasha Trubetskoy's twenty distinct colours, one per segmentation class. Endoscopic tissue is
# red, pink and orange, so the colours that stand out on it (cyan, magenta, greens, blue,
# violets) go to the anatomy, to prompted objects and to the instruments PitVis shows most often;
# the reds and browns go to the rarest.
SEGMENT_COLOURS: dict[int, Colour] = {
    PROMPTED_CODE: (255, 225, 25),
    101: (170, 255, 195),  # sella
    16: (70, 240, 240),  # suction
    8: (240, 50, 230),  # kerrisons
    11: (60, 180, 75),  # pituitary_rongeurs
    13: (0, 130, 200),  # ring_curette
    2: (210, 245, 60),  # cottle
    5: (220, 190, 255),  # freer_elevator
    1: (145, 30, 180),  # bipolar_forceps
    17: (0, 128, 128),  # surgical_drill
    12: (255, 255, 255),  # retractable_knife
    4: (245, 130, 48),  # dural_scissors
    10: (128, 128, 0),  # nasal_cutting_forceps
    3: (0, 0, 128),  # cup_forceps
    14: (250, 190, 212),  # spatula_dissector
    15: (255, 250, 200),  # stealth_pointer
    6: (170, 110, 40),  # haemostatic_foam
    7: (255, 215, 180),  # irrigation_syringe
    9: (230, 25, 75),  # micro_doppler
    18: (128, 0, 0),  # tissue_glue
}

UNKNOWN_SEGMENT: Colour = (128, 128, 128)
"""The colour of a segmentation code orstream has no colour for (a package's own class)."""


def segment_colour(code: int) -> Colour:
    """The colour of a segmentation class code (grey for codes outside orstream's classes)."""
    return SEGMENT_COLOURS.get(code, UNKNOWN_SEGMENT)
