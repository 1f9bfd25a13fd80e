"""Connection hygiene: slowloris and idle connections are closed by the server, and past the
connection limit the gateway answers 503 instead of queueing without bound."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import httpx

from tradeloop.spec import ServingSpec

FEATURES = ["ret_1", "ret_5", "vol_20"]
ROW = {"dataframe_split": {"columns": FEATURES, "data": [[0.01, 0.02, 0.015]]}}


def connect(url: str) -> socket.socket:
    u = urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=5)
    s.setblocking(False)
    return s


def closed_by_server(s: socket.socket) -> bool:
    """True once the server has closed `s` (EOF or reset); never blocks."""
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        return s.recv(4096) == b""
    except OSError:
        return True


def drip_until_closed(socks: list[socket.socket], limit: float = 30.0) -> set[int]:
    """Send each connection one more header byte per round (slowloris) until the server has
    closed them all, or `limit` seconds pass; return the indices the server closed."""
    closed: set[int] = set()
    deadline = time.monotonic() + limit
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                s.send(b"x")
            except OSError:
                closed.add(i)
                continue
            if closed_by_server(s):
                closed.add(i)
        time.sleep(0.05)
    return closed


def test_slowloris_and_silent_connections_are_closed_by_the_server(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    deployer(("champion", "1", "live", 100))
    url = live(make_app(serving=ServingSpec(header_timeout=0.5))).url
    slow = [connect(url) for _ in range(20)]
    for s in slow:
        s.send(b"POST /invocations HTTP/1.1\r\nHost: test\r\nX-Slow-")
    silent = [connect(url) for _ in range(5)]
    assert drip_until_closed(slow) == set(range(len(slow)))
    deadline = time.monotonic() + 30
    while not all(closed_by_server(s) for s in silent) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(closed_by_server(s) for s in silent)
    # a client sending whole requests is unaffected, also over a kept-alive connection
    with httpx.Client(base_url=url) as client:
        for _ in range(3):
            assert client.post("/invocations", json=ROW).status_code == 200
    for s in slow + silent:
        s.close()


def test_idle_keep_alive_connections_are_closed(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    deployer(("champion", "1", "live", 100))
    url = live(make_app(serving=ServingSpec(idle_timeout=0.3))).url
    s = connect(url)
    s.send(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    deadline = time.monotonic() + 30
    answered = b""
    while b"\r\n\r\n" not in answered and time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.1)
        if r:
            answered += s.recv(4096)
    assert answered.startswith(b"HTTP/1.1 200")
    while not closed_by_server(s) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert closed_by_server(s)
    s.close()


def test_past_the_connection_limit_the_gateway_says_503(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    deployer(("champion", "1", "live", 100))
    url = live(make_app(serving=ServingSpec(max_connections=4, header_timeout=60))).url
    held = [connect(url) for _ in range(4)]
    try:
        r = httpx.post(url + "/invocations", json=ROW)
        assert r.status_code == 503
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.post(url + "/invocations", json=ROW).status_code == 200:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the gateway did not recover after the connections closed")
