"""The monitoring report as one self-contained HTML page: inline CSS, no scripts, every value
escaped (`report.monitor_report` builds the dict it renders)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["to_html"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 72rem; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .55rem; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: .15rem .6rem; border-radius: .8rem; color: #fff; }
.ok { background: #2e7d32; } .warning { background: #f9a825; } .critical { background: #d32f2f; }
tr.firing td { background: #fde2e1; } tr.pending td { background: #fff6d5; }
tr.drift td { background: #fde2e1; } .muted { color: #777; }
"""


def _cell(v: Any) -> str:
    if v is None:
        return '<td class="muted">–</td>'
    if isinstance(v, bool):
        return f"<td>{'yes' if v else 'no'}</td>"
    if isinstance(v, int | float):
        return (
            f'<td class="num">{v:.4g}</td>' if isinstance(v, float) else f'<td class="num">{v}</td>'
        )
    return f"<td>{html.escape(str(v))}</td>"


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str] = ()
) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{html.escape(classes[i])}"' if i < len(classes) and classes[i] else ""
        body.append(f"<tr{cls}>{''.join(_cell(v) for v in row)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def to_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page of a `monitor_report` dict."""
    e = html.escape
    s = report.get("summary", {})
    status = str(s.get("status", "ok"))
    parts = [
        f"<h1>Monitoring: {e(str(report.get('model', '')))}</h1>",
        f'<p class="muted">as of {e(str(report.get("generated_at", "")))}</p>',
        f'<p><span class="badge {e(status)}">{e(status.upper())}</span> '
        f"firing: {e(', '.join(s.get('firing', [])) or 'none')}; "
        f"pending: {e(', '.join(s.get('pending', [])) or 'none')}</p>",
    ]

    al = report.get("alerts", {})
    parts.append("<h2>Open alerts</h2>")
    opened = al.get("open", [])
    parts.append(
        _table(
            ["rule", "state", "severity", "value", "since", "fired"],
            [
                [
                    a["rule"],
                    a["state"],
                    a["labels"].get("severity"),
                    a["value"],
                    a["started_at"],
                    a["fired_at"],
                ]
                for a in opened
            ],
            [a["state"] for a in opened],
        )
    )

    parts.append("<h2>Live performance</h2>")
    perf = report.get("performance", [])
    parts.append(
        _table(
            [
                "variant",
                "version",
                "graded",
                "pending",
                "positions",
                "hit rate",
                "IC",
                "calibration error",
                "mean PnL",
                "total PnL",
                "Sharpe",
                "window",
            ],
            [
                [
                    p["variant"],
                    p["model_version"],
                    p["n"],
                    p["pending"],
                    p["n_positions"],
                    p["hit_rate"],
                    p["ic"],
                    p["ece"],
                    p["pnl_mean"],
                    p["pnl_total"],
                    p["sharpe"],
                    f"{p['window_start'] or ''} – {p['window_end'] or ''}",
                ]
                for p in perf
            ],
        )
    )

    parts.append("<h2>Drift</h2>")
    drift = report.get("drift")
    if not drift:
        parts.append('<p class="muted">no drift report</p>')
    elif "error" in drift:
        parts.append(f"<p>drift could not be computed: {e(str(drift['error']))}</p>")
    else:
        verdict = "DRIFT" if drift.get("dataset_drift") else "no drift"
        parts.append(
            f"<p><b>{verdict}</b>: {drift.get('number_of_drifted_columns', 0)} of "
            f"{drift.get('number_of_columns', 0)} columns drifted (share "
            f"{float(drift.get('share_of_drifted_columns') or 0):.3f}; dataset drift at "
            f"&ge; {drift.get('drift_share')})</p>"
        )
        cols = drift.get("columns", {})
        parts.append(
            _table(
                [
                    "column",
                    "type",
                    "method",
                    "statistic",
                    "threshold",
                    "drifted",
                    "n ref",
                    "n current",
                ],
                [
                    [
                        name,
                        c.get("column_type"),
                        c.get("method"),
                        c.get("statistic"),
                        c.get("threshold"),
                        c.get("drifted"),
                        c.get("n_reference"),
                        c.get("n_current"),
                    ]
                    for name, c in cols.items()
                ],
                ["drift" if c.get("drifted") else "" for c in cols.values()],
            )
        )

    parts.append("<h2>Experiment</h2>")
    exp = report.get("experiment")
    if exp:
        parts.append(_table(["field", "value"], [[k, v] for k, v in exp.items()]))
    else:
        parts.append('<p class="muted">no experiment running</p>')

    extra = report.get("extra") or {}
    if extra:
        parts.append("<h2>Other figures</h2>")
        parts.append(
            _table(
                ["name", "value"],
                [
                    [k, v if isinstance(v, int | float | str) else json.dumps(v)]
                    for k, v in extra.items()
                ],
            )
        )

    parts.append("<h2>Recent alerts</h2>")
    rec = al.get("recent", [])
    parts.append(
        _table(
            ["rule", "state", "value", "started", "fired", "resolved"],
            [
                [
                    a["rule"],
                    a["state"],
                    a["value"],
                    a["started_at"],
                    a["fired_at"],
                    a["resolved_at"],
                ]
                for a in rec
            ],
        )
    )
    title = f"tradeloop monitoring: {report.get('model', '')}"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
