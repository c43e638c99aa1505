"""The vlm job kind on a real loopback server, over a tiny vision-language package: a question
about a clip or a slide is answered with its text streamed as partial results; bad questions,
a server without a model and a cancelled answer have clear outcomes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vlm_checkpoints import FRAME_PACKAGE, INSTRUMENT_PACKAGE, tiny_vlm_package

from orstream.client.server_client import ServerClient
from orstream.errors import OrstreamError
from orstream.jobs import Job, JobInput, PartialResult
from orstream.server.job_server import JobServer, ServerSettings
from orstream.server.kinds.job_kind import JobContext, JobStopped
from orstream.server.kinds.registry import default_kinds
from orstream.server.kinds.vlm import VlmKind, VlmSettings
from orstream.slides.phantom.dataset_writer import write_slide_dataset
from orstream.streams.sources.video_file import H264Writer


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny package, a 2 s clip and a phantom slide."""
    folder = tmp_path_factory.mktemp("vlm_job")
    clip = folder / "clip.mp4"
    rng = np.random.default_rng(3)
    with H264Writer(clip, 160, 96, 10.0) as writer:
        for _ in range(20):
            writer.write(rng.integers(0, 255, (96, 160, 3), dtype=np.uint8))
    write_slide_dataset(folder / "slides", 1, seed=5, size=1024)
    return {
        "package": tiny_vlm_package(folder / "model"),
        "clip": clip,
        "slide": folder / "slides" / "slides" / "slide_001.tiff",
    }


def serve(store: Path, settings: VlmSettings | None) -> tuple[JobServer, str]:
    """A server with the vlm kind on ``settings``; (the server, its address)."""
    server = JobServer(ServerSettings(store=store, address="127.0.0.1:0"), default_kinds(settings))
    return server, f"127.0.0.1:{server.start()}"


@pytest.fixture
def address(tmp_path: Path, inputs: dict[str, Path]) -> Iterator[str]:
    server, address = serve(tmp_path / "store", VlmSettings(inputs["package"]))
    yield address
    server.stop(grace_s=0.5)


def answered(client: ServerClient, path: Path, **params: str) -> tuple[Job, list[str]]:
    """Submit a vlm job, watch it to its end; (the final job, its text pieces)."""
    job_id, _ = client.submit("vlm", [path], params=params)
    events = list(client.watch(job_id))
    pieces = [str(e.value["text"]) for e in events if isinstance(e, PartialResult)]
    final = events[-1]
    assert isinstance(final, Job)
    return final, pieces


def test_a_question_about_a_clip_and_one_about_a_slide_stream_their_answers(
    address: str, inputs: dict[str, Path]
) -> None:
    with ServerClient(address) as client:
        for name in ("clip", "slide"):
            final, pieces = answered(
                client, inputs[name], question="Which step is this?", max_new_tokens="12"
            )
            assert final.state == "succeeded", final.error
            result = final.result
            assert result is not None
            assert len(pieces) >= 2 and "".join(pieces) == result["text"]
            assert result["question"] == "Which step is this?"
            assert result["end"] in ("eos", "max_new_tokens") and 1 <= result["tokens"] <= 12
            assert result["model"].startswith("onnx:")
        # Without reasoning the answer starts with the empty reasoning, as the model was asked.
        final, pieces = answered(
            client, inputs["clip"], question="How many?", max_new_tokens="4", reasoning="false"
        )
        assert final.state == "succeeded" and pieces[0] == "<think></think>"
        assert final.result is not None and final.result["reasoning"] == ""


def test_bad_questions_and_parameters_are_refused_at_submission(
    address: str, inputs: dict[str, Path]
) -> None:
    clip = inputs["clip"]
    with ServerClient(address) as client:
        for params, words in (
            ({}, "needs the question parameter"),
            ({"question": "   "}, "the question is empty"),
            ({"question": "why? " * 200}, "at most 500"),
            ({"question": "a\x07b"}, "control characters"),
            ({"question": "why?", "max_new_tokens": "0"}, "from 1 to 1024"),
            ({"question": "why?", "temperature": "2"}, "no parameter temperature"),
            ({"question": "why?", "about": "audio"}, "clip or slide"),
        ):
            with pytest.raises(OrstreamError, match=words):
                client.submit("vlm", [clip], params=params)
        assert client.list() == []


