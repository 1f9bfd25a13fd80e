"""`tradeloop serve --tls-cert --tls-key [--tls-client-ca]`, with certificates made in the test."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.net import free_port

from tradeloop.errors import BadInput
from tradeloop.serving.tls import tls_options
from tradeloop.templates import init_project

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))


def _issue(
    folder: Path, name: str, *, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer, signer = (ca[0].subject, ca[1]) if ca else (subject, key)
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = b.sign(signer, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


def test_tls_options_refuse_bad_input(tmp_path: Path) -> None:
    assert tls_options(None, None) == {}
    with pytest.raises(BadInput, match="both --tls-cert and --tls-key"):
        tls_options(tmp_path / "c.pem", None)
    with pytest.raises(BadInput, match="--tls-cert: no file"):
        tls_options(tmp_path / "c.pem", tmp_path / "k.pem")
    (tmp_path / "c.pem").write_text("not a certificate")
    (tmp_path / "k.pem").write_text("nor a key")
    with pytest.raises(BadInput, match="cannot load"):
        tls_options(tmp_path / "c.pem", tmp_path / "k.pem")


@pytest.mark.slow
def test_serve_over_tls_with_client_certificates(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    ca = _issue(certs, "ca", ca=None)
    _issue(certs, "server", ca=ca, server=True)
    _issue(certs, "client", ca=ca)
    root = init_project(tmp_path / "proj", "tlsproj").parent
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [TRADELOOP, "serve", "--port", str(port),
         "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
         "--tls-client-ca", str(certs / "ca.pem")],
        cwd=root, env=env, stdout=log, stderr=log,
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}/healthz"
    trust = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    mutual = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    mutual.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
    try:
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and answer is None:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                answer = httpx.get(url, verify=mutual, timeout=2)
            except httpx.ConnectError:
                time.sleep(0.3)
        assert answer is not None and answer.status_code == 200
        assert answer.json() == {"status": "ok"}
        with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake fails
            httpx.get(url, verify=trust, timeout=5).raise_for_status()
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
