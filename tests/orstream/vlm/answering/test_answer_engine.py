"""The answering engine over a tiny random vlm package: streaming, the contract's limits,
sharing between threads, and both runtimes giving the same answer."""

import threading
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.vlm.answering.answer_backend import AnswerBackend, AnswerEnd, AnswerRequest
from orstream.vlm.answering.answer_engine import NO_REASONING, AnswerEngine
from orstream.vlm.answering.onnx_language import OnnxLanguage
from orstream.vlm.answering.torch_language import TorchLanguage
from orstream.vlm.text_tokenizer import TextTokenizer
from orstream.vlm.visual.visual_input import clip_frames
from tests.vlm_checkpoints import tiny_vlm_package


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vlm_package(tmp_path_factory.mktemp("vlm"))


@pytest.fixture(scope="module")
def engine(package: Path) -> Generator[AnswerEngine, None, None]:
    engine = AnswerEngine.open(package)
    yield engine
    engine.close()


def frames(seed: int, count: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 90, 160, 3), dtype=np.uint8)


def collect(stream: Generator[str, None, AnswerEnd]) -> tuple[list[str], AnswerEnd]:
    pieces = []
    while True:
        try:
            pieces.append(next(stream))
        except StopIteration as stop:
            return pieces, stop.value


def test_the_engine_keeps_the_answering_contract(engine: AnswerEngine) -> None:
    backend: AnswerBackend = engine
    pieces, end = collect(
        backend.stream(AnswerRequest("Which step?", frames=frames(0), max_new_tokens=7))
    )
    assert end == AnswerEnd("max_new_tokens", 7)
    assert len(pieces) >= 2  # streamed as decoded, not at the end
    assert backend.name == "onnx:gmai_vl_small"


def test_torch_and_onnx_give_the_same_answer(package: Path, engine: AnswerEngine) -> None:
    request = AnswerRequest("Which step is it?", frames=frames(1), max_new_tokens=9)
    torch_engine = AnswerEngine.open(package, TorchLanguage(package))
    try:
        assert collect(torch_engine.stream(request)) == collect(engine.stream(request))
    finally:
        torch_engine.close()


def test_a_clip_is_sampled_evenly_to_the_window() -> None:
    clip = np.arange(10)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    assert clip_frames(clip, 3)[:, 0, 0, 0].tolist() == [0, 4, 9]  # np.round: 4.5 -> 4
    assert clip_frames(clip[:2], 3)[:, 0, 0, 0].tolist() == [0, 0, 1]


def test_answers_asked_together_from_threads_equal_answers_alone(engine: AnswerEngine) -> None:
    requests = [
        AnswerRequest(
            "Which step?" + " Tell me." * i, frames=frames(10 + i), max_new_tokens=6 + 3 * i
        )
        for i in range(4)
    ]
    alone = [collect(engine.stream(r)) for r in requests]
    together: list[object] = [None] * 4
    start = threading.Barrier(4)

    def ask(index: int) -> None:
        start.wait()
        together[index] = collect(engine.stream(requests[index]))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert together == alone
    assert len({"".join(pieces) for pieces, _ in alone}) > 1


def test_without_reasoning_the_answer_starts_with_empty_reasoning(engine: AnswerEngine) -> None:
    request = AnswerRequest("Which step?", frames=frames(2), max_new_tokens=3, reasoning=False)
    pieces, end = collect(engine.stream(request))
    assert pieces[0] == NO_REASONING and end.tokens == 3


def test_cancel_and_deadline_end_an_answer(engine: AnswerEngine) -> None:
    asked = AnswerRequest("Which step?", frames=frames(3), max_new_tokens=50)
    seen: list[str] = []
    stream = engine.stream(asked, cancelled=lambda: len(seen) >= 2)
    while True:
        try:
            seen.append(next(stream))
        except StopIteration as stop:
            end = stop.value
            break
    assert end.reason == "cancelled" and end.tokens < 50
    late = AnswerRequest("Which step?", frames=frames(3), max_new_tokens=50, deadline_s=1e-6)
    _, end = collect(engine.stream(late))
    assert end == AnswerEnd("deadline", 0)


def test_closing_the_stream_early_frees_its_row(engine: AnswerEngine) -> None:
    stream = engine.stream(AnswerRequest("Which step?", frames=frames(4), max_new_tokens=500))
    next(stream)
    stream.close()
    deadline = time.monotonic() + 10
    while engine._decoder.rows and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not engine._decoder.rows


def test_a_slide_question_reads_the_slide_once(tmp_path: Path, engine: AnswerEngine) -> None:
    from orstream.slides.phantom.dataset_writer import write_slide_dataset

    write_slide_dataset(tmp_path, 1, seed=3, size=1024)
    slide = tmp_path / "slides" / "slide_001.tiff"
    first = collect(
        engine.stream(AnswerRequest("Is tumour present?", slide=slide, max_new_tokens=4))
    )
    again = collect(
        engine.stream(AnswerRequest("Is tumour present?", slide=slide, max_new_tokens=4))
    )
    assert first == again and first[1].tokens == 4


def test_an_engine_over_no_encoders_refuses_requests(package: Path) -> None:
    tokenizer = TextTokenizer.load(package / "tokenizer.json")
    bare = AnswerEngine(OnnxLanguage(package), tokenizer, None, eos_id=2)
    with pytest.raises(OrstreamError, match="no vision encoders"):
        next(bare.stream(AnswerRequest("Which step?", frames=frames(5))))


def test_a_frame_package_other_than_the_recorded_one_is_refused(package: Path) -> None:
    from tests.project_paths import PROJECT_ROOT

    other = PROJECT_ROOT / "edge" / "packages" / "pitvis_workflow"
    engine = AnswerEngine.open(package, frame_package=other)
    with pytest.raises(OrstreamError, match="not interactive_segmentation"):
        next(engine.stream(AnswerRequest("Which step?", frames=frames(6))))
