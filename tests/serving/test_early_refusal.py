"""Early refusals (413 and friends): the client reads the status and JSON body, whatever it sends."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tradeloop.spec import ServingSpec


@pytest.mark.parametrize("path", ["/invocations", "/v2/models/demo/infer"])
def test_urllib_sending_11_mb_reads_the_413(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None], path: str
) -> None:
    deployer(("champion", "1", "live", 100))
    url = live(make_app(serving=ServingSpec())).url  # 4 MiB limit
    body = b'{"inputs": [' + b" " * (11 * 1024 * 1024) + b"]}"
    req = urllib.request.Request(
        url + path, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 413
    doc = json.loads(err.value.read())
    assert "over the limit" in json.dumps(doc)


def test_an_unmatched_route_reads_the_body_before_its_404(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    deployer(("champion", "1", "live", 100))
    url = live(make_app()).url
    req = urllib.request.Request(url + "/nowhere", data=b"x" * (11 * 1024 * 1024), method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 404 and "no route /nowhere" in json.loads(err.value.read())["message"]


def test_a_client_expecting_100_continue_gets_the_413_without_sending(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    """curl's way with big bodies: headers first, the body only after `100 Continue`."""
    import socket

    deployer(("champion", "1", "live", 100))
    host, port = live(make_app()).url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 11534336\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = b""
        while chunk := s.recv(65536):  # the server closes after answering
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()
    assert b"100 Continue" not in head and b"over the limit" in body
