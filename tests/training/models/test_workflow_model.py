"""The workflow recognizer is online and its explicit state makes streaming exact."""

import pytest
import torch

from orstream.labels import NUM_INSTRUMENT_CLASSES, NUM_STEP_CLASSES
from orstream.training.models import WorkflowRecognizer
from orstream.training.registry import create_model

SIZE = (64, 64)


def small_model(seed: int, **kwargs: object) -> WorkflowRecognizer:
    torch.manual_seed(seed)
    model = create_model("pitvis_workflow", input_size=SIZE, **kwargs)
    assert isinstance(model, WorkflowRecognizer)
    # Random, non-trivial batch-norm statistics so the encoder is not close to the identity.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def clip(length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, length, 3, *SIZE, generator=generator)


def test_contract_attributes() -> None:
    model = small_model(0)
    assert model.sample_fps == 1.0
    assert len(model.mean) == 3 and len(model.std) == 3
    shapes = model.state_shapes()
    state = model.initial_state(4)
    assert [tuple(s.shape) for s in state] == [(4, *shape) for shape in shapes.values()]
    assert all(not s.any() for s in state)
    step, instruments, *new_state = model(clip(3))
    assert step.shape == (2, 3, NUM_STEP_CLASSES)
    assert instruments.shape == (2, 3, NUM_INSTRUMENT_CLASSES)
    assert [tuple(s.shape[1:]) for s in new_state] == list(shapes.values())


@pytest.mark.parametrize(("seed", "length"), [(1, 1), (2, 7), (3, 40), (4, 150)])
def test_streaming_frame_by_frame_equals_the_whole_clip(seed: int, length: int) -> None:
    model = small_model(seed, num_layers=4 if length < 100 else 6)
    frames = clip(length, seed)
    with torch.no_grad():
        whole_step, whole_instruments, *whole_state = model(frames)
        state = model.initial_state(2)
        steps, instruments = [], []
        for t in range(length):
            step, instrument, *state = model.streaming_step(frames[:, t], *state)
            steps.append(step)
            instruments.append(instrument)
    torch.testing.assert_close(torch.stack(steps, 1), whole_step, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack(instruments, 1), whole_instruments, atol=1e-5, rtol=0)
    for streamed, whole in zip(state, whole_state, strict=True):
        torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=0)


def test_clips_chained_through_the_state_equal_one_pass() -> None:
    model = small_model(5)
    frames = clip(30, 5)
    with torch.no_grad():
        whole_step, whole_instruments, *_ = model(frames)
        state = model.initial_state(2)
        parts = []
        for start, stop in [(0, 4), (4, 5), (5, 19), (19, 30)]:
            step, instruments, *state = model(frames[:, start:stop], *state)
            parts.append((step, instruments))
    torch.testing.assert_close(torch.cat([p[0] for p in parts], 1), whole_step, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        torch.cat([p[1] for p in parts], 1), whole_instruments, atol=1e-5, rtol=0
    )


def test_changing_future_frames_leaves_past_outputs_unchanged() -> None:
    model = small_model(6)
    frames = clip(24, 6)
    changed = frames.clone()
    changed[:, 15:] = torch.randn_like(changed[:, 15:])
    with torch.no_grad():
        step, instruments, *_ = model(frames)
        step_changed, instruments_changed, *_ = model(changed)
    assert torch.equal(step[:, :15], step_changed[:, :15])
    assert torch.equal(instruments[:, :15], instruments_changed[:, :15])
    assert not torch.allclose(step[:, 15:], step_changed[:, 15:])


def test_receptive_field_is_exactly_how_far_back_a_frame_reaches() -> None:
    model = small_model(7, num_layers=2, kernel_size=2)  # per stage 1 + 1 + 2 frames
    assert model.receptive_field == 7
    frames = clip(12, 7)
    changed = frames.clone()
    changed[:, 0] = torch.randn_like(changed[:, 0])
    with torch.no_grad():
        step, *_ = model(frames)
        step_changed, *_ = model(changed)
    reach = model.receptive_field
    assert not torch.equal(step[:, reach - 1], step_changed[:, reach - 1])
    assert torch.equal(step[:, reach:], step_changed[:, reach:])


def test_wrong_number_of_state_tensors_is_refused() -> None:
    model = small_model(8)
    state = model.initial_state(2)
    with pytest.raises(ValueError, match="state tensors"):
        model(clip(2), *state[:-1])
