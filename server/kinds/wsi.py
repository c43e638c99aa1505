"""Job kind ``wsi``: a whole-slide image's class, tumour fraction and tumour heatmap.

The same analysis as ``orstream wsi analyze`` (:mod:`orstream.slides.slide_analysis`) with the
server's slide package (the one shipped with orstream unless the kind is given another).
While tiles are encoded the job reports its progress (tiles done of all) and, at every tenth of
the tiles, a partial result ``{"tiles_done": d, "tiles": n}``.

The result is the analysis report (``class``, ``tumour_fraction``, ``probabilities``, tile
counts, timings; ``outcome`` is ``no tissue`` and ``class`` null for a slide without a tile of
tissue) plus the heatmap: ``heatmap_png`` holds the PNG's bytes in base64, the thumbnail with
each tile tinted by its tumour probability, at most :data:`HEATMAP_SIDE` pixels on its longer
side so the result stays small in the store and on the wire. A slide the server cannot read
fails its job with one line naming the input as the client named it.

Input: one slide file OpenSlide reads (SVS, generic tiled TIFF, NDPI and other single-file
formats), uploaded or by server path. Parameter: ``slide_mpp``, the slide's level-0 µm per
pixel, for a slide that does not say.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orstream.errors import OrstreamError
from orstream.jobs import JobSubmission
from orstream.server.kinds.job_kind import JobContext

HEATMAP_SIDE = 1024
PARTIALS = 10
"""Partial results per job: one at every tenth of the tiles."""


class WsiKind:
    """The ``wsi`` job kind (see the module's docstring).

    Args:
        package: the slide package (default: the one shipped with orstream).
    """

    name = "wsi"
    description = "a slide's class, tumour fraction and tumour heatmap (PNG) from a slide package"

    def __init__(self, package: Path | None = None) -> None:
        self.package = package

    def check(self, submission: JobSubmission) -> None:
        """One input, and at most the ``slide_mpp`` parameter.

        Raises:
            OrstreamError: otherwise.
        """
        if len(submission.inputs) != 1:
            raise OrstreamError(f"wsi takes one slide input, not {len(submission.inputs)}")
        _slide_mpp(submission.params)

    def run(self, context: JobContext) -> Mapping[str, Any]:
        """Analyse the job's slide, reporting tiles as they are encoded."""
        from orstream.slides.heatmap_image import encode_png
        from orstream.slides.slide_analysis import analyze_slide
        from orstream.slides.slide_models import SlideModels

        slide_mpp = _slide_mpp(context.params)
        ((name, path),) = context.inputs.items()
        context.progress(0.0, "finding tissue")
        models = SlideModels(self.package)
        reported = [0]

        def on_tiles(done: int, total: int) -> None:
            context.progress(0.99 * done / total if total else 0.0, f"tile {done} of {total}")
            tenth = done * PARTIALS // total if total else 0
            if tenth > reported[0]:
                reported[0] = tenth
                context.partial({"tiles_done": done, "tiles": total})

        try:
            analysis = analyze_slide(path, models, slide_mpp=slide_mpp, on_tiles=on_tiles)
        except OrstreamError as error:
            raise OrstreamError(str(error).replace(str(path), name)) from None
        png = encode_png(analysis.heatmap(), HEATMAP_SIDE)
        report = analysis.report()
        return {
            **report,
            "slide": name,
            "heatmap_png": base64.b64encode(png).decode("ascii"),
            "heatmap_bytes": len(png),
        }


def _slide_mpp(params: Mapping[str, str]) -> float | None:
    unknown = sorted(set(params) - {"slide_mpp"})
    if unknown:
        raise OrstreamError(f"wsi takes only the parameter slide_mpp, not {', '.join(unknown)}")
    text = params.get("slide_mpp")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise OrstreamError(f"slide_mpp {text[:40]!r}: not a number of µm per pixel") from None
    if not 0.0 < value < 1000.0:
        raise OrstreamError(f"slide_mpp {value:g}: must be above 0 and below 1000 µm per pixel")
    return value
