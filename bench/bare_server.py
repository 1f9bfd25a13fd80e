"""The practical limit: Starlette + onnxruntime with nothing else (no routing, log or metrics).

One POST route taking MLflow's `dataframe_split` body (the bench's body), one ORT thread,
uvicorn with uvloop and httptools, no access log. `bench/serving.py` runs it beside the
gateway on the same model and body.

    .venv/bin/python bench/bare_server.py MODEL.onnx PORT
    BARE_WORKERS=2 .venv/bin/python bench/bare_server.py MODEL.onnx PORT  # uvicorn's workers
"""

from __future__ import annotations

import os
import sys

import numpy as np
import onnxruntime as ort
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def make_app(model: str) -> Starlette:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    async def invocations(request: Request) -> Response:
        doc = orjson.loads(await request.body())
        x = np.array(doc["dataframe_split"]["data"], dtype=np.float32)
        y = session.run(None, {"input": x})[0].reshape(-1)
        body = orjson.dumps({"predictions": [{"prediction": v} for v in y.tolist()]})
        return Response(body, media_type="application/json")

    async def ping(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(
        routes=[Route("/invocations", invocations, methods=["POST"]), Route("/ping", ping)]
    )


def app_from_env() -> Starlette:
    """For uvicorn's workers, which import the app by name in each process."""
    return make_app(os.environ["BARE_MODEL"])


if __name__ == "__main__":
    workers = int(os.environ.get("BARE_WORKERS", "1"))
    os.environ["BARE_MODEL"] = sys.argv[1]
    uvicorn.run(
        make_app(sys.argv[1]) if workers == 1 else "bare_server:app_from_env",
        factory=workers > 1,
        workers=workers,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host="127.0.0.1",
        port=int(sys.argv[2]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
