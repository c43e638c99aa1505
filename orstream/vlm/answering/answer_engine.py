"""The project's vision-language model as an
:class:`~orstream.vlm.answering.answer_backend.AnswerBackend`, answering concurrent requests in one
batch.

One engine serves a package on one runtime (ONNX Runtime or torch) and is shared by the
server's worker threads: each ``stream()`` encodes its request's clip or slide in the caller's
thread (the encoders run beside the decoding), then hands the prompt to the engine's decoding
thread and yields text pieces as that thread decodes them. The decoding thread admits every
prompt waiting at each step into the running batch (:mod:`orstream.vlm.answering.batch_decoding`),
up to ``max_batch`` rows, so a request that arrives while others are being answered joins them at
the next token instead of waiting for them to finish; its answer is the one it would get alone.

Text streams as it is decoded: each token's piece is the text the answer's tokens decode to
now, less what was sent; a piece that would end inside a multi-byte character waits for the
token that completes it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage
from orstream.vlm.answering.answer_backend import AnswerEnd, AnswerRequest
from orstream.vlm.answering.batch_decoding import BatchDecoder, PreparedPrompt, Row
from orstream.vlm.answering.language_runtime import LanguageRuntime
from orstream.vlm.answering.onnx_language import open_vlm_package, vlm_section
from orstream.vlm.prompt_layout import prompt_ids
from orstream.vlm.questions.question_items import THINK_CLOSE, THINK_OPEN
from orstream.vlm.text_tokenizer import TextTokenizer
from orstream.vlm.visual.visual_input import VisualEncoders

DEFAULT_MAX_BATCH = 8
NO_REASONING = THINK_OPEN + THINK_CLOSE
"""What an answer without reasoning starts with: the reasoning, empty."""
_END = object()


def question_text(question: str) -> str:
    """The prompt text of a free question, laid out as the training questions are."""
    return f"Question: {question.strip()}\nAnswer: "


@dataclass(frozen=True)
class _Submitted:
    row: Row
    events: queue.SimpleQueue[object]


class AnswerEngine:
    """Args:
    runtime: the loaded language model.
    tokenizer: its text tokenizer.
    encoders: what turns a request's clip or slide into features (None: prepared prompts
        only, as the bench feeds).
    eos_id: the end-of-text id.
    model_name: for :attr:`name`.
    max_batch: the most answers decoded together.
    recompute: decode without the KV cache (the bench's baseline).
    """

    def __init__(
        self,
        runtime: LanguageRuntime,
        tokenizer: TextTokenizer,
        encoders: VisualEncoders | None,
        *,
        eos_id: int,
        model_name: str = "gmai_vl_small",
        max_batch: int = DEFAULT_MAX_BATCH,
        recompute: bool = False,
    ) -> None:
        if max_batch < 1:
            raise OrstreamError(f"max_batch must be at least 1, not {max_batch}")
        self.runtime, self.tokenizer, self.encoders = runtime, tokenizer, encoders
        self.name = f"{runtime.name}:{model_name}" + (":recompute" if recompute else "")
        self.max_batch = max_batch
        self._decoder = BatchDecoder(runtime, eos_id, recompute)
        self._waiting: queue.SimpleQueue[_Submitted | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(
        cls,
        package: Path | ModelPackage,
        language: LanguageRuntime | None = None,
        *,
        threads: int = 1,
        frame_package: Path | None = None,
        slide_package: Path | None = None,
        instrument_package: Path | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        recompute: bool = False,
    ) -> AnswerEngine:
        """An engine over a vision-language package, its encoders as the card records them
        unless given (:class:`~orstream.vlm.visual.visual_input.VisualEncoders`).

        Args:
            language: its language model loaded on a runtime (None: ONNX Runtime with
                ``threads``; torch: ``orstream.vlm.answering.torch_language``).

        Raises:
            OrstreamError: as the runtimes' loading (a file or the golden reference wrong).
        """
        opened = open_vlm_package(package)
        spec = vlm_section(opened)
        if language is None:
            from orstream.vlm.answering.onnx_language import OnnxLanguage

            language = OnnxLanguage(opened, threads)
        return cls(
            language,
            TextTokenizer.load(opened.root / spec.tokenizer_file),
            VisualEncoders(spec.encoders, frame_package, slide_package, instrument_package),
            eos_id=spec.language.eos_id,
            model_name=opened.card.name,
            max_batch=max_batch,
            recompute=recompute,
        )

    def stream(
        self, request: AnswerRequest, cancelled: Callable[[], bool] = lambda: False
    ) -> Generator[str, None, AnswerEnd]:
        """The answer to ``request`` as text pieces (the contract's ``stream``)."""
        started = time.monotonic()
        if self.encoders is None:
            raise OrstreamError("this engine has no vision encoders: it answers prepared prompts")
        features = self.encoders.features(request)
        prompt = self.prepare(
            question_text(request.question), request.source, features, reasoning=request.reasoning
        )
        if not request.reasoning:
            yield NO_REASONING
        deadline = None if request.deadline_s is None else started + request.deadline_s
        return (
            yield from self.stream_prepared(prompt, request.max_new_tokens, deadline, cancelled)
        )

    def prepare(
        self, text: str, source: str, features: np.ndarray, reasoning: bool = True
    ) -> PreparedPrompt:
        """The prompt of ``text`` about ``features`` [N, F] of ``source``; without
        ``reasoning`` the answer's empty reasoning is part of it."""
        ids = prompt_ids(self.tokenizer, len(features), text)
        if not reasoning:
            ids += self.tokenizer.encode(NO_REASONING)
        return PreparedPrompt(tuple(ids), source, features, self.tokenizer.image_id)

    def stream_prepared(
        self,
        prompt: PreparedPrompt,
        max_new_tokens: int,
        deadline: float | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Generator[str, None, AnswerEnd]:
        """Text pieces of the answer to a prepared prompt; ``deadline`` is a
        ``time.monotonic()`` time. Closing the generator early cancels the answer."""
        events: queue.SimpleQueue[object] = queue.SimpleQueue()
        abandoned = threading.Event()

        def ended(end: AnswerEnd) -> None:
            events.put(end)
            events.put(_END)

        row = Row(
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            deadline=deadline,
            cancelled=lambda: abandoned.is_set() or cancelled(),
            on_token=events.put,
            on_end=ended,
        )
        self._submit(_Submitted(row, events))
        ids: list[int] = []
        sent = ""
        end: AnswerEnd | None = None
        try:
            while True:
                event = events.get()
                if event is _END:
                    break
                if isinstance(event, AnswerEnd):
                    end = event
                elif isinstance(event, BaseException):
                    raise OrstreamError(f"the {self.name} model failed: {event}") from event
                else:
                    assert isinstance(event, int)
                    ids.append(event)
                    text = self.tokenizer.decode(ids)
                    if len(text) > len(sent) and not text.endswith("\ufffd"):
                        yield text[len(sent) :]
                        sent = text
        finally:
            abandoned.set()
        text = self.tokenizer.decode(ids)
        if text != sent:
            yield text[len(sent) :]
        assert end is not None
        return end

    def close(self) -> None:
        """Stop the decoding thread once the answers under way end (new ones are refused)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._waiting.put(None)
            thread.join()

    def _submit(self, submitted: _Submitted) -> None:
        with self._lock:
            if self._closed:
                raise OrstreamError(f"the {self.name} engine is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._decode_loop, name="vlm-decoding", daemon=True
                )
                self._thread.start()
            self._waiting.put(submitted)

    def _decode_loop(self) -> None:
        """Admit what waits, take one step, repeat; sleep while nothing runs."""
        decoder = self._decoder
        running: dict[int, _Submitted] = {}
        stopping = False
        while not (stopping and not decoder.rows):
            joining: list[_Submitted] = []
            block = not decoder.rows and not stopping
            while len(decoder) + len(joining) < self.max_batch:
                try:
                    item = self._waiting.get(block=block)
                except queue.Empty:
                    break
                block = False
                if item is None:
                    stopping = True
                    break
                joining.append(item)
            try:
                if joining:
                    running.update({id(s.row): s for s in joining})
                    decoder.admit([s.row for s in joining])
                if decoder.rows:
                    decoder.step()
            except Exception as error:  # a runtime failure ends every answer under way
                decoder.fail()
                for submitted in running.values():
                    submitted.events.put(error)
                    submitted.events.put(_END)
            live = {id(row) for row in decoder.rows}
            running = {key: s for key, s in running.items() if key in live}
