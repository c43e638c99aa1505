"""End to end: a phantom case plays through the edge runtime with the shipped segmenter, and a
gRPC client boxes instruments on frames the runtime kept; the masks it gets back must match the
phantom's exact instrument masks."""

from __future__ import annotations

from pathlib import Path

import cv2
import grpc
import numpy as np

from orstream.edge.app.compose import EdgeApp
from orstream.edge.app.config import parse_config
from orstream.edge.models.shipped import SHIPPED_SEGMENTER
from orstream.edge.service.server import EdgeGrpcServer
from orstream.proto.convert import segment_mask_from_proto
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc
from orstream.segmentation.mask_rle import decode_mask
from orstream.streams.phantom.writer import PhantomSpec, write_dataset

SEED = 7707
"""A case none of the shipped segmenter's training or held-out cases used."""
FPS = 6.0
MIN_AREA = 300
"""Instruments smaller than this many pixels are not boxed (a sliver at the rim)."""
DICE_FLOOR = 0.75


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * float((a & b).sum()) / float(total)


def test_a_box_over_grpc_segments_phantom_instruments(tmp_path: Path) -> None:
    write_dataset(PhantomSpec(1, 40, seed=SEED, width=640, height=360, fps=FPS), tmp_path)
    targets = []
    for png in sorted((tmp_path / "masks" / "video_01").glob("*.png")):
        truth = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        for code in np.unique(truth[truth > 0]):
            if (truth == code).sum() >= MIN_AREA:
                targets.append((round(int(png.stem) * FPS), int(code), truth == code))
    assert len(targets) >= 5, "the case shows too few instruments to test with"

    config = parse_config(
        {
            "source": {"uri": str(tmp_path / "videos" / "video_01.mp4"), "stream_id": "case"},
            "segmentation": {"package": str(SHIPPED_SEGMENTER), "keep_frames": 300},
            "grpc": {"enabled": False},
        },
        "test",
    )
    app = EdgeApp(config)
    assert app.prompter is not None
    server = EdgeGrpcServer(app.hub, app.status, "127.0.0.1:0", prompter=app.prompter)
    port = server.start()
    try:
        app.run()  # the app keeps the case's frames for prompts after it ends
        scores = []
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = edge_pb2_grpc.EdgeServiceStub(channel)
            for index, _code, truth in targets:
                rows, cols = np.nonzero(truth)
                box = edge_pb2.PromptBox(
                    x0=cols.min(), y0=rows.min(), x1=cols.max() + 1, y1=rows.max() + 1
                )
                request = edge_pb2.PromptRequest(stream_id="case", index=index, box=box)
                response = stub.Prompt(request, timeout=30)
                assert response.index == index
                mask = decode_mask(segment_mask_from_proto(response.masks[0]).mask)
                assert mask.shape == truth.shape
                scores.append(dice(mask, truth))
    finally:
        server.stop(0.5)
        app.hub.close()
    mean = float(np.mean(scores))
    print(f"\nbox prompts over gRPC: {len(scores)} instruments, mean Dice {mean:.3f}")
    assert mean >= DICE_FLOOR, f"mean Dice {mean:.3f} over {len(scores)} instruments"
