"""CSV bytes to text columns: encodings, compression, Excel's `sep=` line, delimiter sniffing.

Exports from real venues and brokers come gzipped, in UTF-16 or Windows-1252, separated by
semicolons or tabs; the reader makes them one UTF-8 table of text and leaves typing to the
parsers, whose errors can name the column.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from pathlib import Path

import polars as pl

from tradeloop.errors import DataError
from tradeloop.spec import ColumnMapping

DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 50


def text_bytes(path: Path) -> bytes:
    """UTF-8 bytes of a (possibly gzipped, UTF-16 or Windows-1252) text file, without a BOM."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path.name}: cannot read the file: {exc}") from exc
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16").encode()
        except UnicodeDecodeError as exc:
            raise DataError(f"{path.name}: not valid UTF-16 text: {exc}") from exc
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data = data.decode("cp1252", errors="replace").encode()  # European exports
    return data


def sniff_delimiter(head: str, name: str, decimal: str = ".") -> str:
    """The delimiter that splits the first lines into the same number (>= 2) of fields.

    With a header row that is nearly always exactly one candidate; without one, the candidate
    giving the most fields wins. A comma is not a candidate when it is the decimal mark.
    """
    lines = [ln for ln in head.splitlines()[:_SNIFF_LINES] if ln.strip()]
    if len(head) >= _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut off
    best: tuple[int, str] | None = None
    for d in DELIMITERS:
        if d == decimal:
            continue
        widths = {len(row) for row in csv.reader(lines, delimiter=d)}
        if len(widths) == 1 and (w := widths.pop()) >= 2 and (best is None or w > best[0]):
            best = (w, d)
    if best is None:
        raise DataError(
            f"{name}: cannot tell the delimiter from the first lines (tried , ; TAB |: none "
            "splits every line into the same number of fields); set columns.delimiter"
        )
    return best[1]


def read_csv(path: Path, mapping: ColumnMapping) -> tuple[pl.DataFrame, int]:
    """The file as text columns, and how many lines precede the first data row."""
    data = text_bytes(path)
    skipped = 0
    sep = mapping.delimiter
    excel = re.match(rb"sep=(.)\r?\n", data)  # Excel's first line: sep=;
    if excel:
        data, skipped = data[excel.end() :], 1
        sep = sep or excel.group(1).decode()
    if not data.strip():
        raise DataError(f"{path.name}: the file has no rows")
    head = data[:_SNIFF_BYTES].decode("utf-8", errors="replace")
    sep = sep or sniff_delimiter(head, path.name, mapping.decimal)
    # Everything as text first: we decide types, with errors that name the column.
    raw = pl.read_csv(
        io.BytesIO(data),
        separator=sep,
        has_header=mapping.header,
        infer_schema=False,
        truncate_ragged_lines=False,
    )
    return raw, skipped + int(mapping.header)
