"""The `tradeloop` command line."""

from __future__ import annotations

import typer

from tradeloop.cli import demo_cmds, project_cmds, run_cmds, serve_cmds, train_cmds
from tradeloop.cli.audit_cmds import audit_app
from tradeloop.cli.data_cmds import data_app
from tradeloop.cli.deploy_cmds import deploy
from tradeloop.cli.ingest_cmds import ingest_app
from tradeloop.cli.job_cmds import job_app, jobs_app
from tradeloop.cli.ops_cmds import tokens_app
from tradeloop.cli.train_cmds import models_app

app = typer.Typer(
    name="tradeloop",
    help="Closed-loop MLOps for machine-learning trading models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
project_cmds.register(app)
app.add_typer(data_app, name="data")
app.add_typer(ingest_app, name="ingest")
app.add_typer(audit_app, name="audit")
train_cmds.register(app)
app.add_typer(models_app, name="models")
app.add_typer(job_app, name="job")
app.add_typer(jobs_app, name="jobs")
app.add_typer(tokens_app, name="tokens")
demo_cmds.register(app)
serve_cmds.register(app)
run_cmds.register(app)
app.command()(deploy)


def main() -> None:
    app()
