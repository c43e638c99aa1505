"""Click-to-segment from the page: a click on the video is a positive click prompt on the
stream's latest kept frame, answered by the same frame prompter as gRPC's ``Prompt`` (and
bounded the same way: at most ``max_prompts`` at once, more refused at once, so the
segmenter's decoder never queues up behind a burst of clicks).

The mask comes back as a PNG with transparency at the frame's size, in the overlay's colour of
prompted objects, which the page lays over the video.
"""

from __future__ import annotations

import base64
import threading

import cv2
import numpy as np

from orstream.edge.models.frame_prompter import FrameNotFound, FramePrompter
from orstream.edge.models.segmenter_model import PromptError
from orstream.edge.overlay.palette import MASK_OPACITY, PROMPTED_CODE, segment_colour
from orstream.mask_rle import decode_mask
from orstream.prompts import Prompt, PromptRequest


class ClickRefused(Exception):
    """A click that cannot be answered, with the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ClickPrompter:
    """Segments what a click points at.

    Args:
        prompter: the runtime's frame prompter (None: it runs no segmenter).
        max_prompts: clicks worked on at once (gRPC's ``max_prompts``).
    """

    def __init__(self, prompter: FramePrompter | None, max_prompts: int) -> None:
        self._prompter = prompter
        self._working = threading.BoundedSemaphore(max_prompts)

    def segment(self, stream_id: str, x: float, y: float) -> dict[str, object]:
        """The mask at frame pixel ``(x, y)`` of the stream's latest frame: ``{"index",
        "score", "width", "height", "png"}`` (``png`` a data URL).

        Raises:
            ClickRefused: no segmenter (409), busy (429), an unknown stream or frame (404), a
                click outside the frame (400).
        """
        if self._prompter is None:
            raise ClickRefused("this edge runs no segmenter (add a segmentation section)", 409)
        if not self._working.acquire(blocking=False):
            raise ClickRefused("the segmenter is busy with other prompts; click again", 429)
        try:
            request = PromptRequest(stream_id, None, Prompt(points=((x, y),), point_labels=(1,)))
            answer = self._prompter.prompt(request.stream_id, request.index, request.region)
        except FrameNotFound as error:
            raise ClickRefused(str(error)[:400], 404) from None
        except (PromptError, ValueError) as error:
            raise ClickRefused(str(error)[:400], 400) from None
        finally:
            self._working.release()
        best = answer.masks[0]
        mask = decode_mask(best.mask)
        return {
            "index": answer.index,
            "score": round(best.score, 3),
            "width": mask.shape[1],
            "height": mask.shape[0],
            "png": mask_png(mask),
        }


def mask_png(mask: np.ndarray) -> str:
    """A boolean mask as a data URL: the prompted objects' colour, translucent, with a solid
    outline, as the overlay draws masks; transparent elsewhere."""
    red, green, blue = segment_colour(PROMPTED_CODE)
    image = np.zeros((*mask.shape, 4), np.uint8)
    image[mask] = (blue, green, red, round(255 * MASK_OPACITY))  # OpenCV writes BGRA
    outline = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3)))
    image[outline > 0] = (blue, green, red, 255)
    ok, png = cv2.imencode(".png", image)
    assert ok
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()
