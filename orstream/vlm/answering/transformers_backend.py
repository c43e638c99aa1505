"""Answering with a user's own Hugging Face vision-language model, read from a local folder.

The project's VLM is small and trained on the phantoms; a user who has real weights (a Qwen2-VL
or LLaVA checkpoint in the Hugging Face layout, copied onto the machine) serves them through the
same :class:`~orstream.vlm.answering.answer_backend.AnswerBackend` contract, so the ``vlm`` job kind
and the edge's ``Ask`` need not know which model answers. Nothing is ever downloaded: the folder is
read with ``local_files_only`` and no code from it is run (``trust_remote_code`` stays off).

Each layout gets the clip the way its model was trained to see one: Qwen2-VL reads frames as a
video (its vision tower merges pairs of frames), LLaVA reads a few frames as separate images. A
slide is shown as its thumbnail. The prompt is built with the folder's own chat template, so the
model sees the turn markers it was tuned on.

Answers take the project's form, ``<think>reasoning</think><answer>answer</answer>``, which the
server and the client split: the question carries R1-V's instruction to write it (a model tuned
as GMAI-VL-R1 was knows it; another mostly follows it). A request without reasoning asks for
the tagged answer alone and opens the model's turn with an empty ``<think></think>``, streamed
as the first piece, as the project's own model does.

Answers decode greedily (the folder's sampling settings are not used), so one question about
one clip always gets one answer. Generation runs in a thread and its text comes back through
transformers' ``TextIteratorStreamer``; a stopping criterion ends it at the deadline or when
``cancelled()`` answers True (it is called from that thread, once per decoded token).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from orstream.errors import OrstreamError
from orstream.vlm.answering.answer_backend import AnswerEnd, AnswerRequest, EndReason
from orstream.vlm.questions.question_items import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

Layout = Literal["video", "images"]

LAYOUTS: dict[str, Layout] = {"qwen2_vl": "video", "llava": "images"}
"""The ``model_type`` values served, and how each layout's model reads a clip."""

DEFAULT_MAX_FRAMES: dict[Layout, int] = {"video": 8, "images": 4}
"""Frames of a clip shown by default: a LLaVA image costs 576 tokens of a 4096-token context,
a Qwen2-VL video a fraction of that per frame."""

DTYPES = ("float32", "bfloat16", "float16")

REASONING_INSTRUCTION = (
    f"First output the thinking process in {THINK_OPEN} {THINK_CLOSE} tags and then output "
    f"the final answer in {ANSWER_OPEN} {ANSWER_CLOSE} tags."
)
"""Follows the question when reasoning is asked for (R1-V's and VLM-R1's prompt)."""
ANSWER_INSTRUCTION = f"Output the final answer in {ANSWER_OPEN} {ANSWER_CLOSE} tags."
"""Follows the question when the answer alone is asked for."""
NO_REASONING = THINK_OPEN + THINK_CLOSE
"""What the model's turn opens with when the answer alone is asked for."""

SLIDE_IMAGE_SIDE = 1024
"""The longest side of the slide thumbnail shown to the model: the thumbnail reaches 2048 px,
thousands of visual tokens for a Qwen2-VL processor."""


def read_layout(folder: Path) -> tuple[str, Layout]:
    """The ``model_type`` of the Hugging Face model in ``folder`` and how it reads a clip.

    Raises:
        OrstreamError: the folder is missing, holds no readable ``config.json``, or holds a
            text-only model or a vision-language model of a layout not served here.
    """
    if not folder.is_dir():
        raise OrstreamError(f"{folder}: no such model folder")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise OrstreamError(f"{folder}: not a Hugging Face model folder (no config.json)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OrstreamError(f"{config_file}: cannot read it as JSON: {error}") from error
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str):
        raise OrstreamError(f"{config_file}: names no model_type")
    supported = ", ".join(sorted(LAYOUTS))
    if model_type not in LAYOUTS:
        if "vision_config" not in config:
            raise OrstreamError(
                f"{folder}: a text-only model ({model_type}); answering about clips and slides "
                f"needs a vision-language model (model_type one of {supported})"
            )
        raise OrstreamError(
            f"{folder}: a {model_type} model, not a vision-language layout served here "
            f"(model_type one of {supported})"
        )
    return model_type, LAYOUTS[model_type]


