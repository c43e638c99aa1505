"""The overlay's colours (RGB, as orstream's frames are), including one fixed colour per step."""

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
