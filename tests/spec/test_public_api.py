"""`tradeloop.spec` is the public face of the spec package: complete, and cheap to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tradeloop.spec

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("polars", "numpy", "pandas", "sqlalchemy", "alembic", "mlflow", "scipy", "lightgbm")


def _imported_names() -> set[str]:
    """Every name any module in the repository imports from `tradeloop.spec`."""
    names: set[str] = set()
    for folder in ("src", "tests", "bench", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.module == "tradeloop.spec":
                    names |= {a.name for a in node.names}
    return names


def test_every_imported_name_is_exported() -> None:
    exported, imported = set(tradeloop.spec.__all__), _imported_names()
    assert {"Spec", "FeatureSpec", "parse_spec", "SPEC_FILENAME"} <= imported  # the scan works
    assert all(hasattr(tradeloop.spec, n) for n in exported)
    assert imported - exported <= {"_default_features"}  # kept for bench/features.py
    assert tradeloop.spec._default_features is tradeloop.spec.default_features


def test_importing_the_spec_pulls_in_no_heavy_library() -> None:
    code = f"import sys, tradeloop.spec; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
