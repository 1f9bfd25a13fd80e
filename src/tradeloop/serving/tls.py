"""TLS for the gateway: a certificate and key, and optionally client certificates (mTLS).

uvicorn terminates TLS itself; this turns the CLI's three paths into its options, after
checking that the files exist and load, so a wrong path fails at start with its name
rather than as a handshake error on the first request.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from tradeloop.errors import BadInput


def tls_options(
    cert: Path | None, key: Path | None, client_ca: Path | None = None
) -> dict[str, Any]:  # uvicorn.Config keywords of several types
    """uvicorn options for TLS; {} when no certificate is given (plain HTTP on loopback)."""
    if cert is None and key is None:
        if client_ca is not None:
            raise BadInput("--tls-client-ca needs --tls-cert and --tls-key")
        return {}
    if cert is None or key is None:
        raise BadInput("give both --tls-cert and --tls-key")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-client-ca", client_ca)):
        if path is not None and not path.is_file():
            raise BadInput(f"{flag}: no file at {path}")
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_cert_chain(str(cert), str(key))
        if client_ca is not None:
            probe.load_verify_locations(str(client_ca))
    except (ssl.SSLError, OSError) as exc:
        raise BadInput(f"cannot load the TLS certificate, key or client CA: {exc}") from exc
    opts: dict[str, Any] = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    if client_ca is not None:
        opts.update(ssl_ca_certs=str(client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return opts
