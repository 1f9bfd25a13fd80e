"""The fast lane (prediction routes answered from the parser's callbacks) keeps HTTP/1.1's
contract: pipelined requests answer in order, mixed with uvicorn's path; `Connection: close`
and HTTP/1.0 close after the answer; a body in pieces, a chunked body, a suspended endpoint (a
token looked up in the store) and early refusals answer as with the lane off."""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import pytest

from tradeloop.security.tokens import create_token
from tradeloop.spec import ServingSpec
from tradeloop.store import Store

FEATURES = ["ret_1", "ret_5", "vol_20"]


def row_body(*row: float) -> bytes:
    return json.dumps({"dataframe_split": {"columns": FEATURES, "data": [list(row)]}}).encode()


def v1(*row: float) -> float:
    """What v1 of the test model answers: sigmoid(x . (1, 0.5, -0.25))."""
    return 1.0 / (1.0 + math.exp(-(row[0] + 0.5 * row[1] - 0.25 * row[2])))


def post(path: str, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    head = [f"POST {path} HTTP/{version}", "Host: test", "Content-Type: application/json"]
    head += [f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def connect(url: str) -> socket.socket:
    u = urlparse(url)
    return socket.create_connection((u.hostname, u.port), timeout=10)


def read_answers(s: socket.socket, n: int) -> tuple[list[Answer], bool]:
    """`n` responses (by Content-Length), and whether the server then closed the connection."""
    buf, answers = b"", []
    while len(answers) < n:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError(f"closed after {len(answers)} of {n} answers")
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        size = int(headers["content-length"])
        while len(buf) < size:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("closed inside a body")
            buf += chunk
        answers.append(Answer(int(lines[0].split()[1]), headers, buf[:size]))
        buf = buf[size:]
    s.settimeout(2)
    try:
        closed = s.recv(1) == b""
    except TimeoutError:
        closed = False
    except OSError:
        closed = True
    return answers, closed


@pytest.fixture
def gateway(make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]) -> Any:
    def start(**serving: Any) -> str:
        deployer(("champion", "1", "live", 100))
        return str(live(make_app(serving=ServingSpec(**serving))).url)

    return start


@pytest.mark.parametrize("fast", [True, False])
def test_pipelined_requests_answer_in_order_across_both_paths(gateway: Any, fast: bool) -> None:
    url = gateway(fast_lane=fast)
    s = connect(url)
    s.sendall(
        post("/invocations", row_body(0.01, 0.02, 0.015), "X-Request-Id: a")
        + b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n"
        + post("/invocations", row_body(1.0, 2.0, 4.0), "X-Request-Id: b")
        + post("/invocations", b"{not json", "X-Request-Id: c")
        + post("/invocations", row_body(-1.0, 0.0, 0.0), "X-Request-Id: d")
    )
    answers, closed = read_answers(s, 5)
    s.close()
    assert [a.status for a in answers] == [200, 200, 200, 400, 200]
    ids = [a.headers["x-request-id"] for a in answers]
    assert [ids[0], *ids[2:]] == ["a", "b", "c", "d"]
    assert answers[0].json()["predictions"][0]["prediction"] == pytest.approx(
        v1(0.01, 0.02, 0.015), rel=1e-6
    )
    assert answers[1].body == b"\n"
    assert answers[2].json()["predictions"][0]["prediction"] == pytest.approx(
        v1(1.0, 2.0, 4.0), rel=1e-6
    )
    assert "not valid JSON" in answers[3].json()["message"]
    assert answers[4].json()["predictions"][0]["prediction"] == pytest.approx(
        v1(-1.0, 0.0, 0.0), rel=1e-6
    )
    assert not closed  # keep-alive


@pytest.mark.parametrize(
    "request_bytes",
    [
        post("/invocations", row_body(1.0, 0.0, 0.0), "Connection: close"),
        post("/invocations", row_body(1.0, 0.0, 0.0), version="1.0"),
    ],
    ids=["connection-close", "http-1.0"],
)
def test_a_closing_request_gets_its_answer_then_the_close(
    gateway: Any, request_bytes: bytes
) -> None:
    s = connect(gateway())
    s.sendall(request_bytes + post("/invocations", row_body(2.0, 0.0, 0.0)))
    answers, closed = read_answers(s, 1)
    s.close()
    assert answers[0].status == 200
    assert answers[0].headers["connection"] == "close"
    assert answers[0].json()["predictions"][0]["prediction"] == pytest.approx(
        v1(1.0, 0.0, 0.0), rel=1e-6
    )
    assert closed  # and the second request was not answered


def test_a_body_in_pieces_and_a_chunked_body_are_both_scored(gateway: Any) -> None:
    s = connect(gateway())
    body = row_body(0.5, 0.5, 0.5)
    whole = post("/invocations", body)
    split = len(whole) - len(body) // 2
    s.sendall(whole[: len(whole) - len(body)])  # headers only
    time.sleep(0.2)
    s.sendall(whole[len(whole) - len(body) : split])
    time.sleep(0.2)
    s.sendall(whole[split:])
    chunked = (
        b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body[:10])
        + body[:10]
        + b"\r\n"
        + b"%x\r\n" % len(body[10:])
        + body[10:]
        + b"\r\n0\r\n\r\n"
    )
    s.sendall(chunked)
    answers, closed = read_answers(s, 2)
    s.close()
    for a in answers:
        assert a.status == 200
        assert a.json()["predictions"][0]["prediction"] == pytest.approx(
            v1(0.5, 0.5, 0.5), rel=1e-6
        )
    assert not closed


