"""Text search over a stream's recent clips and the zero-shot step prompts, in orstream's types.

Both ends of the ``Search`` and ``SetPrompts`` RPCs use them: a client asks with a
:class:`SearchRequest` and reads a :class:`SearchAnswer`; it changes the prompts with a
:class:`PromptChange` and reads the prompts in force back. Conversion to protobuf lives in
``orstream.proto.convert``. Whether a text fits the model (its tokens) is the edge's to check;
what can be checked without the model is checked here, in ``__post_init__``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from orstream.labels import OUT_OF_PATIENT, STEPS

MAX_TEXT_CHARS = 1000
"""Characters of one search text or prompt: far beyond what the text encoder's tokens hold, so
the edge refuses a long text by its tokens, with the exact count; this only bounds the work."""
DEFAULT_LIMIT = 5
MAX_LIMIT = 100
"""Moments one search returns at most."""


def check_text(text: str, what: str) -> None:
    """Refuse a text that is only white space or longer than :data:`MAX_TEXT_CHARS`.

    Raises:
        ValueError: naming ``what`` the text is.
    """
    if not text.strip():
        raise ValueError(f"the {what} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the {what} has {len(text)} characters; at most {MAX_TEXT_CHARS}")


@dataclass(frozen=True)
class SearchRequest:
    """Moments of a stream's recent video that match a text.

    Attributes:
        text: what to look for.
        stream_id: the stream ("" when the runtime has exactly one).
        seconds: how far back to look in the stream's time (0: all the runtime keeps).
        limit: moments to return at most.

    Raises:
        ValueError: an empty or over-long text, a negative or non-finite ``seconds``, or a
            limit outside 1..:data:`MAX_LIMIT`.
    """

    text: str
    stream_id: str = ""
    seconds: float = 0.0
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        check_text(self.text, "search text")
        if not math.isfinite(self.seconds) or self.seconds < 0:
            raise ValueError(f"seconds must be 0 or more, not {self.seconds}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}, not {self.limit}")


@dataclass(frozen=True)
class SearchMoment:
    """A clip that matches: the frame ``index`` (at ``pts_ns``) ends it, it began at
    ``start_pts_ns``; ``score`` is the cosine similarity of text and clip (-1..1)."""

    index: int
    pts_ns: int
    start_pts_ns: int
    score: float

    def __post_init__(self) -> None:
        if not -1.0 - 1e-6 <= self.score <= 1.0 + 1e-6:
            raise ValueError(f"a cosine similarity is -1..1, not {self.score}")
        if self.start_pts_ns > self.pts_ns:
            raise ValueError("a clip cannot start after its last frame")


@dataclass(frozen=True)
class SearchAnswer:
    """The moments found, best first, at least a clip apart; ``searched`` clips were compared."""

    stream_id: str
    moments: tuple[SearchMoment, ...]
    searched: int
    model: str
    latency_ms: float

    def __post_init__(self) -> None:
        scores = [moment.score for moment in self.moments]
        if scores != sorted(scores, reverse=True):
            raise ValueError("moments must come best first")


@dataclass(frozen=True)
class PromptChange:
    """New zero-shot prompts: step code -> text; the steps not named keep theirs. With
    ``reset`` the package's prompts come back first.

    Raises:
        ValueError: no change at all, a code that is no PitVis step, or an empty or over-long
            text.
    """

    prompts: dict[int, str] = field(default_factory=dict)
    reset: bool = False

    def __post_init__(self) -> None:
        if not self.prompts and not self.reset:
            raise ValueError("no prompt to set (give prompts, or reset)")
        for code, text in self.prompts.items():
            if code != OUT_OF_PATIENT and code not in STEPS:
                raise ValueError(f"no PitVis step has code {code}")
            check_text(text, f"prompt of step {code}")
