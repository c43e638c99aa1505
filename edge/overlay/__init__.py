"""Operating-room display overlays: single-purpose annotators drawn on the live video.

``Overlay.default().draw(image, context)`` returns the frame with the latest segmentation masks,
the current step, the step timeline, the instruments, the out-of-patient banner, the HUD and the
STALE / NO SIGNAL markers.
"""

from orstream.edge.overlay.annotator import Annotator
from orstream.edge.overlay.banner import OutOfPatientBanner
from orstream.edge.overlay.context import OverlayContext
from orstream.edge.overlay.hud import HudAnnotator
from orstream.edge.overlay.instruments import InstrumentsAnnotator
from orstream.edge.overlay.markers import NoSignalMarker, StaleMarker
from orstream.edge.overlay.masks import MasksAnnotator
from orstream.edge.overlay.overlay import Overlay
from orstream.edge.overlay.step import StepAnnotator
from orstream.edge.overlay.timeline import TimelineAnnotator

__all__ = [
    "Annotator",
    "HudAnnotator",
    "InstrumentsAnnotator",
    "MasksAnnotator",
    "NoSignalMarker",
    "OutOfPatientBanner",
    "Overlay",
    "OverlayContext",
    "StaleMarker",
    "StepAnnotator",
    "TimelineAnnotator",
]