def test_an_endpoint_that_waits_on_the_store_still_answers_in_order(
    gateway: Any, store: Store
) -> None:
    """With tokens on, the first use of a token reads the store off the loop: the endpoint
    suspends, and the requests pipelined behind it wait for its answer."""
    url = gateway(require_token=True)
    plain, _ = create_token(store, "p", "predictor")
    auth = f"Authorization: Bearer {plain}"
    s = connect(url)
    s.sendall(
        post("/invocations", row_body(3.0, 0.0, 0.0), auth, "X-Request-Id: first")
        + post("/invocations", row_body(4.0, 0.0, 0.0), "X-Request-Id: anonymous")
        + post("/invocations", row_body(5.0, 0.0, 0.0), auth, "X-Request-Id: again")
        + post("/invocations", row_body(6.0, 0.0, 0.0), "Authorization: Bearer nope")
    )
    answers, closed = read_answers(s, 4)
    s.close()
    assert [a.status for a in answers] == [200, 401, 200, 401]
    assert [a.headers["x-request-id"] for a in answers[:3]] == ["first", "anonymous", "again"]
    assert answers[0].json()["predictions"][0]["prediction"] == pytest.approx(
        v1(3.0, 0.0, 0.0), rel=1e-6
    )
    assert answers[2].json()["predictions"][0]["prediction"] == pytest.approx(
        v1(5.0, 0.0, 0.0), rel=1e-6
    )
    assert not closed


def comparable(a: Answer) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in a.headers.items() if k not in ("date", "x-request-id")}
    return a.status, headers, a.json()


def test_the_lane_answers_exactly_as_uvicorns_path(gateway: Any) -> None:
    """Same status, headers and body, on and off, for good and refused requests alike."""
    requests = [
        post("/invocations", row_body(0.1, 0.2, 0.3)),
        post("/invocations", b'{"dataframe_split": {"columns": ["x"], "data": [[1]]}}'),
        post("/invocations", b"[]"),
        b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}",  # no type
        post("/invocations", b" " * 2000),  # over max_body_bytes (1024)
        post("/v2/models/demo/infer", b'{"inputs": []}'),
        post(
            "/v2/models/demo/infer",
            json.dumps(
                {
                    "inputs": [
                        {"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
                    ]
                }
            ).encode(),
        ),
    ]
    results = []
    for fast in (True, False):
        url = gateway(fast_lane=fast, max_body_bytes=1024)
        s = connect(url)
        s.sendall(b"".join(requests))
        answers, _ = read_answers(s, len(requests))
        s.close()
        results.append([comparable(a) for a in answers])
    assert results[0] == results[1]
    assert [r[0] for r in results[0]] == [200, 400, 400, 415, 413, 400, 200]
