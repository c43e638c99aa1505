"""The one ``orstream`` command.

Each subcommand lives in the part that owns it, in a module that imports nothing heavy at
load time and defines ``add_arguments(parser)`` and ``run(args) -> int``. The table below is
the only place that lists them, so ``--help`` works on every tier without importing torch,
GStreamer or ONNX Runtime.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from orstream import __version__
from orstream.errors import OrstreamError


@dataclass(frozen=True)
class Command:
    """A leaf subcommand: its words on the command line and the module that implements it."""

    words: tuple[str, ...]
    module: str
    help: str


GROUP_HELP = {
    "phantom": "procedural endoscopic video with exact ground truth",
    "bench": "measure performance (p50/p99/p99.9 and ratios from one run)",
    "train": "train models with Lightning",
    "eval": "score predictions",
    "export": "export trained models to deployable packages",
    "edge": "the live runtime: feeds -> models -> overlays, recording, gRPC",
    "client": "query a running edge runtime or job server over gRPC",
    "tokens": "bearer tokens for the gRPC API",
    "server": "the server tier's job service",
    "slide": "whole-slide images: phantom slides, reading and tiling",
    "wsi": "whole-slide image analysis with a slide package",
}

COMMANDS: tuple[Command, ...] = (
    Command(
        ("phantom", "make"),
        "orstream.streams.phantom.make_command",
        "write a phantom dataset in the PitVis layout",
    ),
    Command(
        ("bench", "phantom"),
        "orstream.streams.phantom.bench_command",
        "measure phantom rendering speed against real time",
    ),
    Command(
        ("train", "workflow"),
        "orstream.training.train_command",
        "train the PitVis step + instrument recognizer (LightningCLI)",
    ),
    Command(
        ("train", "segmenter"),
        "orstream.training.train_command",
        "train the interactive segmenter on clicks, boxes and text (LightningCLI)",
    ),
    Command(
        ("train", "classifier"),
        "orstream.training.train_command",
        "train the instrument classifier that names live masks (LightningCLI)",
    ),
    Command(
        ("train", "videotext"),
        "orstream.training.train_command",
        "train the OphCLIP-style video-text model on phantom clips and narrations (LightningCLI)",
    ),
    Command(
        ("train", "tokenizer"),
        "orstream.training.train_command",
        "train the MedITok-style visual tokenizer on phantom frames, stage 1 or 2 (LightningCLI)",
    ),
    Command(
        ("train", "patch"),
        "orstream.training.train_command",
        "train the slide patch encoder on phantom tiles and their tissue classes (LightningCLI)",
    ),
    Command(
        ("train", "slide"),
        "orstream.training.train_command",
        "train the attention-MIL slide encoder on frozen patch features (LightningCLI)",
    ),
    Command(
        ("train", "vlm"),
        "orstream.training.train_command",
        "train the GMAI-VL-style vision-language model, stage 1 (alignment) or 2 (reasoning QA)",
    ),
    Command(
        ("eval", "pitvis"),
        "orstream.pitvis.eval_command",
        "score PitVis submission CSVs against annotations",
    ),
    Command(
        ("eval", "segmentation"),
        "orstream.export.evaluation.command",
        "score an interactive segmentation package (points, box, text) on a phantom dataset",
    ),
    Command(
        ("eval", "videotext"),
        "orstream.export.evaluation.videotext_command",
        "score a video-text package on held-out cases: retrieval, zero-shot steps, a probe",
    ),
    Command(
        ("eval", "workflow"),
        "orstream.export.evaluation.workflow_command",
        "score a workflow package on annotated cases online, as the edge runs it, per length",
    ),
    Command(
        ("eval", "tokenizer"),
        "orstream.export.evaluation.tokenizer_command",
        "score a tokenizer package on held-out frames: PSNR, SSIM, codebook use, JPEG at its bpp",
    ),
    Command(
        ("eval", "vlm"),
        "orstream.export.evaluation.vlm_command",
        "score a vlm package on held-out phantom questions, with and without reasoning",
    ),
    Command(
        ("export", "crops"),
        "orstream.export.crops.command",
        "tip crops of a segmenter's finds in phantom cases, to train the instrument classifier",
    ),
    Command(
        ("export", "onnx"),
        "orstream.export.onnx.command",
        "export a checkpoint to an ONNX model package",
    ),
    Command(
        ("export", "trt"),
        "orstream.export.tensorrt.command",
        "build a TensorRT engine for this host from a package's ONNX (needs TensorRT)",
    ),
    Command(
        ("export", "reference"),
        "orstream.export.onnx.reference_command",
        "(re)write a package's golden reference: ONNX Runtime CPU outputs on a phantom frame",
    ),
    Command(
        ("export", "batch"),
        "orstream.export.onnx.batch.batch_command",
        "give a package's graphs a dynamic batch (axis 0), proved on ONNX Runtime",
    ),
    Command(
        ("export", "bench"),
        "orstream.export.bench.command",
        "time every backend this host can run on one package, side by side",
    ),
    Command(
        ("edge", "run"),
        "orstream.edge.app.run_command",
        "run live feeds through the shared models, overlays, recording, display and gRPC API",
    ),
    Command(
        ("bench", "runtime"),
        "orstream.edge.bench.runtime_command",
        "measure the runtime: per-stage and frame-to-result latency, throughput vs decode",
    ),
    Command(
        ("bench", "capacity"),
        "orstream.edge.bench.capacity_command",
        "find how many live streams the edge serves with no frame lost and p99 within 50 ms",
    ),
    Command(
        ("bench", "reconnect"),
        "orstream.edge.bench.reconnect_command",
        "unplug and restore a real RTSP camera N times: resume time, health, memory",
    ),
    Command(
        ("bench", "dashboard"),
        "orstream.edge.bench.dashboard_command",
        "OR dashboard: glass-to-glass latency in the browser, and the viewers one edge serves",
    ),
    Command(
        ("bench", "gpu"),
        "orstream.edge.bench.gpu_command",
        "validate a GPU host: torch parity, 1080p latency, concurrent stream capacity",
    ),
    Command(
        ("tokens", "add"),
        "orstream.access.tokens_command",
        "make a bearer token for a name and role; prints it once, stores its hash",
    ),
    Command(
        ("client", "status"),
        "orstream.client.status_command",
        "show an edge runtime's sources, models, latencies and drops",
    ),
    Command(
        ("client", "health"),
        "orstream.client.health_command",
        "is an edge runtime or job server SERVING (grpc.health.v1)? exit 0 when it is",
    ),
    Command(
        ("client", "subscribe"),
        "orstream.client.subscribe_command",
        "print an edge runtime's live results, one line each",
    ),
    Command(
        ("client", "timeline"),
        "orstream.client.timeline_command",
        "print the step segments of a stream so far",
    ),
    Command(
        ("client", "prompt"),
        "orstream.client.prompt_command",
        "segment an object on a recent frame from clicks, a box or a class name",
    ),
    Command(
        ("client", "search"),
        "orstream.client.search_command",
        "find the moments of a stream's recent video that match a text",
    ),
    Command(
        ("client", "prompts"),
        "orstream.client.prompts_command",
        "change the text prompts the edge names zero-shot steps by",
    ),
    Command(
        ("client", "handoff"),
        "orstream.client.handoff_command",
        "hand the last seconds of a stream to the job server through the edge's outbox",
    ),
    Command(
        ("client", "ask"),
        "orstream.client.ask_command",
        "ask the server tier's vision-language model about the last seconds of a stream",
    ),
    Command(
        ("client", "handoffs"),
        "orstream.client.handoffs_command",
        "list the items of an edge's outbox (hand-offs to the job server) or show one",
    ),
    Command(
        ("server", "run"),
        "orstream.server.run_command",
        "serve the job service (submit, watch, cancel jobs) until SIGTERM or Ctrl-C",
    ),
    Command(
        ("client", "server"),
        "orstream.client.server_command",
        "submit, watch, get, cancel and list an orstream server's jobs",
    ),
    Command(
        ("tokenize",),
        "orstream.export.tokenizer.tokenize_command",
        "an image or a video's frames to a tokenizer package's discrete tokens (.npz)",
    ),
    Command(
        ("detokenize",),
        "orstream.export.tokenizer.detokenize_command",
        "tokens of orstream tokenize back to a PNG, a folder of PNGs or an MP4",
    ),
    Command(
        ("slide", "phantom"),
        "orstream.slides.phantom.make_command",
        "write phantom whole-slide images (pyramidal JPEG TIFFs) with masks, labels and questions",
    ),
    Command(
        ("slide", "tiles"),
        "orstream.slides.tiles_command",
        "show a slide's levels, mpp, tissue and tile count; draw its tissue and tiles as a PNG",
    ),
    Command(
        ("wsi", "analyze"),
        "orstream.slides.analyze_command",
        "a slide's class, tumour fraction and tumour heatmap (PNG) from a slide package",
    ),
    Command(
        ("eval", "wsi"),
        "orstream.slides.eval_command",
        "score a slide package on held-out phantom slides: accuracy, fraction MAE, heatmap Dice",
    ),
    Command(
        ("bench", "wsi"),
        "orstream.slides.bench_command",
        "slide tiles per second (tissue, reading, encoding) against reading alone; peak memory",
    ),
    Command(
        ("bench", "vlm"),
        "orstream.export.bench.vlm_command",
        "vlm time to first token and tokens/s, 1 and 4 requests, KV cache against recomputation",
    ),
    Command(
        ("demo",),
        "orstream.edge.demo.command",
        "run the main job end to end on a fresh phantom case",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser tree, built from :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="orstream", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"orstream {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for command in COMMANDS:
        module = importlib.import_module(command.module)
        if len(command.words) == 1:
            sub = top.add_parser(command.words[0], help=command.help, description=command.help)
        else:
            group, leaf = command.words
            if group not in groups:
                group_parser = top.add_parser(
                    group, help=GROUP_HELP[group], description=GROUP_HELP[group]
                )
                groups[group] = group_parser.add_subparsers(
                    dest=f"{group}_command", metavar="SUBCOMMAND", required=True
                )
            sub = groups[group].add_parser(leaf, help=command.help, description=command.help)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run, and turn user errors into one line and a non-zero exit."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except OrstreamError as error:
        print(f"orstream: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("orstream: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
