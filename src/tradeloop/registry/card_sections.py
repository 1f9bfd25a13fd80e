"""The model card's sections on evidence and honesty: selection, explanations, segments,
environment, data ranges, purge and embargo as applied. Each returns Markdown lines, or
nothing for a card written before the section existed (its data is simply absent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Table = Callable[[list[str], list[list[Any]]], str]


def _num(v: Any, digits: str = ".4g") -> str:
    return "n/a" if v is None else format(v, digits)


def purge_line(info: dict[str, Any]) -> str:
    """Purge and embargo as the folds applied them, never the spec's wish."""
    p = info.get("purge")
    if not p:
        return f"label horizon {info['horizon']} bar(s) purged"
    purged = sorted(set(p["purged_bars"]))
    embargo = sorted(set(p["embargoed_bars"]))
    line = (
        f"purged {', '.join(map(str, purged))} bar(s) before each test block (label horizon "
        f"{p['horizon']}), embargo applied: {', '.join(map(str, embargo))} bar(s)"
    )
    if p["embargo_in_spec"] and not any(p["embargoed_bars"]):
        line += (
            f" (the spec's split.embargo of {p['embargo_in_spec']} is not applied: walk-forward "
            "folds train only before their test block, so no training bar follows it)"
        )
    return line


def selection(info: dict[str, Any], table: Table) -> list[str]:
    sel = info.get("selection")
    if not sel:
        return []
    dsr = sel.get("dsr", {})
    trials = sel["trials"]
    rows = [
        [
            "deflated Sharpe ratio (DSR)",
            _num(sel.get("deflated_sharpe")),
            sel.get("deflated_sharpe_note", "P(true Sharpe > the best of N unskilled trials)"),
        ],
        ["probabilistic Sharpe ratio (PSR vs 0)", _num(dsr.get("psr")), "no selection correction"],
        [
            "probability of backtest overfitting (PBO)",
            _num(sel.get("pbo")),
            sel.get("pbo_note", "CSCV over the tuning trials' inner-fold returns"),
        ],
        [
            "trials counted (N)",
            sel["n_trials"],
            f"{trials['tuning']} tuning trial(s) + {trials['earlier_runs']} earlier run(s)",
        ],
    ]
    if dsr:
        rows += [
            [
                "Sharpe per bar / expected max of N",
                f"{dsr['sharpe_per_period']:.4g} / {dsr['expected_max_sharpe']:.4g}",
                dsr["variance_source"],
            ],
            [
                "skew / kurtosis (Pearson, normal = 3)",
                f"{dsr['skew']:.3g} / {dsr['kurtosis_pearson']:.3g}",
                f"{dsr['n_returns']} bars",
            ],
        ]
    return ["## Selection (after all the trying)", table(["statistic", "value", "basis"], rows), ""]


def importance(info: dict[str, Any], table: Table) -> list[str]:
    rows = info.get("importance")
    if rows is None:
        return []
    if not rows:
        return ["## Explanations", "This model type records no attributions.", ""]
    kind = (
        "TreeSHAP (LightGBM pred_contrib)"
        if info["model"]["type"] == "lightgbm"
        else ("coefficient x standardized value")
    )
    return [
        "## Explanations (global importance)",
        f"Mean |attribution| of the raw score ({kind}) over the latest training rows; "
        "per-prediction attributions: `explain=true` on `/v1/signals/{symbol}`, "
        '`"parameters": {"explain": true}` on v2 infer.',
        table(
            ["feature", "mean abs", "mean", "share"],
            [[r["feature"], r["mean_abs"], r["mean"], f"{r['share']:.1%}"] for r in rows],
        ),
        "",
    ]


def segments(info: dict[str, Any], table: Table) -> list[str]:
    seg = info.get("segments")
    if not seg:
        return []
    rows = [
        [
            s["family"],
            s["segment"],
            s["bars"],
            s["mean_bps"],
            s["sharpe"],
            s["total_return"],
            s["max_drawdown"],
            _num(s["p_adjusted"], ".3g"),
            "**worse**" if s["flagged"] else "",
        ]
        for s in seg["segments"]
    ]
    flagged = ", ".join(seg["flagged"]) or "none"
    return [
        "## Segments (out of sample, after costs)",
        f"Regimes point-in-time: volatility {seg['regimes']['volatility']} (terciles); trend "
        f"{seg['regimes']['trend']}. Flagged worse: {flagged} ({seg['test']}, "
        f"alpha {seg['alpha']}). Worst segment drawdown {seg['max_segment_drawdown']:.3g}.",
        table(
            [
                "family",
                "segment",
                "bars",
                "mean bps",
                "sharpe",
                "total return",
                "max drawdown",
                "p (adj.)",
                "flag",
            ],
            rows,
        ),
        "",
    ]


def data_ranges(info: dict[str, Any], table: Table) -> list[str]:
    ranges = info.get("symbol_ranges")
    if not ranges:
        return []
    return [
        "Data per symbol:",
        table(
            ["symbol", "first bar", "last bar", "bars"],
            [[r["symbol"], r["start"], r["end"], r["bars"]] for r in ranges],
        ),
    ]


def environment(info: dict[str, Any], table: Table) -> list[str]:
    env = info.get("environment")
    if not env:
        return []
    lock = env.get("uv_lock_sha256")
    rows = [
        [k, env.get(k) or "not installed"]
        for k in ("tradeloop", "python", "lightgbm", "onnxruntime", "scikit-learn")
    ]
    rows.append(["uv.lock sha256", f"`{lock}`" if lock else "no lock file found"])
    return ["## Environment", table(["component", "version"], rows), ""]


def limits(info: dict[str, Any]) -> list[str]:
    """Limits the evidence itself shows: selection statistics and flagged segments."""
    out = []
    sel = info.get("selection") or {}
    dsr, pbo = sel.get("deflated_sharpe"), sel.get("pbo")
    if dsr is not None and dsr < 0.95:
        out.append(
            f"- The deflated Sharpe ratio is {dsr:.3g} (< 0.95): after {sel['n_trials']} "
            "trial(s), the out-of-sample Sharpe is not significant at 5%."
        )
    if pbo is not None and pbo > 0.5:
        out.append(
            f"- PBO is {pbo:.3g}: the tuning's best trial usually ranks below the median "
            "out of sample, so its edge is likely overfit."
        )
    flagged = (info.get("segments") or {}).get("flagged") or []
    if flagged:
        out.append(f"- Significantly worse segments: {', '.join(flagged)}.")
    ranges = info.get("symbol_ranges")
    if ranges:
        out.append(
            f"- Trained on {ranges[0]['start']} .. {max(r['end'] for r in ranges)}; "
            "markets unlike that period are outside its evidence."
        )
    return out
