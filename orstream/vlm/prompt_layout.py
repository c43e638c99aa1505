"""How a question and its visual tokens are laid out as the language model's input.

One definition for training, evaluation and serving: ``<bos>``, one ``<image>`` id per visual
token (the model puts the projected features in their places), a line break and the prompt
text; the model writes the answer after it and ends with ``<eos>``.
"""

from __future__ import annotations

from orstream.vlm.questions.question_items import QuestionItem
from orstream.vlm.text_tokenizer import TextTokenizer

DESCRIBE_PROMPT = "Describe what is seen."
"""The prompt of stage 1's alignment samples (narrations, captions)."""


def question_prompt(item: QuestionItem) -> str:
    """The prompt text of a question: ``Question: ...`` with its options, then ``Answer: ``."""
    return f"Question: {item.prompt}\nAnswer: "


def prompt_ids(tokenizer: TextTokenizer, visual_tokens: int, text: str) -> list[int]:
    """The ids of a prompt with ``visual_tokens`` image slots before ``text``."""
    return [
        tokenizer.bos_id,
        *[tokenizer.image_id] * visual_tokens,
        *tokenizer.encode("\n" + text),
    ]
