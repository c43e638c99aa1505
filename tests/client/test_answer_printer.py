"""An answer printed as it streams: tags split across pieces never show, the reasoning is
dimmed on a terminal and labelled elsewhere, and text that only looks like a tag is kept."""

import io

import pytest

from orstream.client.answer_printer import AnswerPrinter

TEXT = "<think>The suction is in view.</think><answer>sellar opening</answer>"


@pytest.mark.parametrize("size", [1, 3, 7, len(TEXT)])
def test_pieces_cut_anywhere_print_the_same(size: int) -> None:
    for styled, expected in (
        (False, "reasoning: The suction is in view.\nanswer: sellar opening\n"),
        (True, "\033[2mThe suction is in view.\033[0m\nsellar opening\n"),
    ):
        out = io.StringIO()
        printer = AnswerPrinter(out, styled)
        for start in range(0, len(TEXT), size):
            printer.feed(TEXT[start : start + size])
        printer.finish()
        assert out.getvalue() == expected
        assert printer.text == TEXT


def test_text_that_only_looks_like_a_tag_is_printed() -> None:
    out = io.StringIO()
    printer = AnswerPrinter(out, False)
    for piece in ("<answer>a <", "b and <th", "e end"):
        printer.feed(piece)
    printer.finish()
    assert out.getvalue() == "answer: a <b and <the end\n"


def test_an_answer_that_starts_over_is_marked() -> None:
    out = io.StringIO()
    printer = AnswerPrinter(out, False)
    printer.feed("<think>half")
    printer.restart()
    printer.feed("<answer>yes</answer>")
    printer.finish()
    assert out.getvalue() == "reasoning: half\n(answering again)\nanswer: yes\n"
    assert printer.text == "<answer>yes</answer>"
