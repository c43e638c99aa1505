"""The wsi job kind on a real loopback server: a slide uploaded or named by path is analysed
with tile progress and partial results; bad and blank slides have clear outcomes."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from slide_phantoms import write_blank_slide

from orstream.client.server_client import ServerClient
from orstream.errors import OrstreamError
from orstream.jobs import Job, JobInput, PartialResult
from orstream.server.job_server import JobServer, ServerSettings
from orstream.server.kinds.job_kind import JobContext, JobStopped
from orstream.server.kinds.registry import default_kinds
from orstream.server.kinds.wsi import WsiKind
from orstream.slides.phantom.dataset_writer import write_slide_dataset


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One phantom slide with tumour and a blank slide, in a folder the server may read."""
    folder = tmp_path_factory.mktemp("wsi_slides")
    write_slide_dataset(folder / "phantom", 3, 11, 2560)
    write_blank_slide(folder / "blank.tiff")
    return folder


@pytest.fixture
def address(tmp_path: Path, slides: Path) -> Iterator[str]:
    settings = ServerSettings(
        store=tmp_path / "store", address="127.0.0.1:0", allowed_paths=(slides,)
    )
    server = JobServer(settings, default_kinds())
    port = server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace_s=0.5)


def test_an_uploaded_slide_is_analysed_with_tile_progress(address: str, slides: Path) -> None:
    slide = slides / "phantom" / "slides" / "slide_002.tiff"
    with ServerClient(address) as client:
        job_id, _ = client.submit("wsi", [slide])
        events = list(client.watch(job_id))
    final = events[-1]
    assert isinstance(final, Job) and final.state == "succeeded", final.error
    result = final.result
    assert result is not None
    assert result["slide"] == "slide_002.tiff" and result["outcome"] == "analysed"
    assert result["class"] in ("none", "glandular", "solid")
    assert 0.0 <= result["tumour_fraction"] <= 1.0
    partials = [event.value for event in events if isinstance(event, PartialResult)]
    assert partials and partials[-1] == {"tiles_done": result["tiles"], "tiles": result["tiles"]}
    assert [p["tiles_done"] for p in partials] == sorted(p["tiles_done"] for p in partials)
    png = base64.b64decode(result["heatmap_png"])
    assert len(png) == result["heatmap_bytes"]
    heatmap = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert heatmap.shape == (512, 512, 3)


def test_a_slide_by_server_path_and_a_blank_slide(address: str, slides: Path) -> None:
    with ServerClient(address) as client:
        path = slides / "phantom" / "slides" / "slide_001.tiff"
        job_id, _ = client.submit("wsi", server_paths=[str(path)])
        final = list(client.watch(job_id))[-1]
        assert isinstance(final, Job) and final.state == "succeeded", final.error
        assert final.result is not None and final.result["tiles"] > 0
        job_id, _ = client.submit("wsi", server_paths=[str(slides / "blank.tiff")])
        blank = list(client.watch(job_id))[-1]
    assert isinstance(blank, Job) and blank.state == "succeeded"
    assert blank.result is not None
    assert blank.result["outcome"] == "no tissue" and blank.result["class"] is None


def test_a_damaged_slide_fails_its_job_in_one_line_naming_the_upload(
    address: str, slides: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.svs"
    notes.write_text("not a slide")
    whole = (slides / "phantom" / "slides" / "slide_003.tiff").read_bytes()
    cut = tmp_path / "cut.tiff"
    cut.write_bytes(whole[: len(whole) // 2])
    with ServerClient(address) as client:
        outcomes = [list(client.watch(client.submit("wsi", [f])[0]))[-1] for f in (notes, cut)]
        with pytest.raises(OrstreamError, match="wsi takes only the parameter slide_mpp"):
            client.submit("wsi", [notes], params={"tile": "7"})
    for final, name in zip(outcomes, ("notes.svs", "cut.tiff"), strict=True):
        assert isinstance(final, Job) and final.state == "failed" and final.attempts == 1
        assert final.error.startswith(f"{name}: ") and "\n" not in final.error
        assert str(tmp_path) not in final.error and "store" not in final.error
    assert outcomes[0].error == "notes.svs: not a slide format OpenSlide reads"


class StopAtFirstReport:
    """Job reports that cancel the run at its first report (as CancelJob does from another
    thread)."""

    def __init__(self) -> None:
        self.context: JobContext | None = None
        self.messages: list[str] = []
        self.partials: list[Mapping[str, Any]] = []

    def report_progress(self, job_id: str, attempt: int, progress: float, message: str) -> bool:
        self.messages.append(message)
        if self.context is not None:
            self.context.stop("cancelled")
        return True

    def add_partial(self, job_id: str, attempt: int, value: Mapping[str, Any]) -> bool:
        self.partials.append(value)
        return True


def test_a_cancelled_wsi_run_stops_at_its_next_report(slides: Path) -> None:
    slide = slides / "phantom" / "slides" / "slide_001.tiff"
    job = Job(
        id="j1",
        kind="wsi",
        idempotency_key="k",
        inputs=(JobInput("slide_001.tiff", slide.stat().st_size, uploaded=False, path=str(slide)),),
        params={},
        state="running",
        attempts=1,
    )
    reports = StopAtFirstReport()
    context = JobContext(job, {"slide_001.tiff": slide}, reports)
    reports.context = context
    with pytest.raises(JobStopped, match="cancelled"):
        WsiKind().run(context)
    # It stopped at the tile report that follows, before reading any tile.
    assert reports.messages == ["finding tissue"] and reports.partials == []
