"""`tradeloop demo`: the closed loop on the simulator, start to finish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tradeloop.cli._common import JsonOpt, emit_json, err, handle_errors, out


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def demo(
        json_: JsonOpt = False,
        workdir: Annotated[
            Path | None,
            typer.Option(help="Keep the demo project here (default: a new temporary folder)."),
        ] = None,
        broker: Annotated[
            str | None,
            typer.Option(
                help="Send the market through this broker (nats at 127.0.0.1:4222, redis at "
                "127.0.0.1:6379) and `tradeloop ingest`, instead of HTTP pushes."
            ),
        ] = None,
        hours: Annotated[
            int | None,
            typer.Option(min=1, help="Stop after this many simulated hours (a partial story)."),
        ] = None,
    ) -> None:
        """Train, gate, promote, detect drift, retrain, canary, and roll back a bad model."""
        from tradeloop.demo import run_demo, summary_lines

        def show(e: dict[str, Any]) -> None:
            if not json_:
                v = f" v{e['version']}" if e.get("version") else ""
                phase = f"[cyan]→ {e['phase']}[/cyan] " if e.get("phase") else ""
                out.print(
                    f"[dim]{e['t'][:16]}[/dim] [bold]{e['controller']:<9}[/bold] "
                    f"{e['action']:<14}{v:<5} {phase}{escape(e['reason'])}",
                    highlight=False,
                )

        result = run_demo(workdir, on_event=show, broker=broker, hours=hours)
        if json_:
            emit_json(
                {
                    "events": result.events,
                    "state": result.state,
                    "ok": result.ok,
                    "problems": result.problems,
                    "seconds": round(result.seconds, 1),
                    "project": result.project,
                }
            )
        else:
            out.print()
            for line in summary_lines(result):
                out.print(line, markup=False)
            out.print(
                f"demo finished in {result.seconds:.0f}s: "
                + ("the whole loop ran" if result.ok else "INCOMPLETE")
            )
        if not result.ok and hours is None:  # with --hours the story is partial by design
            err.print("demo story incomplete: " + "; ".join(result.problems))
            raise typer.Exit(1)
