"""Specs shipped with tradeloop, and a new project made from one.

`tradeloop.yaml` is the commented example `tradeloop init` writes; `demo.yaml` is the pipeline
`tradeloop demo` runs. Only the spec loader and `gitops.git` are used here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tradeloop.errors import BadInput
from tradeloop.gitops.git import run_git
from tradeloop.spec import SPEC_FILENAME, parse_spec

__all__ = [
    "EXAMPLES",
    "demo_spec",
    "example_spec",
    "git",
    "git_commit",
    "init_project",
    "multi_specs",
]

EXAMPLES = ("single", "multi")

COMMITTER = ("-c", "user.name=tradeloop", "-c", "user.email=tradeloop@localhost")


def _template(filename: str) -> str:
    return resources.files(__name__).joinpath(filename).read_text()


def example_spec(name: str = "demo") -> str:
    return _template(SPEC_FILENAME).replace("name: demo", f"name: {name}", 1)


def _edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        if old not in text:  # the example changed: the edit must be redone, never skipped
            raise AssertionError(f"example spec has no {old!r} to replace")
        text = text.replace(old, new, 1)
    return text


def multi_specs() -> dict[str, str]:
    """Three pipelines on the simulator, each a whole spec: different symbols, bar
    frequencies and model types (`tradeloop init --example multi`)."""
    base = _template(SPEC_FILENAME)
    equities = _edit(base, ("name: demo", "name: equities-1h"))
    fx = _edit(
        base,
        ("name: demo", "name: fx-15m"),
        ("frequency: 1h ", "frequency: 15m"),
        ("symbols: [AAA, BBB, CCC, DDD]", "symbols: [EURUSD, GBPUSD, USDJPY, AUDUSD]"),
        ("seed: 7", "seed: 11"),
        (
            "  type: lightgbm                # lightgbm | linear\n"
            "  task: classification\n"
            "  n_estimators: 150\n"
            "  learning_rate: 0.05\n"
            "  num_leaves: 15\n"
            "  min_child_samples: 50\n",
            "  type: linear                  # lightgbm | linear\n"
            "  task: classification\n"
            "  alpha: 1.0\n",
        ),
    )
    crypto = _edit(
        base,
        ("name: demo", "name: crypto-1d"),
        ("frequency: 1h ", "frequency: 1d "),
        ("symbols: [AAA, BBB, CCC, DDD]", "symbols: [BTC, ETH]"),
        ("seed: 7", "seed: 23"),
        ("num_leaves: 15", "num_leaves: 7"),
        (
            "    - {weight: 25, pause: 2h}   # (validate refuses 10%: it cannot be 10% of four symbols)\n"
            "    - {weight: 50, pause: 2h}\n",
            "    - {weight: 50, pause: 2h}   # two sticky symbols: 50% is one of them\n",
        ),
    )
    return {"equities-1h": equities, "fx-15m": fx, "crypto-1d": crypto}


def demo_spec() -> str:
    """The demo's pipeline: a regime change the monitor must catch (see `tradeloop.demo`)."""
    return _template("demo.yaml")


def git(cwd: Path, *args: str) -> None:
    run_git(args, cwd=cwd)


def git_commit(directory: Path, message: str, *paths: str) -> None:
    """Stage `paths` and commit them as tradeloop (the user's own identity is not needed)."""
    git(directory, "add", *paths)
    git(directory, *COMMITTER, "commit", "-q", "-m", message)


def init_project(directory: Path, name: str | None = None, example: str = "single") -> Path:
    """A git repository with a commented, working example spec (`single`), or three
    pipelines under `pipelines/` (`multi`). Refuses to overwrite a spec."""
    if example not in EXAMPLES:
        raise BadInput(f"--example {example!r}: choose from {', '.join(EXAMPLES)}")
    directory = directory.resolve()
    if example == "multi":
        return _init_multi(directory)
    spec_path = directory / SPEC_FILENAME
    if spec_path.exists():
        raise BadInput(f"{spec_path} already exists; not overwriting it")
    pname = name or directory.name.lower().replace(" ", "-")
    text = example_spec(pname)
    parse_spec(text)  # the example must always be valid
    directory.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(text)
    (directory / ".gitignore").write_text(".tradeloop/\n")
    if not (directory / ".git").exists():
        git(directory, "init", "-q", "-b", "main")
    git_commit(directory, "tradeloop init: example pipeline spec", SPEC_FILENAME, ".gitignore")
    return spec_path


def _init_multi(directory: Path) -> Path:
    from tradeloop.spec.catalog import PIPELINES_DIR, parse_pipeline

    pdir = directory / PIPELINES_DIR
    specs = multi_specs()
    clash = [pdir / f"{n}.yaml" for n in specs if (pdir / f"{n}.yaml").exists()]
    if clash or (directory / SPEC_FILENAME).exists():
        raise BadInput(
            f"{(clash or [directory / SPEC_FILENAME])[0]} already exists; not overwriting it"
        )
    for n, text in specs.items():
        parse_pipeline(text, f"{PIPELINES_DIR}/{n}.yaml")  # the examples must always be valid
    pdir.mkdir(parents=True, exist_ok=True)
    for n, text in specs.items():
        (pdir / f"{n}.yaml").write_text(text)
    (directory / ".gitignore").write_text(".tradeloop/\n")
    if not (directory / ".git").exists():
        git(directory, "init", "-q", "-b", "main")
    git_commit(directory, "tradeloop init: three example pipelines", PIPELINES_DIR, ".gitignore")
    return pdir
