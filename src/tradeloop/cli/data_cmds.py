"""`tradeloop data check` and `tradeloop data snapshot`."""

from __future__ import annotations

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

data_app = typer.Typer(help="Market data: validate and snapshot.", no_args_is_help=True)


@data_app.command("check")
@handle_errors
def check(spec: SpecOpt = None, pipeline: PipelineOpt = None, json_: JsonOpt = False) -> None:
    """Validate the spec's market data; exit 2 if any check is an error."""
    from tradeloop.data.source import raw_bars
    from tradeloop.data.validation import validate_bars

    project = load_project(spec, pipeline)
    d = project.spec.data
    _, report = validate_bars(
        raw_bars(d, project.root, project.live_bars_dir), d.frequency, d.calendar, d.validation
    )
    if json_:
        emit_json(report.to_dict())
    else:
        (out if report.ok else err).print(report.summary(), markup=False)
        if report.ok:
            out.print("ok: data accepted")
    if not report.ok:
        raise typer.Exit(2)


@data_app.command("snapshot")
@handle_errors
def snapshot(spec: SpecOpt = None, pipeline: PipelineOpt = None, json_: JsonOpt = False) -> None:
    """Validate, then store the bars as a content-hashed Parquet snapshot (audited)."""
    from tradeloop.data.snapshot import write_snapshot
    from tradeloop.data.source import checked_bars

    project = load_project(spec, pipeline)
    bars, report = checked_bars(project.spec.data, project.root, project.live_bars_dir)
    snap = write_snapshot(
        bars,
        project.snapshots_dir,
        {"validation": report.to_dict(), "source": project.spec.data.source},
    )
    project.store.audit.append(
        "cli",
        "data.snapshot",
        f"dataset:{snap.hash}",
        {
            "rows": snap.rows,
            "symbols": snap.symbols,
            "start": snap.start,
            "end": snap.end,
            "warnings": len(report.warnings),
        },
    )
    doc = snap.to_dict()
    doc["warnings"] = len(report.warnings)
    if json_:
        emit_json(doc)
    else:
        out.print(
            f"snapshot {snap.hash}\n{snap.rows} rows, symbols {', '.join(snap.symbols)}, "
            f"{snap.start} .. {snap.end}\n{snap.path}",
            markup=False,
        )
