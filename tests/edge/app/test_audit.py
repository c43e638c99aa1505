"""The audit log of a run: the config, the models and their backends, the recording, refused
calls and prompts, one JSON line each, with who did it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import grpc
import pytest
from segmenter_checkpoints import random_segmenter_package

from orstream.access.tokens import add_token
from orstream.client.bearer import BearerToken
from orstream.edge.app.config import parse_config
from orstream.edge.app.session import run_edge
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc


def test_a_run_leaves_an_audit_trail(
    random_workflow_package: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    segmenter = random_segmenter_package(tmp_path_factory.getbasetemp())
    tokens = tmp_path / "tokens.yaml"
    nurse = add_token(tokens, "nurse", "operator")
    config = parse_config(
        {
            "source": {"uri": "phantom://?seed=2&seconds=4&width=320&height=180&fps=12"},
            "model": {"package": str(random_workflow_package)},
            "segmentation": {"package": str(segmenter)},
            "record": {"path": str(tmp_path / "or.mp4")},
            "grpc": {"address": "127.0.0.1:0", "tokens": str(tokens)},
            "audit": {"path": str(tmp_path / "audit.jsonl")},
        },
        "test",
    )
    answers: list[str] = []

    def calls(port: int) -> None:
        time.sleep(1.5)  # frames to prompt on
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                edge_pb2_grpc.EdgeServiceStub(channel).GetStatus(
                    edge_pb2.GetStatusRequest(), timeout=5
                )
            except grpc.RpcError as error:
                answers.append(error.code().name)
            stub = edge_pb2_grpc.EdgeServiceStub(
                grpc.intercept_channel(channel, BearerToken(nurse))
            )
            box = edge_pb2.PromptBox(x0=10, y0=10, x1=100, y1=100)
            stub.Prompt(edge_pb2.PromptRequest(latest=True, box=box), timeout=10)
            answers.append("OK")

    caller: list[threading.Thread] = []

    def on_serving(port: int) -> None:
        caller.append(threading.Thread(target=calls, args=(port,)))
        caller[0].start()

    run_edge(config, on_serving=on_serving, say=lambda _: None)
    caller[0].join(10)
    assert answers == ["UNAUTHENTICATED", "OK"]
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    actions = [line["action"] for line in lines]
    assert actions[0] == "config" and lines[0]["config"]["grpc"]["tokens"] == str(tokens)
    assert nurse not in (tmp_path / "audit.jsonl").read_text()  # never a token
    loaded = {line["model"]: line for line in lines if line["action"] == "model_loaded"}
    assert set(loaded) == {"pitvis_workflow", "imis_segmenter"}
    assert all(line["backend"] and line["principal"] == "edge" for line in loaded.values())
    refused = next(line for line in lines if line["action"] == "auth_refused")
    assert refused["method"] == "EdgeService/GetStatus" and refused["code"] == "UNAUTHENTICATED"
    prompt = next(line for line in lines if line["action"] == "prompt")
    assert prompt["principal"] == "nurse" and prompt["method"] == "EdgeService/Prompt"
    assert actions.index("recording_started") < actions.index("prompt")
    stopped = lines[-1]
    assert stopped["action"] == "recording_stopped" and stopped["frames"] == 48
    assert stopped["path"] == str(tmp_path / "or.mp4")
    assert stopped["segments"] == [str(tmp_path / "or.mp4")]
    assert all(line["time"].endswith("+00:00") for line in lines)
