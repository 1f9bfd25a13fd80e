"""Model cards: what a version is for, what it saw, how it did, and where it will fail."""

from __future__ import annotations

from typing import Any

import markdown as md

from tradeloop.registry import card_sections as sections

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 960px; margin: 2rem auto; color: #222; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; }}
th, td {{ border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }}
th {{ background: #f4f4f4; }} td:first-child, th:first-child {{ text-align: left; }}
code {{ background: #f4f4f4; padding: 0 .2rem; }}
</style></head><body>
{body}
</body></html>
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


CARD_METRICS = (
    "sharpe",
    "sortino",
    "total_return",
    "annualized_return",
    "max_drawdown",
    "hit_rate",
    "ic",
    "turnover",
    "exposure",
)


def render_markdown(info: dict[str, Any]) -> str:
    """`info` holds name, version, data, features, model, training, folds, backtest, gates."""
    data, model, training = info["data"], info["model"], info["training"]
    gates = info["gates"]
    lines = [
        f"# Model card: {info['name']} v{info.get('version') or '(unregistered)'}",
        "",
        "## Intended use",
        f"Signals for {', '.join(data['symbols'])} at a {data['frequency']} bar frequency: "
        f"the model predicts the {info['label']} of the forward return over the next "
        f"{info['horizon']} bar(s); positions follow the backtest thresholds. It is meant to be "
        "served by tradeloop behind a gated, canaried rollout and to be watched for drift; it is "
        "not investment advice and not meant for other instruments or frequencies.",
        "",
        "## Data",
        _table(
            ["dataset hash", "rows", "symbols", "start", "end", "source"],
            [
                [
                    f"`{data['hash'][:16]}…`",
                    data["rows"],
                    len(data["symbols"]),
                    data["start"],
                    data["end"],
                    data["source"],
                ]
            ],
        ),
        f"Validation: {data.get('warnings', 0)} warning(s), no errors.",
        "",
        *sections.data_ranges(info, _table),
        "## Features",
        _table(
            ["name", "kind", "parameters"],
            [
                [
                    f["name"],
                    f["kind"],
                    ", ".join(
                        f"{k}={v}"
                        for k, v in f.items()
                        if k not in ("name", "kind") and v is not None
                    ),
                ]
                for f in info["features"]
            ],
        ),
        "",
        "## Training setup",
        f"Model `{model['type']}` ({model['task']}), parameters: "
        + ", ".join(f"{k}={v}" for k, v in model.get("params", {}).items()),
        "",
        f"Walk-forward ({training['scheme']}), {len(info['folds'])} folds, "
        f"{sections.purge_line(info)}; the final model is refit on the latest "
        f"{training['rows']} labelled rows ({training['scheme']} window). Seed {training['seed']}."
        + (f" Tuned with Optuna: {training['tuning']}." if training.get("tuning") else ""),
        "",
        "## Metrics by fold (out of sample, after costs)",
        _table(
            ["fold", "test start", "test end", *CARD_METRICS],
            [
                [
                    f["fold"],
                    f["test_start"],
                    f["test_end"],
                    *[f["metrics"].get(m) for m in CARD_METRICS],
                ]
                for f in info["folds"]
            ],
        ),
        "",
        "## Backtest (all folds' out-of-sample predictions)",
        _table(["metric", "value"], [[m, info["backtest"].get(m)] for m in CARD_METRICS]),
        f"Costs {info['costs']['cost_bps']} bps + slippage {info['costs']['slippage_bps']} bps "
        "per unit of turnover; positions execute on the bar after the signal.",
        "",
        "## Gates",
        _table(
            ["gate", "value", "op", "threshold", "passed", "reason"],
            [
                [
                    g["name"],
                    g["value"],
                    g["op"],
                    g["threshold"],
                    "yes" if g["passed"] else "NO",
                    g.get("reason", ""),
                ]
                for g in gates["gates"]
            ],
        ),
        f"Overall: **{'passed' if gates['passed'] else 'failed'}**.",
        "",
        *sections.selection(info, _table),
        *sections.importance(info, _table),
        *sections.segments(info, _table),
        "## Limitations",
        "- Backtests assume fills at the bar's close with fixed costs; real slippage grows with "
        "size and volatility.",
        "- Out-of-sample metrics come from one history; a regime unlike it (see the drift "
        "monitor) can make them meaningless.",
        "- The champion comparison scores the champion on the same window, which it may have "
        "been trained on; this favours the champion and makes promotion conservative.",
        "- Cross-sectional features assume the same symbol universe at serving time.",
        *sections.limits(info),
        "",
        *sections.environment(info, _table),
        "## Lineage",
        _table(["tag", "value"], [[k, f"`{v}`"] for k, v in sorted(info["lineage"].items())]),
    ]
    return "\n".join(lines) + "\n"


def render_html(markdown_text: str, title: str) -> str:
    body = md.markdown(markdown_text, extensions=["tables"])
    return _HTML.format(title=title, body=body)
