"""Test certificates made with openssl: a CA, another CA no server trusts, a server certificate
for 127.0.0.1 and localhost, and a client certificate (EC P-256, valid two days)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def signed(name: str, ca: str, folder: Path, san: str | None = None) -> None:
    """``name.key`` and ``name.pem`` signed by ``ca`` (EC P-256, valid two days)."""
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
            f"/CN={name}", cwd=folder)  # fmt: skip
    extra = []
    if san is not None:
        (folder / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *extra, cwd=folder)  # fmt: skip


def make_pki(folder: Path) -> Path:
    """``ca``, ``other-ca``, ``server`` (signed by ``ca``) and ``client`` (signed by ``ca``),
    each as ``NAME.pem`` and ``NAME.key`` in ``folder``; returns ``folder``."""
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN={ca}", cwd=folder)  # fmt: skip
    signed("server", "ca", folder, "IP:127.0.0.1,DNS:localhost")
    signed("client", "ca", folder)
    return folder
