"""The Open Inference Protocol's message classes, compiled from `inference.proto` at first use.

grpcio-tools' protoc compiles the `.proto` to a descriptor set (no generated code in the
repository), cached by content hash under `~/.cache/tradeloop/grpc` (`TRADELOOP_CACHE_DIR`
or `XDG_CACHE_HOME` move it). The classes live in a private descriptor pool: tritonclient and
the kserve SDK register their own `inference.*` messages in protobuf's default pool, and two
definitions of one name in a pool are an error, so the gateway and those clients could not
otherwise share a process.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from tradeloop.errors import TradeloopError

PROTO = "inference.proto"
SERVICE = "inference.GRPCInferenceService"


@dataclass(frozen=True)
class Method:
    """One RPC: its wire path, and the classes that decode its request and encode its reply."""

    name: str
    path: str  # "/inference.GRPCInferenceService/ModelInfer"
    request: Any
    response: Any


@dataclass(frozen=True)
class Stubs:
    methods: dict[str, Method]  # by RPC name
    messages: dict[str, Any]  # by short name: "ModelInferRequest", "InferTensorContents", ...

    def __getitem__(self, name: str) -> Any:
        return self.messages[name]


def cache_dir() -> Path:
    base = os.environ.get("TRADELOOP_CACHE_DIR")
    if base:
        return Path(base) / "grpc"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "tradeloop" / "grpc"


def _compile(proto: Path, out: Path) -> None:
    """protoc (grpcio-tools) -> a serialized FileDescriptorSet at `out`, written atomically."""
    from grpc_tools import protoc

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    os.close(fd)
    try:
        code = protoc.main(
            ["protoc", f"-I{proto.parent}", f"--descriptor_set_out={tmp}", proto.name]
        )
        if code != 0:
            raise TradeloopError(f"protoc failed on {proto} (exit {code}); see its message above")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def descriptor_set(*, force: bool = False) -> bytes:
    """The compiled `inference.proto`, from the cache when this exact text was compiled before
    (`force`: compile again, replacing what the cache holds)."""
    from importlib.metadata import version

    proto = Path(str(files(__package__) / PROTO))
    text = proto.read_bytes()
    key = hashlib.sha256(text + version("grpcio-tools").encode()).hexdigest()[:16]
    target = cache_dir() / f"inference-{key}.pb"
    try:
        if force or not target.exists():
            _compile(proto, target)
    except OSError:  # an unwritable cache: compile into a temporary folder instead
        with tempfile.TemporaryDirectory() as tmp:
            fallback = Path(tmp) / target.name
            _compile(proto, fallback)
            return fallback.read_bytes()
    return target.read_bytes()


@functools.cache
def load() -> Stubs:
    """The message classes and the service's methods, built once per process."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from google.protobuf.message import DecodeError

    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set())
    except DecodeError:  # a damaged cache file: compile again
        fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set(force=True))
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    file = pool.FindFileByName(PROTO)
    messages: dict[str, Any] = {}

    def collect(desc: Any) -> None:
        messages[desc.full_name.removeprefix(file.package + ".")] = message_factory.GetMessageClass(
            desc
        )
        for nested in desc.nested_types:
            collect(nested)

    for desc in file.message_types_by_name.values():
        collect(desc)
    service = pool.FindServiceByName(SERVICE)
    methods = {
        m.name: Method(
            m.name,
            f"/{SERVICE}/{m.name}",
            message_factory.GetMessageClass(m.input_type),
            message_factory.GetMessageClass(m.output_type),
        )
        for m in service.methods
    }
    return Stubs(methods, messages)
