"""`tradeloop deploy`: what serves, set by hand under an operator's identity."""

from __future__ import annotations

from typing import Annotated

import typer

from tradeloop.cli._common import (
    JsonOpt,
    PipelineOpt,
    SpecOpt,
    TokenOpt,
    caller,
    emit_json,
    handle_errors,
    load_project,
    out,
)
from tradeloop.errors import BadInput


@handle_errors
def deploy(
    version: Annotated[str | None, typer.Argument(help="Registered version.")] = None,
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
    weight: Annotated[
        int | None, typer.Option(help="Live share (%) for VERSION as the challenger.")
    ] = None,
    shadow: Annotated[bool, typer.Option(help="VERSION scores a copy of traffic.")] = False,
    rollback: Annotated[bool, typer.Option(help="Remove the challenger: champion 100%.")] = False,
    token: TokenOpt = None,
    override_approval: Annotated[
        bool,
        typer.Option(
            "--override-approval",
            help="Break glass: live traffic for an unapproved version (admin; alerts).",
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why (recorded; required with --override-approval).")
    ] = None,
) -> None:
    """Set what serves by hand (operator token; audited under its user).

    Under `deployment.approval: manual` a version gets live traffic only once approved.
    With sticky symbols a --weight must be one the symbols can express (see
    control.canary_units): 10% of four symbols is refused, listing 25, 50, 75.
    VERSION's artifact must match its registered sha256 before anything is written, and
    a new champion moves the registry's `champion` alias too (one definition of it).
    """
    from tradeloop.control.canary_units import check_weight
    from tradeloop.registry.champion import promote_version
    from tradeloop.registry.sql_registry import open_registry, verify_artifact
    from tradeloop.security.approvals import require_live_approval
    from tradeloop.store import deployments as dep

    project = load_project(spec, pipeline)
    who = caller(project, token, "operator", "deploy")
    name = project.spec.name
    split = None
    current = {d.variant: d for d in dep.current(project.store, name)}
    champ = current.get("champion")
    reg = open_registry(project.mlflow_uri, project.mlflow_artifacts)
    if rollback:
        if version is not None or weight is not None or shadow:
            raise BadInput("--rollback takes no VERSION, --weight or --shadow")
        if champ is None:
            raise BadInput("nothing is deployed")
        want = [dep.Deployed(name, "champion", champ.version, "live", 100)]
    else:
        if version is None:
            raise BadInput("give a VERSION (or --rollback)")
        if weight is not None and shadow:
            raise BadInput("--weight and --shadow exclude each other")
        if weight is not None and not 0 < weight < 100:
            raise BadInput(f"--weight must be between 1 and 99, got {weight}")
        v = reg.get(name, version)
        if v.rejected:
            raise BadInput(f"v{version} was rejected; it cannot be deployed")
        goes_live = not shadow and (champ is None or champ.version != version)
        if weight is not None and project.spec.sticky_units:
            split = check_weight(weight, project.spec.sticky_units, "deploy --weight")
        if goes_live:
            require_live_approval(
                project.store,
                project.spec.deployment.approval,
                name,
                version,
                who,
                "deploy",
                override_reason=(reason or "") if override_approval else None,
            )
        verify_artifact(reg, v)  # before any deployment state is written
        if champ is None or (weight is None and not shadow):
            want = [dep.Deployed(name, "champion", version, "live", 100)]
        elif shadow:
            want = [
                dep.Deployed(name, "champion", champ.version, "live", 100),
                dep.Deployed(name, "challenger", version, "shadow", 0),
            ]
        else:
            want = [
                dep.Deployed(name, "champion", champ.version, "live", 100 - (weight or 0)),
                dep.Deployed(name, "challenger", version, "live", weight or 0),
            ]
    after = dep.apply(
        project.store,
        name,
        want,
        actor=who.actor,
        reason=(reason or "rollback") if rollback else (reason or f"deploy v{version}"),
    )
    for d in after:
        if d.variant == "champion":
            promote_version(
                project.store,
                reg,
                name,
                d.version,
                actor=who.actor,
                reason=f"deploy v{d.version}",
            )
    doc: dict[str, object] = {"serving": [d.to_dict() for d in after], "actor": who.actor}
    if split is not None:
        doc["split"] = split.to_dict()
    if json_:
        emit_json(doc)
    else:
        for d in after:
            out.print(f"{d.variant:<10} v{d.version:<4} {d.mode:<6} {d.weight}%")
        if split is not None:
            out.print(
                f"challenger gets {split.units} of {split.total} symbols "
                f"({split.realized:.3g}% of units)"
            )
