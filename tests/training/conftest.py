from __future__ import annotations

from pathlib import Path

import pytest

from tradeloop.templates import init_project


def shrink(spec_path: Path, **subs: str) -> None:
    """Make the example spec small enough for tests that train (seconds, not a minute)."""
    text = spec_path.read_text()
    for old, new in {
        "    bars: 3000": "    bars: 1400",
        "    symbols: [AAA, BBB, CCC, DDD]": "    symbols: [AAA, BBB, CCC]",
        "    folds: 3": "    folds: 2",
        "    min_train_bars: 1000": "    min_train_bars: 500",
        "  n_estimators: 150": "  n_estimators: 40",
        **subs,
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    spec_path.write_text(text)


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    spec = init_project(tmp_path / "proj", "small")
    shrink(spec)
    return spec.parent
