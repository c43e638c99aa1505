"""The demo's work: a live phantom feed through the whole edge runtime, then the score."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from orstream.edge.app.config import parse_config
from orstream.edge.app.session import describe_status, run_edge
from orstream.edge.demo.mask_checker import MaskChecker
from orstream.errors import OrstreamError
from orstream.package.loading import load_package
from orstream.pitvis.csv_files import Annotations, write_annotations, write_label_maps
from orstream.pitvis.eval_command import evaluate_pitvis, format_table
from orstream.pitvis.layout import annotations_path
from orstream.streams.phantom.difficulty import get_difficulty
from orstream.streams.phantom.renderer import CaseRenderer
from orstream.streams.phantom.source import PhantomSource

VIDEO = 1
WIDTH, HEIGHT, FPS = 1280, 720, 24.0
SEGMENTATION_HZ = 2.0
"""Live masks per second: leaves the CPU room for the phantom camera and the recognizer."""


def _say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def _phantom_seeds(data: Mapping[str, object]) -> set[int]:
    """Seeds of the phantom cases a model was trained and validated on, as its card records:
    datasets (``phantom``, ``val_phantom``) or cases rendered on the fly (``train_seeds``,
    ``val_seeds``)."""
    seeds = set()
    for key in ("phantom", "val_phantom"):
        meta = data.get(key)
        if isinstance(meta, dict) and isinstance(meta.get("seed"), int):
            seeds.add(meta["seed"])
    for key in ("train_seeds", "val_seeds"):
        listed = data.get(key)
        if isinstance(listed, list):
            seeds |= {seed for seed in listed if isinstance(seed, int)}
    return seeds


def _write_truth(source: PhantomSource, seconds: int, folder: Path) -> None:
    """The case's PitVis annotations: each second labelled by the frame that starts it."""
    steps = np.empty(seconds, np.int64)
    slots = np.empty((seconds, 2), np.int64)
    for second in range(seconds):
        shown = source.renderer.render(round(second * source.fps))
        steps[second] = shown.step
        slots[second] = shown.slots
    write_label_maps(folder)
    write_annotations(
        annotations_path(folder, VIDEO),
        Annotations(VIDEO, np.arange(seconds, dtype=np.int64), steps, slots),
    )


