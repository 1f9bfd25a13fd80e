"""`tradeloop train`, `tradeloop backtest` and `tradeloop models ...`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from tradeloop.cli._common import (
    JsonOpt,
    PipelineOpt,
    SpecOpt,
    TokenOpt,
    acting_as,
    caller,
    emit_json,
    err,
    handle_errors,
    load_project,
    out,
)
from tradeloop.cli.train_metrics import (
    TrainMetricsHostOpt,
    TrainMetricsLingerOpt,
    TrainMetricsPortOpt,
    serving,
)

if TYPE_CHECKING:
    from tradeloop.project import Project
    from tradeloop.registry.mlflow_registry import Registry

models_app = typer.Typer(help="Registered model versions.", no_args_is_help=True)


def _registry(project: Project) -> Registry:
    from tradeloop.registry.mlflow_registry import Registry

    return Registry.for_project(project)


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def train(
        spec: SpecOpt = None,
        pipeline: PipelineOpt = None,
        json_: JsonOpt = False,
        reason: Annotated[str, typer.Option(help="Why this run (recorded).")] = "manual",
        token: TokenOpt = None,
        metrics_port: TrainMetricsPortOpt = 0,
        metrics_host: TrainMetricsHostOpt = "127.0.0.1",
        metrics_linger: TrainMetricsLingerOpt = 0.0,
    ) -> None:
        """Train with purged walk-forward folds, backtest, gate, and register if gates pass.

        Recorded under the token's user when one is at hand, else as `local:<os user>`."""
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from tradeloop.training.pipeline import train as run_train

        project = load_project(spec, pipeline)
        actor = acting_as(project, token)
        with serving(project.spec.name, metrics_host, metrics_port, metrics_linger) as metrics:
            on_trial = metrics.trial if metrics is not None else None
            if json_:
                result = run_train(
                    project,
                    reason=reason,
                    actor=actor,
                    on_step=metrics.step if metrics is not None else None,
                    on_trial=on_trial,
                )
            else:
                with Progress(
                    SpinnerColumn(),
                    TextColumn("{task.description}"),
                    TimeElapsedColumn(),
                    console=err,
                    transient=True,
                ) as progress:
                    task = progress.add_task("starting", total=None)

                    def on_step(s: str) -> None:
                        progress.update(task, description=s)
                        if metrics is not None:
                            metrics.step(s)

                    result = run_train(
                        project, reason=reason, actor=actor, on_step=on_step, on_trial=on_trial
                    )
        doc = result.to_dict()
        if json_:
            emit_json(doc)
            return
        m = result.metrics
        out.print(
            f"run {result.run_id} in {result.seconds:.1f}s — out-of-sample: "
            f"sharpe {m.get('sharpe', float('nan')):.2f}, hit rate "
            f"{m.get('hit_rate', float('nan')):.3f}, max drawdown "
            f"{m.get('max_drawdown', float('nan')):.3f}"
        )
        sel, seg = result.selection, result.segments
        dsr, pbo = sel.get("deflated_sharpe"), sel.get("pbo")
        out.print(
            f"  selection: deflated Sharpe {'n/a' if dsr is None else f'{dsr:.3f}'} over "
            f"{sel.get('n_trials')} trial(s), PBO {'n/a' if pbo is None else f'{pbo:.3f}'}; "
            f"segments flagged worse: {', '.join(seg.get('flagged') or []) or 'none'}",
            markup=False,
        )
        for g in result.gates["gates"]:
            mark = "[green]pass[/green]" if g["passed"] else "[red]FAIL[/red]"
            out.print(f"  gate {g['name']}: {mark} — {g.get('reason', '')}")
        if result.version:
            out.print(f"registered version {result.version} as challenger")
        else:
            out.print("[yellow]gates failed: nothing registered[/yellow]")

    @app.command()
    @handle_errors
    def backtest(
        spec: SpecOpt = None,
        pipeline: PipelineOpt = None,
        json_: JsonOpt = False,
        version: Annotated[
            str | None, typer.Option(help="Model version (default: champion, else newest).")
        ] = None,
    ) -> None:
        """Backtest a registered version on the spec's current data, after costs."""
        from rich.table import Table

        from tradeloop.training.replay import backtest_version

        project = load_project(spec, pipeline)
        doc = backtest_version(project, version)
        if json_:
            emit_json(doc)
        else:
            t = Table("metric", "value", title=f"{project.spec.name} v{doc['version']} backtest")
            for k, v in doc["metrics"].items():
                t.add_row(k, f"{v:.6g}")
            out.print(t)


