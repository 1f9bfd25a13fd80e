"""CLI start time: the median wall time of short `tradeloop` commands, beside `python -c pass`.

Every command runs as a fresh process with `PYTHONDONTWRITEBYTECODE=1`, as on our machines and
CI, so what counts is the bytecode `./dev` compiled (`--uncompiled` points Python at an empty
bytecode cache to show the cost without it). `validate` and `status` run in a `tradeloop init`
project; `status` after one `tradeloop train`, so it reads a real registry (`--no-train` skips
the training). Target: <= 0.5 s for each command. Beside the wall time, the process's CPU time
(user + system): on a machine shared with other work it is the steadier figure.

    .venv/bin/python bench/cli_start.py [--runs 5] [--no-train] [--uncompiled]
                                        [--drift REF CUR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
TARGET_S = 0.5


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    cpu0, t0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - t0, _child_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return seconds, cpu


def median_of(argv: list[str], cwd: Path, env: dict[str, str], runs: int) -> tuple[float, float]:
    run(argv, cwd, env)  # warm the page cache; not counted
    times = [run(argv, cwd, env) for _ in range(runs)]
    return statistics.median(t for t, _ in times), statistics.median(c for _, c in times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-train", action="store_true", help="status on an untrained project")
    ap.add_argument("--uncompiled", action="store_true", help="ignore compiled bytecode")
    ap.add_argument("--drift", nargs=2, metavar=("REF", "CUR"), help="also time `drift REF CUR`")
    args = ap.parse_args()

    tradeloop = str(VENV_BIN / "tradeloop")
    with tempfile.TemporaryDirectory(prefix="tl-cli-start-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        for var in ("TRADELOOP_HOME", "TRADELOOP_DB_URL", "MLFLOW_TRACKING_URI"):
            env.pop(var, None)
        if args.uncompiled:
            (root / "no-pyc").mkdir()
            env["PYTHONPYCACHEPREFIX"] = str(root / "no-pyc")
        project = root / "proj"
        run([tradeloop, "init", str(project)], root, env)
        if not args.no_train:
            print("training once so that status reads a registered model ...", file=sys.stderr)
            run([tradeloop, "train", "--json"], project, env)

        # (label, argv, held to the start-time target)
        rows: list[tuple[str, list[str], bool]] = [
            ("python -c pass (floor)", [sys.executable, "-c", "pass"], False),
            ("tradeloop --help", [tradeloop, "--help"], True),
            ("tradeloop validate", [tradeloop, "validate"], True),
            ("tradeloop status", [tradeloop, "status"], True),
            ("tradeloop drift --help", [tradeloop, "drift", "--help"], True),
        ]
        if args.drift:
            ref, cur = (Path(p).resolve() for p in args.drift)
            label = f"tradeloop drift {ref.name} {cur.name}"
            rows.append((label, [tradeloop, "drift", str(ref), str(cur)], False))

        mode = "uncompiled" if args.uncompiled else "compiled bytecode"
        print(f"median of {args.runs} runs, PYTHONDONTWRITEBYTECODE=1, {mode}")
        print(f"{'command':<44} {'wall s':>8} {'cpu s':>8}  target")
        for label, argv, targeted in rows:
            s, cpu = median_of(argv, project, env, args.runs)
            mark = ("ok" if s <= TARGET_S else f"over {TARGET_S}") if targeted else ""
            print(f"{label:<44} {s:>8.3f} {cpu:>8.3f}  {mark}", flush=True)


if __name__ == "__main__":
    main()
