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
