"""The transformers backend on tiny randomly initialised Qwen2-VL and LLaVA folders built here:
the tokenizer, processors and model are made in the test and saved as a user's folder would be,
so nothing is downloaded."""

import json
import shutil
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from orstream.errors import OrstreamError  # noqa: E402
from orstream.slides.phantom.dataset_writer import write_slide_dataset  # noqa: E402
from orstream.vlm.answering.answer_backend import AnswerEnd, AnswerRequest  # noqa: E402
from orstream.vlm.answering.transformers_backend import (  # noqa: E402
    ANSWER_INSTRUCTION,
    NO_REASONING,
    REASONING_INSTRUCTION,
    TransformersBackend,
    pick_frames,
    read_layout,
    slide_image,
)

SENTENCES = [
    "which step is this and what comes next",
    "the suction and the drill are visible in the view",
    "a tumour lies in the upper left region of the slide",
    "user assistant system yes no none",
]

QWEN_SPECIAL = [
    "<unk>",
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Qwen2-VL's own template, cut to what one user turn with images or a video needs.
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_SPECIAL = ["<unk>", "<s>", "</s>", "<image>", "<pad>"]
# llava-hf's LLaVA-1.5 template: images first, then the text.
LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<image>\n' }}{% endif %}{% endfor %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'text' %}{{ content['text'] + ' ' }}{% endif %}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
QUESTION = "which step is this"


def tiny_tokenizer(special: list[str], **tokens: str) -> Any:
    """A word-level tokenizer trained on a few sentences, with the layout's special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=special))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", **tokens
    )


def text_config(tokenizer: Any, eos: str, pad: str) -> dict[str, Any]:
    """A two-layer language model of width 32 over the tokenizer's vocabulary."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "eos_token_id": tokenizer.convert_tokens_to_ids(eos),
        "pad_token_id": tokenizer.convert_tokens_to_ids(pad),
        "bos_token_id": None,
    }


