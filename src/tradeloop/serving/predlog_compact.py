"""Compaction of the prediction log: many small Parquet parts become one per partition.

The gateway writes a part per flush (about one a second under steady traffic), and every
reader pays per file: DuckDB reads each part's footer, and `union_by_name` each part's schema.
Compaction merges the complete parts of a partition into one file, written under a dot-name and
renamed into place, then removes the parts it merged. Parts that appear meanwhile are left for
the next pass. Between the rename and the removals a reader can see a row twice; the monitoring
readers count a (symbol, bar, variant, version) once, so that window does not skew them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def compact_partition(partition: Path, min_parts: int = 8) -> int:
    """Merge the partition's parts when there are at least `min_parts`; return how many."""
    parts = sorted(p for p in partition.glob("part-*.parquet") if p.is_file())
    if len(parts) < min_parts:
        return 0
    tables = [pq.read_table(p) for p in parts]
    merged = pa.concat_tables(tables, promote_options="default")
    name = f"part-{uuid.uuid4().hex}.parquet"
    tmp = partition / f".{name}.tmp"
    pq.write_table(merged, tmp, compression="zstd")
    os.replace(tmp, partition / name)
    for p in parts:
        p.unlink(missing_ok=True)
    return len(parts)


def compact(root: Path, min_parts: int = 8) -> int:
    """Compact every `date=` partition under `root`; return the number of parts merged."""
    if not root.exists():
        return 0
    return sum(compact_partition(d, min_parts) for d in sorted(root.glob("date=*")) if d.is_dir())
