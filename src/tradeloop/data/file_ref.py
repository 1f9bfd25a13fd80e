"""Which file, mapping and line a value came from: what every import error must name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tradeloop.spec import ColumnMapping


@dataclass(frozen=True)
class FileRef:
    """One file being imported: what errors need to name the file and a row's line in it."""

    name: str
    mapping: ColumnMapping
    lines: np.ndarray  # the 1-based line (CSV) or row (Parquet) of each data row

    def line(self, i: int) -> str:
        return f"line {int(self.lines[i])}"

    def column(self, role: str) -> str:
        ref = getattr(self.mapping, role)
        label = f"#{ref} (0-based)" if isinstance(ref, int) else repr(ref)
        return f"{self.name}: column {label} ({role})"
