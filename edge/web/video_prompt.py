"""Segmenting from the page: a click on the video (or Enter on the keyboard crosshair) is a
positive click prompt, a drag a box prompt, on the stream's latest kept frame, answered by the
same frame prompter as gRPC's ``Prompt`` (and bounded the same way: at most ``max_prompts`` at
once, more refused at once, so the segmenter's decoder never queues up behind a burst of
clicks).

The mask comes back as a PNG with transparency at the frame's size, in the overlay's colour of
prompted objects, which the page lays over the video.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Mapping
from typing import TypeGuard

import cv2
import numpy as np

from orstream.edge.models.frame_prompter import FrameNotFound, FramePrompter
from orstream.edge.overlay.palette import MASK_OPACITY, PROMPTED_CODE, segment_colour
from orstream.segmentation.mask_rle import decode_mask
from orstream.segmentation.prompt_tensors import PromptError
from orstream.segmentation.prompts import Prompt, PromptRequest

BODY_FORM = (
    'post {"stream": ID, "x": X, "y": Y} (a click) or {"stream": ID, "box": [X0, Y0, X1, Y1]} '
    "(a drag), in frame pixels"
)


class PromptRefused(Exception):
    """A prompt that cannot be answered, with the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def region_from_body(body: Mapping[str, object]) -> Prompt:
    """The prompt a page's request asks for: a positive click at ``x, y`` or a ``box``; whether
    it lies inside the frame is the segmenter's to say.

    Raises:
        PromptRefused: neither, both, or not numbers (400).
    """
    x, y, box = body.get("x"), body.get("y"), body.get("box")
    if box is None and _number(x) and _number(y):
        return Prompt(points=((float(x), float(y)),), point_labels=(1,))
    if x is None and y is None and isinstance(box, list):
        edges = [float(v) for v in box if _number(v)]
        if len(edges) == len(box) == 4 and edges[0] < edges[2] and edges[1] < edges[3]:
            return Prompt(box=(edges[0], edges[1], edges[2], edges[3]))
    raise PromptRefused(BODY_FORM, 400)


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


class VideoPrompter:
    """Segments what a click or a drag on the video points at.

    Args:
        prompter: the runtime's frame prompter (None: it runs no segmenter).
        max_prompts: prompts worked on at once (gRPC's ``max_prompts``).
    """

    def __init__(self, prompter: FramePrompter | None, max_prompts: int) -> None:
        self._prompter = prompter
        self._working = threading.BoundedSemaphore(max_prompts)

    def segment(self, stream_id: str, region: Prompt) -> dict[str, object]:
        """The mask of ``region`` on the stream's latest frame: ``{"index", "score", "width",
        "height", "png"}`` (``png`` a data URL).

        Raises:
            PromptRefused: no segmenter (409), busy (429), an unknown stream or frame (404), a
                prompt outside the frame (400).
        """
        if self._prompter is None:
            raise PromptRefused("this edge runs no segmenter (add a segmentation section)", 409)
        if not self._working.acquire(blocking=False):
            raise PromptRefused("the segmenter is busy with other prompts; try again", 429)
        try:
            request = PromptRequest(stream_id, None, region)
            answer = self._prompter.prompt(request.stream_id, request.index, request.region)
        except FrameNotFound as error:
            raise PromptRefused(str(error)[:400], 404) from None
        except (PromptError, ValueError) as error:
            raise PromptRefused(str(error)[:400], 400) from None
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
