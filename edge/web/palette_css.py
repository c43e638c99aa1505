"""The OR overlay's colours (``orstream.edge.overlay.palette``) as CSS custom properties, so
the page and the overlay burnt into the video share one palette."""

from __future__ import annotations

from orstream.edge.overlay import palette
from orstream.edge.web.dashboard_state import hex_colour

_NAMES = {
    "text": palette.TEXT,
    "muted": palette.MUTED,
    "stale-text": palette.STALE_TEXT,
    "panel": palette.PANEL,
    "track": palette.TRACK,
    "accent": palette.ACCENT,
    "starting": palette.STARTING,
    "stale": palette.STALE,
    "out-of-patient": palette.OUT_OF_PATIENT_BANNER,
    "no-signal": palette.NO_SIGNAL,
    "dark-text": palette.DARK_TEXT,
}


def palette_css() -> str:
    """``:root { --text: #f5f5f5; ... }``."""
    lines = [f"  --{name}: {hex_colour(colour)};" for name, colour in _NAMES.items()]
    return ":root {\n" + "\n".join(lines) + "\n}\n"