@models_app.command("list")
@handle_errors
def list_(spec: SpecOpt = None, pipeline: PipelineOpt = None, json_: JsonOpt = False) -> None:
    """Complete versions, newest last, with aliases and headline metrics."""
    from rich.table import Table

    from tradeloop.registry.sql_registry import open_registry

    project = load_project(spec, pipeline)
    reg = open_registry(project.mlflow_uri, project.mlflow_artifacts)
    versions = reg.versions(project.spec.name)
    if json_:
        emit_json([v.to_dict() for v in versions])
        return
    t = Table("version", "aliases", "sharpe", "hit rate", "dataset", "reason", "status")
    for v in versions:
        t.add_row(
            v.version,
            ",".join(v.aliases),
            v.tags.get("metric.sharpe", ""),
            v.tags.get("metric.hit_rate", ""),
            v.tags.get("dataset_hash", "")[:12],
            v.tags.get("reason", ""),
            "rejected" if v.rejected else "",
        )
    out.print(t)


@models_app.command("show")
@handle_errors
def show(
    version: str, spec: SpecOpt = None, pipeline: PipelineOpt = None, json_: JsonOpt = False
) -> None:
    """One version's tags, aliases and lineage."""
    from tradeloop.registry.sql_registry import open_registry

    project = load_project(spec, pipeline)
    v = open_registry(project.mlflow_uri, project.mlflow_artifacts).get(project.spec.name, version)
    if json_:
        emit_json(v.to_dict())
        return
    out.print(f"{v.name} v{v.version}  aliases: {', '.join(v.aliases) or '-'}  run {v.run_id}")
    for k, val in sorted(v.tags.items()):
        out.print(f"  {k}: {val}", markup=False)


@models_app.command("card")
@handle_errors
def card(
    version: str,
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
    html: Annotated[Path | None, typer.Option(help="Write the HTML card here.")] = None,
) -> None:
    """Print a version's model card (Markdown), or write its HTML."""
    project = load_project(spec, pipeline)
    reg = _registry(project)
    v = reg.get(project.spec.name, version)
    from tradeloop.registry.cards import card_for

    md_text, html_text = card_for(reg, v)
    if html is not None:
        html.write_text(html_text)
    if json_:
        emit_json(
            {"version": v.version, "markdown": md_text, "html_path": str(html) if html else None}
        )
    elif html is None:
        out.print(md_text, markup=False)
    else:
        out.print(f"wrote {html}")


OverrideOpt = Annotated[
    bool,
    typer.Option(
        "--override-approval",
        help="Break glass: give an unapproved version live traffic (admin; audited, alerts).",
    ),
]


@models_app.command("promote")
@handle_errors
def promote(
    version: str,
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
    token: TokenOpt = None,
    override_approval: OverrideOpt = False,
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "manual promotion",
) -> None:
    """Make VERSION the champion (operator; audited). Under manual approval it must be approved."""
    from tradeloop.registry.champion import promote_version
    from tradeloop.security.approvals import require_live_approval

    project = load_project(spec, pipeline)
    who = caller(project, token, "operator", "models promote")
    name = project.spec.name
    reg = _registry(project)
    reg.get(name, version)
    how = require_live_approval(
        project.store,
        project.spec.deployment.approval,
        name,
        version,
        who,
        "models promote",
        override_reason=reason if override_approval else None,
    )
    doc = promote_version(project.store, reg, name, version, actor=who.actor, reason=reason)
    doc["approval"] = how
    if json_:
        emit_json(doc)
    else:
        prev = doc.get("previous")
        out.print(f"v{version} is now champion" + (f" (was v{prev})" if prev else ""))


def _decide(
    version: str,
    decision: Literal["approved", "rejected"],
    spec: Path | None,
    token: str | None,
    reason: str,
    json_: bool,
    pipeline: str | None = None,
) -> None:
    from tradeloop.registry.decisions import decide

    project = load_project(spec, pipeline)
    doc = decide(
        project.store,
        _registry(project),
        project.spec.name,
        version,
        decision,
        caller(
            project,
            token,
            "approver",
            "models approve" if decision == "approved" else "models reject",
        ),
        reason,
        four_eyes=project.spec.deployment.four_eyes,
    )
    if json_:
        emit_json(doc)
    else:
        out.print(f"v{version} {decision}" + ("" if doc["changed"] else " (already)"))


@models_app.command("approve")
@handle_errors
def approve(
    version: str,
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
    token: TokenOpt = None,
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
) -> None:
    """Approve VERSION for live traffic (manual approval policy; needs an approver token)."""
    _decide(version, "approved", spec, token, reason, json_, pipeline)


@models_app.command("reject")
@handle_errors
def reject(
    version: str,
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
    token: TokenOpt = None,
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
) -> None:
    """Reject VERSION: it is rolled back and never rolled out (needs an approver token)."""
    _decide(version, "rejected", spec, token, reason, json_, pipeline)