class TransformersBackend:
    """A local Hugging Face vision-language model answering :class:`AnswerRequest` s; answers
    asked for at once stream at once, each generating in its own thread on the one model.

    Args:
        folder: the model folder (``config.json``, weights, the processor's and tokenizer's
            files and a chat template), as ``save_pretrained`` writes it.
        device: where the model runs (``cpu``, ``cuda``, ``cuda:1``).
        dtype: the weights' type: ``float32``, ``bfloat16`` or ``float16``.
        max_frames: the most frames of a clip shown, evenly spaced over it (None: 8 for a
            video layout, 4 for an images layout).

    Raises:
        OrstreamError: a bad argument, a missing or unsupported folder (see
            :func:`read_layout`), missing libraries, or a folder transformers cannot load
            (no weights, weights that do not match the config, no chat template).
    """

    def __init__(
        self,
        folder: Path,
        device: str = "cpu",
        dtype: str = "float32",
        max_frames: int | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise OrstreamError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        if max_frames is not None and max_frames < 1:
            raise OrstreamError(f"max_frames must be at least 1, not {max_frames}")
        model_type, self.layout = read_layout(folder)
        try:
            import torch
            import transformers
        except ImportError as error:
            raise OrstreamError(
                "the transformers backend needs torch and transformers "
                "(pip install 'orstream[vlm-hf]')"
            ) from error
        try:
            self._device = torch.device(device)
        except RuntimeError as error:
            raise OrstreamError(f"not a torch device: {device!r}") from error
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise OrstreamError(f"device {device!r} asked for, but torch sees no CUDA GPU")
        self._dtype = getattr(torch, dtype)
        self.max_frames = max_frames or DEFAULT_MAX_FRAMES[self.layout]
        self.name = f"transformers:{folder.name}"
        try:
            self._processor = transformers.AutoProcessor.from_pretrained(
                folder, local_files_only=True, trust_remote_code=False
            )
            # With output_loading_info the model comes as (model, info), which the stubs miss.
            loaded: Any = transformers.AutoModelForImageTextToText.from_pretrained(
                folder,
                local_files_only=True,
                trust_remote_code=False,
                dtype=self._dtype,
                output_loading_info=True,
            )
        except Exception as error:  # a folder's faults come as OSError, ValueError, config
            # validators' own errors and more; the cause stays chained
            raise OrstreamError(
                f"{folder}: transformers cannot load the {model_type} model: "
                f"{type(error).__name__}: {error}"
            ) from error
        model, info = loaded
        if info["missing_keys"]:
            missing = sorted(info["missing_keys"])
            raise OrstreamError(
                f"{folder}: the weights lack {len(missing)} of the model's tensors "
                f"(e.g. {missing[0]}); they are not this config's checkpoint"
            )
        if not getattr(self._processor, "chat_template", None):
            raise OrstreamError(
                f"{folder}: the processor has no chat template (chat_template.jinja or "
                "chat_template.json), so the prompt's turn markers are unknown"
            )
        self._model = model.to(self._device).eval()
        eos = self._model.generation_config.eos_token_id
        self._eos_ids = {eos} if isinstance(eos, int) else set(eos or ())

    def stream(
        self, request: AnswerRequest, cancelled: Callable[[], bool] = lambda: False
    ) -> Generator[str, None, AnswerEnd]:
        """Text pieces of the answer as they are decoded; returns how it ended.

        Raises:
            OrstreamError: the request's slide cannot be read.
        """
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        started = time.monotonic()
        if cancelled():
            return AnswerEnd("cancelled", 0)
        inputs = self._inputs(request).to(self._device, dtype=self._dtype)
        if not request.reasoning:
            yield NO_REASONING
        prompt_tokens = int(inputs["input_ids"].shape[1])
        stop = _Stop(started, request.deadline_s, cancelled)
        streamer = TextIteratorStreamer(
            self._processor.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        outcome: dict[str, Any] = {}

        def generate() -> None:
            try:
                with torch.inference_mode():
                    outcome["sequences"] = self._model.generate(
                        **inputs,
                        streamer=streamer,
                        max_new_tokens=request.max_new_tokens,
                        do_sample=False,
                        stopping_criteria=StoppingCriteriaList([stop]),
                    )
            except BaseException as error:  # handed to the consumer, re-raised there
                outcome["error"] = error
                streamer.end()  # the consumer would otherwise wait for text forever

        thread = threading.Thread(target=generate, name="orstream-hf-generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stop.abandoned.set()  # a consumer that stops listening ends generation too
            thread.join()
        if "error" in outcome:
            raise outcome["error"]
        answer = outcome["sequences"][0, prompt_tokens:]
        tokens = len(answer)
        reason: EndReason
        if stop.reason is not None:
            reason = stop.reason
        elif tokens and int(answer[-1]) in self._eos_ids:
            reason = "eos"
        else:
            reason = "max_new_tokens"
        return AnswerEnd(reason, tokens)

    def _inputs(self, request: AnswerRequest) -> Any:
        """The processor's tensors for the request: the chat-templated prompt with the clip as
        a video or as images, or the slide's thumbnail as an image, the answer's form asked for
        after the question."""
        if request.frames is not None:
            frames = pick_frames(request.frames, self.max_frames)
            if self.layout == "video":
                visual: list[dict[str, str]] = [{"type": "video"}]
                media: dict[str, Any] = {"videos": [frames]}
            else:
                visual = [{"type": "image"}] * len(frames)
                media = {"images": list(frames)}
        else:
            assert request.slide is not None  # AnswerRequest holds frames or a slide
            visual = [{"type": "image"}]
            media = {"images": [slide_image(request.slide)]}
        instruction = REASONING_INSTRUCTION if request.reasoning else ANSWER_INSTRUCTION
        text = f"{request.question.strip()} {instruction}"
        messages = [{"role": "user", "content": [*visual, {"type": "text", "text": text}]}]
        prompt = self._processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        if not request.reasoning:
            prompt += NO_REASONING
        return self._processor(text=[prompt], return_tensors="pt", **media)


def pick_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """At most ``count`` of ``frames``, evenly spaced from the first to the last, in order."""
    if len(frames) <= count:
        return frames
    return frames[np.linspace(0, len(frames) - 1, count).round().astype(int)]


def slide_image(path: Path) -> np.ndarray:
    """The slide's thumbnail as RGB uint8, its longest side at most ``SLIDE_IMAGE_SIDE``.

    Raises:
        OrstreamError: the slide cannot be opened or read.
    """
    import cv2

    from orstream.slides.slide_file import open_slide
    from orstream.slides.tissue_mask import thumbnail

    with open_slide(path) as slide:
        image, _ = thumbnail(slide)
    height, width = image.shape[:2]
    scale = SLIDE_IMAGE_SIDE / max(height, width)
    if scale < 1:
        size = (max(round(width * scale), 1), max(round(height * scale), 1))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


class _Stop:
    """A transformers stopping criterion: ends generation at the deadline, on cancellation, or
    when the consumer stops reading, and remembers which."""

    def __init__(
        self, started: float, deadline_s: float | None, cancelled: Callable[[], bool]
    ) -> None:
        self._ends_at = None if deadline_s is None else started + deadline_s
        self._cancelled = cancelled
        self.abandoned = threading.Event()
        self.reason: EndReason | None = None

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if self.abandoned.is_set() or self._cancelled():
            self.reason = "cancelled"
        elif self._ends_at is not None and time.monotonic() >= self._ends_at:
            self.reason = "deadline"
        done = self.reason is not None
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)