def save(folder: Path, model: Any, processor: Any, special: list[str]) -> Path:
    """The folder a user would have; its generation config suppresses the special tokens, so
    whatever the random weights, answers are words and run to ``max_new_tokens`` unless an
    end token is added (as a test does) or the deadline or a cancellation ends them."""
    model.generation_config.suppress_tokens = processor.tokenizer.convert_tokens_to_ids(special)
    model.generation_config.eos_token_id = model.config.text_config.eos_token_id
    model.generation_config.pad_token_id = model.config.text_config.pad_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_qwen2_vl(folder: Path) -> Path:
    """Qwen2-VL with a one-block vision tower of 4 px patches, frames cut to at most 32x32."""
    tokenizer = tiny_tokenizer(QWEN_SPECIAL, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = dict(zip(QWEN_SPECIAL, tokenizer.convert_tokens_to_ids(QWEN_SPECIAL), strict=True))
    pixels = {"patch_size": 4, "merge_size": 2, "temporal_patch_size": 2}
    processor = transformers.Qwen2VLProcessor(
        image_processor=transformers.Qwen2VLImageProcessor(
            **pixels, min_pixels=8 * 8, max_pixels=32 * 32
        ),
        video_processor=transformers.Qwen2VLVideoProcessor(
            **pixels, min_pixels=8 * 8, max_pixels=32 * 32
        ),
        tokenizer=tokenizer,
        chat_template=QWEN_TEMPLATE,
    )
    language = text_config(tokenizer, "<|im_end|>", "<|endoftext|>")
    language["rope_parameters"] = {"rope_type": "default", "mrope_section": [2, 3, 3]}
    config = transformers.Qwen2VLConfig(
        text_config=language,
        vision_config={
            "depth": 1,
            "embed_dim": 16,
            "hidden_size": 32,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 4,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    return save(
        folder, transformers.Qwen2VLForConditionalGeneration(config), processor, QWEN_SPECIAL
    )


def build_llava(folder: Path) -> Path:
    """LLaVA with a two-layer CLIP tower on 16x16 crops (16 image tokens) and a Llama."""
    tokenizer = tiny_tokenizer(LLAVA_SPECIAL, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    processor = transformers.LlavaProcessor(
        image_processor=transformers.CLIPImageProcessor(
            size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
        ),
        tokenizer=tokenizer,
        patch_size=4,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_TEMPLATE,
    )
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=16,
            patch_size=4,
            projection_dim=16,
        ),
        text_config=transformers.LlamaConfig(**text_config(tokenizer, "</s>", "<pad>")),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    return save(
        folder, transformers.LlavaForConditionalGeneration(config), processor, LLAVA_SPECIAL
    )


BUILDERS = {"qwen2_vl": build_qwen2_vl, "llava": build_llava}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def backend(folder: Path) -> TransformersBackend:
    return TransformersBackend(folder)


def clip(frames: int = 4) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (frames, 24, 32, 3), dtype=np.uint8)


def greedy(
    folder: Path, clip: np.ndarray, max_new_tokens: int, reasoning: bool = True
) -> tuple[list[int], str]:
    """The answer's tokens and text from a plain, non-streamed greedy generate of the folder's
    model, shown the clip as its layout reads one, asked for the answer's form."""
    processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True)
    if read_layout(folder)[1] == "video":
        visual, media = [{"type": "video"}], {"videos": [clip]}
    else:
        visual, media = [{"type": "image"}] * len(clip), {"images": list(clip)}
    text = f"{QUESTION} {REASONING_INSTRUCTION if reasoning else ANSWER_INSTRUCTION}"
    messages = [{"role": "user", "content": [*visual, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not reasoning:
        prompt += NO_REASONING
    inputs = processor(text=[prompt], return_tensors="pt", **media)
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
    return tokens, processor.decode(tokens, skip_special_tokens=True)


def run(answer: Generator[str, None, AnswerEnd]) -> tuple[list[str], AnswerEnd]:
    pieces = []
    while True:
        try:
            pieces.append(next(answer))
        except StopIteration as stop:
            return pieces, stop.value


def test_streamed_pieces_join_to_the_greedy_answer(
    folder: Path, backend: TransformersBackend
) -> None:
    _, expected = greedy(folder, clip(), 16)

    pieces, end = run(backend.stream(AnswerRequest(QUESTION, frames=clip(), max_new_tokens=16)))

    assert len(pieces) >= 2
    assert "".join(pieces) == expected
    assert end == AnswerEnd("max_new_tokens", 16)


def test_the_answer_alone_opens_with_empty_reasoning(
    folder: Path, backend: TransformersBackend
) -> None:
    _, expected = greedy(folder, clip(), 8, reasoning=False)
    request = AnswerRequest(QUESTION, frames=clip(), max_new_tokens=8, reasoning=False)

    pieces, end = run(backend.stream(request))

    assert pieces[0] == NO_REASONING == "<think></think>"
    assert "".join(pieces[1:]) == expected
    assert end == AnswerEnd("max_new_tokens", 8)


def test_max_new_tokens_ends_the_answer(backend: TransformersBackend) -> None:
    _, end = run(backend.stream(AnswerRequest(QUESTION, frames=clip(), max_new_tokens=3)))

    assert end == AnswerEnd("max_new_tokens", 3)


def test_the_models_end_of_text_ends_the_answer(folder: Path, tmp_path: Path) -> None:
    expected, _ = greedy(folder, clip(), 8)
    # The folder's generation config names a second end token, as Qwen2-VL's does: here the
    # word the answer has second.
    copy = Path(shutil.copytree(folder, tmp_path / "model"))
    settings = json.loads((copy / "generation_config.json").read_text())
    settings["eos_token_id"] = [settings["eos_token_id"], expected[1]]
    (copy / "generation_config.json").write_text(json.dumps(settings))

    _, end = run(TransformersBackend(copy).stream(AnswerRequest(QUESTION, frames=clip())))

    assert end == AnswerEnd("eos", expected.index(expected[1]) + 1)


def test_cancelling_mid_answer_ends_it(backend: TransformersBackend) -> None:
    heard = threading.Event()
    answer = backend.stream(AnswerRequest(QUESTION, frames=clip(), max_new_tokens=64), heard.is_set)
    next(answer)
    heard.set()

    _, end = run(answer)

    assert end.reason == "cancelled"
    assert end.tokens < 64


def test_a_listener_that_stops_reading_ends_generation(backend: TransformersBackend) -> None:
    decoded = []  # the stopping criterion asks cancelled() once per token

    def cancelled() -> bool:
        decoded.append(1)
        return False

    answer = backend.stream(
        AnswerRequest(QUESTION, frames=clip(), max_new_tokens=10_000), cancelled
    )
    next(answer)

    answer.close()

    assert "orstream-hf-generate" not in [thread.name for thread in threading.enumerate()]
    assert len(decoded) < 100


def test_concurrent_answers_are_each_the_greedy_answer(
    folder: Path, backend: TransformersBackend
) -> None:
    clips = [clip(), np.zeros_like(clip())]
    expected = [greedy(folder, frames, 12)[1] for frames in clips]
    answers = [
        backend.stream(AnswerRequest(QUESTION, frames=frames, max_new_tokens=12))
        for frames in clips
    ]
    texts = ["", ""]
    running = [True, True]
    while any(running):  # the two answers' pieces interleave
        for index, answer in enumerate(answers):
            if running[index]:
                try:
                    texts[index] += next(answer)
                except StopIteration:
                    running[index] = False

    assert texts == expected
    assert expected[0] != expected[1]


def test_cancelled_before_the_start_answers_nothing(backend: TransformersBackend) -> None:
    pieces, end = run(backend.stream(AnswerRequest(QUESTION, frames=clip()), lambda: True))

    assert (pieces, end) == ([], AnswerEnd("cancelled", 0))


def test_a_passed_deadline_ends_the_answer(backend: TransformersBackend) -> None:
    request = AnswerRequest(QUESTION, frames=clip(), max_new_tokens=64, deadline_s=1e-6)

    _, end = run(backend.stream(request))

    assert end == AnswerEnd("deadline", 1)


def test_a_long_clip_is_shown_as_evenly_spaced_frames(
    folder: Path, backend: TransformersBackend
) -> None:
    long_clip = clip(10)
    shown = pick_frames(long_clip, backend.max_frames)
    _, expected = greedy(folder, shown, 6)

    pieces, _ = run(backend.stream(AnswerRequest(QUESTION, frames=long_clip, max_new_tokens=6)))

    assert "".join(pieces) == expected


def test_bfloat16_weights_answer(folder: Path) -> None:
    backend = TransformersBackend(folder, dtype="bfloat16")

    _, end = run(backend.stream(AnswerRequest(QUESTION, frames=clip(), max_new_tokens=4)))

    assert end == AnswerEnd("max_new_tokens", 4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="refused only where torch sees no GPU")
def test_cuda_without_a_gpu_is_a_clear_error(folder: Path) -> None:
    with pytest.raises(OrstreamError, match="torch sees no CUDA GPU"):
        TransformersBackend(folder, device="cuda")


def test_pick_frames_spans_the_clip() -> None:
    frames = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(3, axis=3)

    assert pick_frames(frames, 4)[:, 0, 0, 0].tolist() == [0, 3, 6, 9]
    assert pick_frames(frames, 12) is frames


def test_a_slide_is_answered_from_its_thumbnail(
    backend: TransformersBackend, tmp_path: Path
) -> None:
    write_slide_dataset(tmp_path, 1, seed=11, size=1024)
    slide = tmp_path / "slides" / "slide_001.tiff"

    _, end = run(backend.stream(AnswerRequest(QUESTION, slide=slide, max_new_tokens=4)))

    assert end.tokens >= 1
    image = slide_image(slide)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    assert max(image.shape[:2]) <= 1024


def test_a_missing_slide_is_a_clear_error(backend: TransformersBackend, tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="no such slide file"):
        run(backend.stream(AnswerRequest(QUESTION, slide=tmp_path / "gone.svs")))


def test_layouts_are_read_from_the_config(folder: Path, backend: TransformersBackend) -> None:
    assert read_layout(folder) == (
        {"video": "qwen2_vl", "images": "llava"}[backend.layout],
        backend.layout,
    )
    assert backend.name == f"transformers:{folder.name}"


def test_bad_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="no such model folder"):
        TransformersBackend(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OrstreamError, match=r"no config\.json"):
        TransformersBackend(empty)
    text_only = tmp_path / "text_only"
    transformers.LlamaConfig(num_hidden_layers=1).save_pretrained(text_only)
    with pytest.raises(OrstreamError, match="text-only model \\(llama\\)"):
        TransformersBackend(text_only)
    other = tmp_path / "other"
    transformers.Blip2Config().save_pretrained(other)
    with pytest.raises(OrstreamError, match="blip-2 model, not a vision-language layout"):
        TransformersBackend(other)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(OrstreamError, match="cannot read it as JSON"):
        TransformersBackend(broken)


def test_a_folder_without_matching_weights_is_refused(folder: Path, tmp_path: Path) -> None:
    no_weights = Path(shutil.copytree(folder, tmp_path / "no_weights"))
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(OrstreamError, match="transformers cannot load"):
        TransformersBackend(no_weights)

    deeper = Path(shutil.copytree(folder, tmp_path / "deeper"))
    config = json.loads((deeper / "config.json").read_text())
    config["text_config"]["num_hidden_layers"] = 3
    config["text_config"].pop("layer_types", None)
    (deeper / "config.json").write_text(json.dumps(config))
    with pytest.raises(OrstreamError, match="the weights lack"):
        TransformersBackend(deeper)

    untemplated = Path(shutil.copytree(folder, tmp_path / "untemplated"))
    (untemplated / "chat_template.jinja").unlink()
    with pytest.raises(OrstreamError, match="no chat template"):
        TransformersBackend(untemplated)


def test_bad_arguments_are_clear_errors(folder: Path) -> None:
    with pytest.raises(OrstreamError, match="dtype must be one of"):
        TransformersBackend(folder, dtype="int8")
    with pytest.raises(OrstreamError, match="max_frames must be at least 1"):
        TransformersBackend(folder, max_frames=0)
    with pytest.raises(OrstreamError, match="not a torch device"):
        TransformersBackend(folder, device="abacus")
