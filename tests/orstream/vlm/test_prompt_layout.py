"""The prompt layout shared by training and serving."""

from orstream.vlm.prompt_layout import prompt_ids, question_prompt
from orstream.vlm.questions.question_items import QuestionItem
from orstream.vlm.text_tokenizer import TextTokenizer


def test_bos_then_one_image_id_per_visual_token_then_the_question() -> None:
    item = QuestionItem(
        "slide_001/multiple_choice/0", "slide", "slide_001", None, None, "multiple_choice",
        "Is necrosis present?", "None is seen.", "B", "choice", ("yes", "no", "maybe", "unsure"),
    )  # fmt: skip
    text = question_prompt(item)
    assert text == "Question: Is necrosis present?\nA. yes\nB. no\nC. maybe\nD. unsure\nAnswer: "
    tokenizer = TextTokenizer.train([text] * 10, vocab_size=300)
    ids = prompt_ids(tokenizer, 5, text)
    assert ids[:6] == [tokenizer.bos_id] + [tokenizer.image_id] * 5
    assert tokenizer.decode(ids[6:]) == "\n" + text
