"""The ``server:`` section and ``edge run --server``: strict like every section, safe by
default (patient video never goes in the clear to another machine unasked), and only with a
recognizer to judge what may leave."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from orstream.edge.app.config import load_config, parse_config
from orstream.edge.app.handoffs import schedule_of
from orstream.edge.app.run_command import add_arguments, config_from_args
from orstream.edge.operators.handoff_clips import AutoHandOff
from orstream.errors import OrstreamError

BASE = {"sources": [{"uri": "a.mp4", "stream_id": "endo"}, {"uri": "b.mp4", "stream_id": "exo"}]}


def config(server: dict, **more: object) -> dict:
    return {**BASE, "model": {"package": "pkg"}, "server": server, **more}


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_section_is_strict_and_safe() -> None:
    made = parse_config(config({"address": "127.0.0.1:50061"}), "t").server
    assert made is not None and made.outbox.name == "outbox" and made.handoffs == ()
    for server, problem in (
        ({"address": "127.0.0.1:1", "retrys": {}}, "retrys"),
        ({"address": "10.0.0.5:50061"}, "give tls_ca"),
        ({"address": "127.0.0.1:1", "handoffs": [{"kind": "Probe!", "every_s": 1, "seconds": 1}]},
         "not a kind name"),
        ({"address": "127.0.0.1:1", "handoffs": [{"kind": "probe", "every_s": 9, "seconds": 90}]},
         "longer than max_clip_s"),
        ({"address": "127.0.0.1:1", "handoffs": [
            {"kind": "probe", "every_s": 9, "seconds": 9, "streams": ["endoo"]}]},
         "stream 'endoo'"),
        ({"address": "127.0.0.1:1", "retry": {"initial_s": 5, "max_s": 1}}, "max_s"),
    ):  # fmt: skip
        with pytest.raises(OrstreamError, match=problem):
            parse_config(config(server), "t")
    with pytest.raises(OrstreamError, match="server needs a recognizer"):
        parse_config({**BASE, "server": {"address": "127.0.0.1:1"}}, "t")
    insecure = parse_config(config({"address": "10.0.0.5:1", "insecure": True}), "t").server
    assert insecure is not None and insecure.tls_ca is None


def test_automatic_hand_offs_go_to_the_streams_they_name(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "sources: [{uri: a.mp4, stream_id: endo}, {uri: b.mp4, stream_id: exo}]\n"
        "model: {package: pkg}\n"
        "server:\n"
        "  address: 127.0.0.1:50061\n"
        "  outbox: state/outbox\n"
        "  tls_ca: ca.pem\n"
        "  handoffs:\n"
        "    - {kind: probe, every_s: 60, seconds: 20, streams: [endo], params: {window_s: '2'}}\n"
        "    - {kind: probe, every_s: 300, seconds: 30}\n"
    )
    server = load_config(path).server
    assert server is not None
    assert (server.outbox, server.tls_ca) == (tmp_path / "state/outbox", tmp_path / "ca.pem")
    assert schedule_of(server, "endo") == (
        AutoHandOff("probe", 60.0, 20.0, {"window_s": "2"}),
        AutoHandOff("probe", 300.0, 30.0),
    )
    assert schedule_of(server, "exo") == (AutoHandOff("probe", 300.0, 30.0),)


def test_edge_run_server_options(tmp_path: Path) -> None:
    made = config_from_args(
        args(
            "--source", "a.mp4", "--model", "pkg", "--server", "10.1.1.1:50061",
            "--server-tls-ca", "ca.pem", "--server-token-file", "t.token",
            "--outbox", str(tmp_path),
        )
    ).server  # fmt: skip
    assert made is not None
    assert (made.address, made.tls_ca, made.token_file, made.outbox) == (
        "10.1.1.1:50061",
        Path("ca.pem"),
        Path("t.token"),
        tmp_path,
    )
    with pytest.raises(OrstreamError, match="--outbox needs --server"):
        config_from_args(args("--source", "a.mp4", "--outbox", str(tmp_path)))
    with pytest.raises(OrstreamError, match="server-insecure"):
        config_from_args(args("--source", "a.mp4", "--model", "p", "--server", "10.1.1.1:1"))
    unsafe = config_from_args(
        args("--source", "a.mp4", "--model", "p", "--server", "10.1.1.1:1", "--server-insecure")
    )
    assert unsafe.server is not None and unsafe.server.insecure
