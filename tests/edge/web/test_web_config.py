"""``web:`` and ``--web``: the dashboard follows gRPC's rule, loopback may run without tokens,
any other address needs the API's TLS and tokens unless insecure."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from orstream.edge.app.config import parse_config
from orstream.edge.app.run_command import add_arguments, config_from_args
from orstream.errors import OrstreamError

SOURCE = {"uri": "phantom://"}


def test_a_loopback_dashboard_needs_nothing_more() -> None:
    config = parse_config({"source": SOURCE, "web": {"address": "127.0.0.1:8080"}}, "test")
    assert config.web is not None and config.web.ice_servers == () and config.web.max_viewers == 4


def test_another_address_needs_tls_and_tokens_or_insecure(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match=r"web: address 0\.0\.0\.0:8080 is reachable"):
        parse_config({"source": SOURCE, "web": {"address": "0.0.0.0:8080"}}, "test")
    secure = {"tokens": tmp_path / "t.yaml", "tls_cert": tmp_path / "c", "tls_key": tmp_path / "k"}
    parse_config({"source": SOURCE, "web": {"address": "0.0.0.0:8080"}, "grpc": secure}, "test")
    parse_config({"source": SOURCE, "web": {"address": "0.0.0.0:8080", "insecure": True}}, "test")


def test_unknown_keys_and_ice_servers() -> None:
    with pytest.raises(OrstreamError, match="stun"):
        parse_config({"source": SOURCE, "web": {"address": "127.0.0.1:1", "stun": "x"}}, "test")
    config = parse_config(
        {
            "source": SOURCE,
            "web": {
                "address": "127.0.0.1:1",
                "ice_servers": [
                    {"urls": ["turn:turn.lan:3478"], "username": "u", "credential": "c"}
                ],
            },
        },
        "test",
    )
    assert config.web is not None and config.web.ice_servers[0].urls == ("turn:turn.lan:3478",)


def test_the_command_line_sets_the_section() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--source", "phantom://", "--web", "0.0.0.0:8080", "--insecure"])
    config = config_from_args(args)
    assert config.web is not None and config.web.address == "0.0.0.0:8080" and config.web.insecure
    assert config.grpc.insecure
