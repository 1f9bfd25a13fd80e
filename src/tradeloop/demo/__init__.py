"""`tradeloop demo`: the whole loop, on a simulated clock, through the real gateway on loopback.

A fresh project (a real git repository) on the simulator with a regime change
(`templates/demo.yaml`). The clock starts with enough history to train; then, hour by simulated
hour, the market reveals one bar per symbol, a paper-trading client POSTs the bars to the
gateway and reads each account's signal over HTTP, and the controllers (trainer, deployer,
monitor) reconcile under the manager. Expected story: v1 trained, approved by policy, promoted;
the regime changes, drift is detected, v2 is trained for that reason, shadowed, canaried,
analysed and promoted; then a deliberately bad v3 (v2 with its signal inverted, a fault the demo
injects through the registry) is rolled back by analysis. Everything stays browsable
afterwards: MLflow, `tradeloop status`, `audit list`.

Modules: `run` (the hour-by-hour loop), `gateway` (uvicorn in a thread), `trader` (the paper
trading client), `fault` (the inverted v3), `story` (the result, its checks and summary).
"""

from __future__ import annotations

from tradeloop.demo.run import run_demo
from tradeloop.demo.story import DemoResult, dumps, phase_label, summary_lines

__all__ = ["DemoResult", "dumps", "phase_label", "run_demo", "summary_lines"]
