"""`tradeloop ingest`: consume `data.stream`, list its dead letters, replay a file into it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tradeloop.cli._common import (
    JsonOpt,
    PipelineOpt,
    SpecOpt,
    emit_json,
    err,
    handle_errors,
    load_project,
    out,
)
from tradeloop.errors import BadInput

if TYPE_CHECKING:
    from tradeloop.project import Project
    from tradeloop.spec import StreamSpec

ingest_app = typer.Typer(
    help="Consume the live stream (data.stream): validate, persist, feed gateways, publish signals.",
    invoke_without_command=True,
)


def _stream(project: Project) -> StreamSpec:
    from tradeloop.stream.service import stream_spec

    return stream_spec(project)


async def _replay(project: Project, path: Path, speed: float) -> int:
    import polars as pl

    from tradeloop.data.bar_rules import Bar
    from tradeloop.stream.messages import encode
    from tradeloop.stream.source import stream_source

    spec = _stream(project)
    try:
        df = (
            pl.read_parquet(path)
            if path.suffix == ".parquet"
            else pl.read_csv(path, try_parse_dates=True)
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise BadInput(f"cannot read bars from {path}: {exc}") from exc
    need = ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise BadInput(f"{path}: missing columns {missing} (need {', '.join(need)})")
    df = df.sort("timestamp", "symbol")
    source = stream_source(spec)
    await source.open()
    subject = spec.subject.replace(">", "replay").replace("*", "replay")
    sent, prev = 0, None
    try:
        for (ts,), group in df.group_by(["timestamp"], maintain_order=True):
            if speed > 0 and prev is not None:
                await asyncio.sleep(max(0.0, (ts - prev).total_seconds() / speed))
            prev = ts
            bars = [
                Bar(
                    r["symbol"],
                    r["timestamp"],
                    r["open"],
                    r["high"],
                    r["low"],
                    r["close"],
                    r["volume"],
                )
                for r in group.iter_rows(named=True)
            ]
            await source.publish(subject, encode(bars))
            sent += len(bars)
    finally:
        await source.close()
    return sent


@ingest_app.callback()
@handle_errors
def ingest(
    ctx: typer.Context,
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
    gateway: Annotated[
        list[str] | None,
        typer.Option(help="Gateway URL to feed (repeat for replicas); its /v1/bars and signals."),
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Token for the gateways (default: $TRADELOOP_TOKEN).")
    ] = None,
    until_idle: Annotated[
        bool, typer.Option(help="Stop when the stream has nothing more (tests, backfills).")
    ] = False,
    replay: Annotated[
        Path | None,
        typer.Option(help="Publish this CSV/Parquet file's bars to the stream instead."),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Replay speed, a multiple of real time (0: as fast as possible).")
    ] = 0.0,
) -> None:
    """Consume data.stream until stopped (SIGTERM/SIGINT finish the batch in hand)."""
    if ctx.invoked_subcommand is not None:
        return
    project = load_project(spec, pipeline)
    if replay is not None:
        if speed < 0:
            raise BadInput(f"--speed must be >= 0, got {speed}")
        n = asyncio.run(_replay(project, replay, speed))
        doc: dict[str, Any] = {"published": n}
    else:
        from tradeloop.stream.service import consume

        tok = token or os.environ.get("TRADELOOP_TOKEN")
        doc = asyncio.run(consume(project, gateway or [], tok, until_idle=until_idle))
    if json_:
        emit_json(doc)
    else:
        out.print(", ".join(f"{k}: {v}" for k, v in doc.items()))


@ingest_app.command("dead-letters")
@handle_errors
def dead_letters(
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
) -> None:
    """Refused messages and bars, with the reason (newest first)."""
    from tradeloop.stream import deadletters

    project = load_project(spec, pipeline)
    consumer = _stream(project).consumer
    rows = deadletters.listed(project.store, consumer, limit)
    if json_:
        emit_json(
            {
                "dead_letters": [r.to_dict() for r in rows],
                "counts": deadletters.counts(project.store, consumer),
            }
        )
        return
    if not rows:
        err.print("no dead letters")
    for r in rows:
        out.print(f"{r.id:>6} {r.received_at:%Y-%m-%d %H:%M:%S} {r.code:<12} {r.reason}")
        out.print(f"       {r.raw[:200]}")
