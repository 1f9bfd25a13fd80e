"""The demo's fault injection: a bad version the rollout's live analysis has to catch.

It is registered through `Registry` like any other version (lineage tags, alias, completion
mark), as if it had passed its gates; only its ONNX graph is altered.
"""

from __future__ import annotations

import numpy as np

from tradeloop.control.world import World
from tradeloop.registry.variants import register_variant


def inverted(onnx_bytes: bytes) -> bytes:
    """The same model with its signal inverted: prediction p becomes 1 - p."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    g = model.graph
    out = g.output[0].name
    g.node[-1].output[0] = "tradeloop_raw"  # the last node makes `prediction`
    g.initializer.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), "tradeloop_one"))
    g.node.append(
        helper.make_node("Sub", ["tradeloop_one", "tradeloop_raw"], [out], name="demo_invert")
    )
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [None]))
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def inject_inverted(world: World, base: str, reason: str) -> str:
    """Register `base` with its signal inverted as the new challenger; its version number."""
    reg, name = world.registry, world.name
    onnx_bytes, src = reg.fetch_onnx(name, base)
    mv = register_variant(
        reg,
        src,
        inverted(onnx_bytes),
        run_name="demo-fault-injection",
        reason=reason,
        trained_at=world.clock.now().isoformat(),
    )
    world.store.audit.append(
        "demo",
        "demo.fault_injection",
        f"model:{name}/{mv.version}",
        {"base": base, "reason": reason},
    )
    return mv.version