def test_a_server_without_a_model_says_how_to_give_it_one(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    server, address = serve(tmp_path / "store", None)
    try:
        with (
            ServerClient(address) as client,
            pytest.raises(OrstreamError, match="start it with --vlm PACKAGE"),
        ):
            client.submit("vlm", [inputs["clip"]], params={"question": "why?"})
    finally:
        server.stop(grace_s=0.5)


def test_a_file_that_is_not_a_clip_fails_in_one_line(address: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with ServerClient(address) as client:
        final, pieces = answered(client, notes, question="What is seen?")
    assert final.state == "failed" and pieces == []
    assert final.error.startswith("notes.mp4: not a video file") and "\n" not in final.error


class StopAtThirdPiece:
    """Job reports that cancel the run at its third partial result (as CancelJob does)."""

    def __init__(self) -> None:
        self.context: JobContext | None = None
        self.partials: list[Mapping[str, Any]] = []

    def report_progress(self, job_id: str, attempt: int, progress: float, message: str) -> bool:
        return True

    def add_partial(self, job_id: str, attempt: int, value: Mapping[str, Any]) -> bool:
        self.partials.append(value)
        if len(self.partials) == 3 and self.context is not None:
            self.context.stop("cancelled")
        return True


def test_a_cancelled_answer_stops_decoding_at_its_next_token(inputs: dict[str, Path]) -> None:
    clip = inputs["clip"]
    job = Job(
        id="j1",
        kind="vlm",
        idempotency_key="k",
        inputs=(JobInput("clip.mp4", clip.stat().st_size, uploaded=False, path=str(clip)),),
        params={"question": "What is seen?", "max_new_tokens": "40"},
        state="running",
        attempts=1,
    )
    kind = VlmKind(VlmSettings(inputs["package"]))
    reports = StopAtThirdPiece()
    context = JobContext(job, {"clip.mp4": clip}, reports)
    reports.context = context
    with pytest.raises(JobStopped, match="cancelled"):
        kind.run(context)
    assert len(reports.partials) == 3
    # The engine is free again: the next job is answered in full.
    job = Job(**{**job.__dict__, "id": "j2", "params": {"question": "Why?", "max_new_tokens": "5"}})
    done = StopAtThirdPiece()
    result = kind.run(JobContext(job, {"clip.mp4": clip}, done))
    assert (
        result["tokens"] >= 1 and "".join(str(p["text"]) for p in done.partials) == result["text"]
    )


def test_the_command_line_asks_about_a_slide_and_watches_the_answer(
    address: str, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from orstream.cli import main

    submit = ["client", "server", "submit", "vlm", "--slide", str(inputs["slide"])]
    assert main([*submit, "--question", "Is tumour present?", "--address", address]) == 0
    job_id = capsys.readouterr().out.strip()
    assert main(["client", "server", "watch", job_id, "--address", address]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith('partial 1.0: {"text": ') for line in lines)
    assert lines[-1].startswith("result: ") and '"question": "Is tumour present?"' in lines[-1]
    with ServerClient(address) as client:
        job = client.get(job_id)
    assert job.params == {"question": "Is tumour present?", "about": "slide"}


class Reports:
    """Job reports that keep the partial results."""

    def __init__(self) -> None:
        self.partials: list[Mapping[str, Any]] = []

    def report_progress(self, job_id: str, attempt: int, progress: float, message: str) -> bool:
        return True

    def add_partial(self, job_id: str, attempt: int, value: Mapping[str, Any]) -> bool:
        self.partials.append(value)
        return True


def test_encoders_kept_elsewhere_on_the_server_are_given_to_it(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    """A package trained in another folder records encoder paths this server lacks: it answers
    once told where they are (``--vlm-frame-package`` and the like), and not before."""
    moved = tmp_path / "moved"
    shutil.copytree(inputs["package"], moved)
    card = json.loads((moved / "card.json").read_text())
    card["vlm"]["encoders"]["frame_package"] = "/trained/here/imis_segmenter"
    card["vlm"]["encoders"]["instrument_package"] = "/trained/here/instrument_classifier"
    (moved / "card.json").write_text(json.dumps(card))
    clip = inputs["clip"]
    job = Job(
        id="j1",
        kind="vlm",
        idempotency_key="k",
        inputs=(JobInput("clip.mp4", clip.stat().st_size, uploaded=False, path=str(clip)),),
        params={"question": "What is seen?", "max_new_tokens": "4"},
        state="running",
        attempts=1,
    )
    with pytest.raises(OrstreamError, match="/trained/here/imis_segmenter"):
        VlmKind(VlmSettings(moved)).run(JobContext(job, {"clip.mp4": clip}, Reports()))
    told = VlmSettings(moved, frame_package=FRAME_PACKAGE, instrument_package=INSTRUMENT_PACKAGE)
    result = VlmKind(told).run(JobContext(job, {"clip.mp4": clip}, Reports()))
    assert result["tokens"] >= 1
    with pytest.raises(OrstreamError, match="--vlm-instrument-package /nowhere: no such folder"):
        VlmSettings(moved, instrument_package=Path("/nowhere"))


@pytest.mark.parametrize(
    ("runtime", "missing", "install"),
    [("torch", "torch", "pip install torch"), ("transformers", "transformers", "vlm-hf")],
)
def test_a_runtime_whose_library_is_missing_is_refused_at_start(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    runtime: str,
    missing: str,
    install: str,
) -> None:
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == missing else found(name)
    )
    with pytest.raises(
        OrstreamError, match=f"needs {missing}, which this environment lacks.*{install}"
    ):
        VlmSettings(tmp_path, runtime=runtime)
