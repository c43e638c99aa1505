"""The dashboard over TLS with the edge's certificate (the gRPC API's ``--tls-cert`` and
``--tls-key``): Chromium trusting that certificate's key gets the page over https, logs in with
a Secure, HttpOnly session cookie and plays the video; a Chromium without that trust is
refused the page; a script trusting the test CA reads the state, one trusting another CA is
refused, and plain HTTP gets no page."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_pages import CHROMIUM, log_in, needs_chromium, wait_for_video
from running_edge import LONG, RunningEdge, running_edge
from tls_certificates import make_pki

pytestmark = needs_chromium
sync_api = pytest.importorskip("playwright.sync_api")


def spki_sha256(certificate: Path) -> str:
    """The base64 SHA-256 of a certificate's public key, as Chromium pins keys."""
    public = subprocess.run(
        ["openssl", "x509", "-in", str(certificate), "-pubkey", "-noout"],
        check=True,
        capture_output=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=public,
        check=True,
        capture_output=True,
    ).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def browser_args(pki: Path) -> list[str]:
    """Trust exactly the edge's certificate (its key), as a hospital's managed CA would."""
    return [f"--ignore-certificate-errors-spki-list={spki_sha256(pki / 'server.pem')}"]


@pytest.fixture(scope="module")
def edge(
    project_root: Path, tmp_path_factory: pytest.TempPathFactory, pki: Path
) -> Iterator[RunningEdge]:
    folder = tmp_path_factory.mktemp("dashboard-tls")
    with running_edge(project_root, folder, (LONG,), segmenter=False, tls=pki) as running:
        yield running


def test_the_page_comes_over_https_with_a_secure_session(page: Any, edge: RunningEdge) -> None:
    assert edge.web_url.startswith("https://")
    log_in(page, edge.web_url, edge.viewer_token)
    wait_for_video(page)
    assert page.evaluate("location.protocol") == "https:"
    (session,) = [c for c in page.context.cookies() if c["name"] == "orstream_session"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"


def test_a_browser_without_trust_in_the_certificate_gets_no_page(
    browser: Any, edge: RunningEdge
) -> None:
    untrusting = browser.browser_type.launch(executable_path=CHROMIUM, headless=True)
    try:
        with pytest.raises(sync_api.Error, match="ERR_CERT_AUTHORITY_INVALID"):
            untrusting.new_page().goto(edge.web_url + "/")
    finally:
        untrusting.close()


def test_scripts_need_the_ca_and_plain_http_gets_nothing(edge: RunningEdge, pki: Path) -> None:
    request = urllib.request.Request(
        edge.web_url + "/api/state", headers={"Authorization": f"Bearer {edge.viewer_token}"}
    )
    trusting = ssl.create_default_context(cafile=pki / "ca.pem")
    with urllib.request.urlopen(request, context=trusting) as response:
        assert [s["id"] for s in json.load(response)["streams"]] == ["or1"]
    other = ssl.create_default_context(cafile=pki / "other-ca.pem")
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(request, context=other)
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(edge.web_url.replace("https://", "http://") + "/", timeout=10)
