"""An answer printed as it streams: the reasoning dimmed, the answer plain, the tags left out.

Answers come as ``<think>REASONING</think><answer>ANSWER</answer>`` in pieces that may split a
tag anywhere, so text that could still be the start of a tag is held back until the next piece
says what it is. On a terminal the reasoning is dimmed (ANSI faint); elsewhere it is written as
``reasoning: ...`` and ``answer: ...`` lines, so logs and pipes read the same.
"""

from __future__ import annotations

from typing import TextIO

from orstream.vlm.questions.question_items import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

_TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
_DIM, _PLAIN = "\033[2m", "\033[0m"


class AnswerPrinter:
    """Writes an answer's pieces to ``out`` as they come (``styled``: ANSI dimming)."""

    def __init__(self, out: TextIO, styled: bool) -> None:
        self.out, self.styled = out, styled
        self._held = ""
        self._part = ""  # "", "think" or "answer": where the text now goes
        self.text = ""
        """Everything received, tags included."""

    def feed(self, piece: str) -> None:
        """Print what ``piece`` completes."""
        self.text += piece
        self._held += piece
        while self._held:
            start = self._held.find("<")
            if start < 0:
                self._write(self._held)
                self._held = ""
                break
            self._write(self._held[:start])
            rest = self._held[start:]
            tag = next((t for t in _TAGS if rest.startswith(t)), None)
            if tag is not None:
                self._enter(tag)
                self._held = rest[len(tag) :]
                continue
            if any(t.startswith(rest) for t in _TAGS):
                self._held = rest  # maybe a tag: wait for the next piece
                break
            self._write("<")
            self._held = rest[1:]
        self.out.flush()

    def restart(self) -> None:
        """The answer starts over (its job runs again): a new line, and nothing held."""
        self._close_part()
        self.out.write("(answering again)\n")
        self._held, self._part, self.text = "", "", ""

    def finish(self) -> None:
        """Print what is held and end the line."""
        self._write(self._held)
        self._held = ""
        self._close_part()
        self.out.flush()

    def _enter(self, tag: str) -> None:
        self._close_part()
        if tag == THINK_OPEN:
            self._part = "think"
            self.out.write(_DIM if self.styled else "reasoning: ")
        elif tag == ANSWER_OPEN:
            self._part = "answer"
            if not self.styled:
                self.out.write("answer: ")

    def _close_part(self) -> None:
        if self._part == "think" and self.styled:
            self.out.write(_PLAIN)
        if self._part:
            self.out.write("\n")
        self._part = ""

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