def _score(value: object) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class LoopbackSubscriber:
    """A gRPC client of the demo's own API: counts the results ``Subscribe`` streams to it."""

    def __init__(self) -> None:
        self.received = 0
        self.last_index = -1
        self.in_order = True
        self.error = ""
        self._thread: threading.Thread | None = None

    def start(self, port: int) -> None:
        """Subscribe (returns once the server has the subscription in place)."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._read, args=(port, ready), name="demo-subscriber", daemon=True
        )
        self._thread.start()
        ready.wait(10)

    def _read(self, port: int, ready: threading.Event) -> None:
        import grpc

        from orstream.proto.convert import subscribe_request_to_proto, subscribe_response_from_proto
        from orstream.proto.orstream.v1 import edge_pb2_grpc

        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stream = edge_pb2_grpc.EdgeServiceStub(channel).Subscribe(
                    subscribe_request_to_proto()
                )
                stream.initial_metadata()
                ready.set()
                for response in stream:
                    result, _ = subscribe_response_from_proto(response)
                    self.in_order &= result.index > self.last_index
                    self.last_index = result.index
                    self.received += 1
        except grpc.RpcError as error:
            self.error = f"{error.code().name}: {error.details()}"
        finally:
            ready.set()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(10)


def run_demo(
    out: Path,
    model: Path,
    segmenter: Path | None,
    classifier: Path | None,
    seconds: int,
    seed: int,
    backend_name: str,
    grpc: str,
    summary: bool,
) -> dict[str, object]:
    """Run the demo into ``out``; prints the report and returns the summary it describes."""
    started = time.monotonic()
    package = load_package(model)
    packages = [(model, package)]
    if segmenter is not None:
        packages.append((segmenter, load_package(segmenter)))
        if classifier is not None:
            packages.append((classifier, load_package(classifier)))
    for path, loaded in packages:
        if seed in _phantom_seeds(loaded.card.training.data):
            raise OrstreamError(
                f"phantom seed {seed} made the training data of {path}; use another"
            )
    out.mkdir(parents=True, exist_ok=True)
    _say(f"preparing a fresh {seconds} s {WIDTH}x{HEIGHT} phantom case (seed {seed})")
    source = PhantomSource(
        seed=seed,
        video=VIDEO,
        seconds=seconds,
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        paced=True,
        stream_id="phantom",
    )
    predictions = out / "predictions"
    record = out / "overlay.mp4"
    sections: dict[str, object] = {
        "source": {"uri": source.uri, "stream_id": "phantom"},
        "model": {"package": str(model), "backends": [backend_name]},
        "record": {"path": str(record)},
        "grpc": {"address": grpc},
        "results": {"dir": str(predictions), "video": VIDEO},
    }
    checker = None
    if segmenter is not None:
        sections["segmentation"] = {
            "package": str(segmenter),
            "classifier": None if classifier is None else str(classifier),
            "rate_hz": SEGMENTATION_HZ,
        }
        checker = MaskChecker(
            CaseRenderer(seed, VIDEO, seconds, get_difficulty("normal"), WIDTH, HEIGHT, FPS),
            "phantom",
        )
    config = parse_config(sections, "demo")
    names = " + ".join(loaded.card.name for _, loaded in packages)
    _say(f"playing it live at {FPS:g} fps through {names} ({backend_name})")
    subscriber = LoopbackSubscriber()

    def on_serving(port: int) -> None:
        subscriber.start(port)
        if checker is not None:
            checker.start(port)

    report = run_edge(config, source=source, on_serving=on_serving, say=_say)
    subscriber.join()
    if checker is not None:
        checker.join()
    status = report.status
    truth = out / "phantom"
    _write_truth(source, seconds, truth)
    scores = evaluate_pitvis(truth, predictions)
    latency = status.frame_to_result
    dropped = {stage.name: stage.dropped for stage in status.stages}
    print(format_table(scores))
    print(describe_status(status))
    print(
        f"step score {scores.mean['step_score']:.3f} (online, live at {FPS:g} fps); "
        f"frame-to-result {latency.describe()}; video frames in {status.video_frames_in}, "
        f"out {status.video_frames_out}, dropped per stage {dropped}; "
        f"wall {time.monotonic() - started:.0f} s"
    )
    print(
        f"gRPC: a loopback subscriber received {subscriber.received} results "
        f"({'in order' if subscriber.in_order else 'OUT OF ORDER'})"
        + (f", error {subscriber.error}" if subscriber.error else "")
    )
    masks = None
    if checker is not None:
        masks = checker.scores.summary()
        stage = next(s for s in status.stages if s.name == "segmentation")
        masks["segmentation_p50_ms"] = stage.latency.p50
        masks["segmentation_p99_ms"] = stage.latency.p99
        print(
            f"segmentation: {masks['segmented_frames']} frames segmented live "
            f"(per frame {stage.latency.describe()}); live masks Dice: instruments "
            f"{_score(masks['live_instrument_dice'])} over {masks['live_instrument_targets']} "
            f"targets, anatomy {_score(masks['live_anatomy_dice'])} over "
            f"{masks['live_anatomy_targets']}; gRPC box prompts: Dice "
            f"{_score(masks['box_prompt_dice'])} over {masks['box_prompts']} instruments, "
            f"p50 {_score(masks['box_prompt_p50_ms'])} ms"
            + (f"; error {checker.error}" if checker.error else "")
        )
    print(f"overlay video: {record}; PitVis submissions: {predictions}")
    result: dict[str, object] = {
        "step_score": scores.mean["step_score"],
        "step_f1": scores.mean["step_f1"],
        "step_edit": scores.mean["step_edit"],
        "instrument_f1": scores.mean["instrument_f1"],
        "p50": latency.p50,
        "p99": latency.p99,
        "p999": latency.p999,
        "max": latency.max,
        "results": latency.count,
        "grpc_results_received": subscriber.received,
        "video_frames_in": status.video_frames_in,
        "video_frames_out": status.video_frames_out,
        "frames_dropped": dropped,
        "model": str(model),
        "segmenter": None if segmenter is None else str(segmenter),
        "segmentation": masks,
        "backend": backend_name,
        "seed": seed,
        "seconds": seconds,
        "wall_s": time.monotonic() - started,
    }
    if summary:
        (out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
        _say(f"wrote {out / 'summary.json'}")
    return result
