"""The demo's check of segmentation: live masks and box prompts against the phantom's truth.

A gRPC client of the demo's own API subscribes to the segmentation results. For each segmented
frame it renders the phantom's exact masks of that frame (its own renderer of the same case),
scores the live masks per target (every instrument and anatomy region of at least
:data:`MIN_AREA` pixels; a target the live segmenter did not report scores 0), and boxes the
frame's largest instrument through ``Prompt``, scoring the mask that comes back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import grpc
import numpy as np

from orstream.labels import ANATOMY
from orstream.proto.convert import (
    prompt_answer_from_proto,
    prompt_request_to_proto,
    subscribe_request_to_proto,
    subscribe_response_from_proto,
)
from orstream.proto.orstream.v1 import edge_pb2_grpc
from orstream.results import FrameResult
from orstream.segmentation.mask_rle import decode_mask
from orstream.segmentation.mask_scores import mask_box, score_mask
from orstream.segmentation.prompts import Prompt, PromptRequest
from orstream.streams.phantom.renderer import CaseRenderer

MIN_AREA = 400
"""Truth regions smaller than this many pixels (slivers at the rim) are not scored."""


@dataclass
class MaskScores:
    """Dice per target, by kind, as the checker collected them."""

    live_instrument: list[float] = field(default_factory=list)
    live_anatomy: list[float] = field(default_factory=list)
    box_prompt: list[float] = field(default_factory=list)
    prompt_ms: list[float] = field(default_factory=list)
    frames: int = 0

    def summary(self) -> dict[str, float | int | None]:
        def mean(values: list[float]) -> float | None:
            return float(np.mean(values)) if values else None

        return {
            "segmented_frames": self.frames,
            "live_instrument_dice": mean(self.live_instrument),
            "live_instrument_targets": len(self.live_instrument),
            "live_anatomy_dice": mean(self.live_anatomy),
            "live_anatomy_targets": len(self.live_anatomy),
            "box_prompt_dice": mean(self.box_prompt),
            "box_prompts": len(self.box_prompt),
            "box_prompt_p50_ms": float(np.median(self.prompt_ms)) if self.prompt_ms else None,
        }


class MaskChecker:
    """Scores the live masks and a box prompt per segmented frame over the demo's gRPC API.

    Args:
        renderer: a renderer of the very case the demo plays (same seed, video, size, fps).
        stream_id: the demo's stream.
    """

    def __init__(self, renderer: CaseRenderer, stream_id: str) -> None:
        self.renderer = renderer
        self.stream_id = stream_id
        self.scores = MaskScores()
        self.error = ""
        self._thread: threading.Thread | None = None

    def start(self, port: int) -> None:
        """Subscribe to segmentation (returns once the subscription is in place)."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._read, args=(port, ready), name="demo-masks", daemon=True
        )
        self._thread.start()
        ready.wait(10)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(30)

    def _read(self, port: int, ready: threading.Event) -> None:
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = edge_pb2_grpc.EdgeServiceStub(channel)
                stream = stub.Subscribe(subscribe_request_to_proto(kinds=["segmentation"]))
                stream.initial_metadata()
                ready.set()
                for response in stream:
                    self._check(stub, subscribe_response_from_proto(response)[0])
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                self.error = f"{error.code().name}: {error.details()}"
        finally:
            ready.set()

    def _check(self, stub: edge_pb2_grpc.EdgeServiceStub, result: FrameResult) -> None:
        index = result.index
        height, width = self.renderer.view.height, self.renderer.view.width
        instruments = np.zeros((height, width), np.uint8)
        anatomy = np.zeros((height, width), np.uint8)
        self.renderer.render(index, None, instruments, anatomy)
        segmented = result.segmentation.masks if result.segmentation is not None else ()
        predicted = {mask.code: decode_mask(mask.mask) for mask in segmented}
        self.scores.frames += 1
        empty = np.zeros((height, width), bool)
        largest: tuple[int, np.ndarray] | None = None
        for labels, scores, codes in (
            (instruments, self.scores.live_instrument, None),
            (anatomy, self.scores.live_anatomy, set(ANATOMY)),
        ):
            for code in np.unique(labels[labels > 0]).tolist():
                truth = labels == code
                area = int(truth.sum())
                if area < MIN_AREA or (codes is not None and code not in codes):
                    continue
                scores.append(score_mask(predicted.get(code, empty), truth).dice)
                if codes is None and (largest is None or area > largest[0]):
                    largest = (area, truth)
        if largest is None:
            return
        request = PromptRequest(self.stream_id, index, Prompt(box=mask_box(largest[1])))
        try:
            response = stub.Prompt(prompt_request_to_proto(request), timeout=10)
        except grpc.RpcError as error:  # a refused prompt is a finding, not a crash
            self.error = f"Prompt on frame {index}: {error.code().name}: {error.details()}"
            return
        answer = prompt_answer_from_proto(response)
        mask = decode_mask(answer.masks[0].mask)
        self.scores.box_prompt.append(score_mask(mask, largest[1]).dice)
        self.scores.prompt_ms.append(answer.latency_ms)
