"""The result of a drift check: one `ColumnDrift` per tested column and the dataset verdict.

`to_dict()` is JSON-ready (for `tradeloop drift --json`, alerts and the console); `to_html()` is
a small self-contained page (no scripts, no external assets) for `--html PATH`.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from typing import Any

from tradeloop.monitoring.drift.methods import drift_method


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """One column's test: `drifted` is the method's own comparison of statistic and threshold."""

    column: str
    column_type: str  # "numeric" or "categorical"
    method: str  # a registered drift method's name (`methods.METHODS`)
    statistic: float  # a p-value or a distance, as the method declares
    threshold: float
    drifted: bool
    exact: bool  # False when computed from a sketched reference profile
    n_reference: int  # non-missing values compared
    n_current: int

    @property
    def method_name(self) -> str:
        """Evidently's display name of the method."""
        return drift_method(self.method).display_name


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Per-column results, and dataset drift when the drifted share reaches `drift_share`."""

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    skipped: dict[str, str]

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.columns) and self.share >= self.drift_share

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain str, bool, int and float."""
        return {
            "dataset_drift": self.dataset_drift,
            "share_of_drifted_columns": self.share,
            "drift_share": self.drift_share,
            "number_of_columns": len(self.columns),
            "number_of_drifted_columns": len(self.drifted_columns),
            "columns": {
                c.column: {k: v for k, v in asdict(c).items() if k != "column"}
                | {"method_name": c.method_name}
                for c in self.columns
            },
            "skipped": dict(self.skipped),
        }

    def to_html(self, title: str = "Data drift") -> str:
        """A small self-contained page: the verdict, then one table row per column."""
        e = html.escape
        verdict = "DRIFT" if self.dataset_drift else "no drift"
        rows = "\n".join(
            f'<tr class="{"drift" if c.drifted else "ok"}"><td>{e(c.column)}</td>'
            f"<td>{e(c.column_type)}</td><td>{e(c.method_name)}</td>"
            f'<td class="num">{c.statistic:.6g}</td><td class="num">{c.threshold:g}</td>'
            f"<td>{'yes' if c.drifted else 'no'}</td><td>{'exact' if c.exact else 'sketch'}</td>"
            f'<td class="num">{c.n_reference}</td><td class="num">{c.n_current}</td></tr>'
            for c in self.columns
        )
        skipped = "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in self.skipped.items())
        skipped_html = f"<h2>Not tested</h2><ul>{skipped}</ul>" if skipped else ""
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }}
th {{ background: #f3f3f3; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.drift td {{ background: #fde2e1; }}
.verdict {{ font-size: 1.2rem; font-weight: bold; }}
</style></head><body>
<h1>{e(title)}</h1>
<p class="verdict">Dataset: {verdict}</p>
<p>{len(self.drifted_columns)} of {len(self.columns)} columns drifted
(share {self.share:.3f}; dataset drift at share &ge; {self.drift_share:g}).</p>
<table>
<thead><tr><th>column</th><th>type</th><th>method</th><th>statistic</th><th>threshold</th>
<th>drifted</th><th>reference</th><th>n reference</th><th>n current</th></tr></thead>
<tbody>
{rows}
</tbody></table>
{skipped_html}
</body></html>
"""
