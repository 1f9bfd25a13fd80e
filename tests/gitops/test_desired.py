from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.gitops.conftest import example_spec, git
from tradeloop.errors import BadInput, SpecError
from tradeloop.gitops.desired import Pin, PinError, read_desired
from tradeloop.gitops.repo import GitRepo
from tradeloop.spec import SPEC_FILENAME, GitSpec

PIN = Pin(
    "demo",
    "3",
    "2",
    datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
    "canary analysis promote (ci [0.0012, 0.0040])",
    ("4",),
)


def commit(project: Path, path: str, text: str, msg: str = "edit") -> None:
    (project / path).parent.mkdir(parents=True, exist_ok=True)
    (project / path).write_text(text)
    git(project, "add", path)
    git(project, "commit", "-q", "-m", msg)


def test_pin_round_trips_through_stable_yaml() -> None:
    text = PIN.to_yaml()
    assert Pin.from_yaml(text) == PIN
    assert Pin.from_yaml(text).to_yaml() == text
    assert 'version: "3"' in text and 'rejected: ["4"]' in text
    bare = Pin("demo", None)
    assert Pin.from_yaml(bare.to_yaml()) == bare


def test_pin_accepts_what_people_write_by_hand() -> None:
    pin = Pin.from_yaml(
        "model: demo\nversion: 3\nupdated: 2024-03-01 09:30:00\nrejected: [4, '5']\n"
    )
    assert pin.version == "3" and pin.rejected == ("4", "5") and pin.previous is None
    assert pin.updated == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: demo\nversion: '3'\nversoin: '4'\n", "production.yaml:3: versoin: unknown key"),
        ("version: '3'\n", "production.yaml: model: required key is missing"),
        ("model: demo\nversion: true\n", "production.yaml:2: version: must be a name"),
        ("model: demo\nversion: '3 4'\n", "production.yaml:2: version: '3 4' is not a valid"),
        ("model: demo\nrejected: '4'\n", "production.yaml:2: rejected: must be a list"),
        ("model: demo\nupdated: yesterday\n", "production.yaml:2: updated: 'yesterday' is not an"),
        ("model: demo\nreason: [a]\n", "production.yaml:2: reason: must be text"),
        ("model: demo\nversion: '4'\nrejected: ['4']\n", "production.yaml:2: version: 4 is also"),
        ("model: demo\nversion: [\n", "production.yaml:3: invalid YAML"),
        ("- demo\n", "production.yaml:1: the pin must be a mapping"),
    ],
)
def test_a_malformed_pin_names_the_file_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(PinError) as err:
        Pin.from_yaml(text, filename="production.yaml")
    assert isinstance(err.value, BadInput)
    assert expected in str(err.value)


def test_desired_state_comes_from_the_branch_not_the_working_tree(project: Path) -> None:
    commit(project, "production.yaml", PIN.to_yaml(), "pin v3")
    head = git(project, "rev-parse", "HEAD").strip()
    (project / SPEC_FILENAME).write_text(example_spec().replace("name: demo", "name: other"))
    (project / "production.yaml").write_text(Pin("demo", "9").to_yaml())
    desired = read_desired(project, "main", "production.yaml")
    assert desired.spec.name == "demo" and desired.spec_sha == head
    assert desired.pin == PIN
    assert desired.branch == "main" and desired.pin_path == "production.yaml"
    assert desired.to_dict()["pin"]["version"] == "3"
    # the pin file name comes from the GitSpec, or the spec on the branch
    assert read_desired(project, GitSpec(branch="main")).pin == PIN
    assert read_desired(project).pin == PIN


def test_desired_state_without_a_pin_yet(project: Path) -> None:
    desired = read_desired(project, "main")
    assert desired.pin is None and desired.spec.name == "demo"


def test_a_spec_error_on_the_branch_names_branch_file_and_line(project: Path) -> None:
    lines = example_spec().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("labels:"))
    lines.insert(at + 1, "  horizn: 3\n")
    commit(project, SPEC_FILENAME, "".join(lines), "typo")
    (project / SPEC_FILENAME).write_text(example_spec())  # fixed in the tree, not committed
    with pytest.raises(SpecError) as err:
        read_desired(project, "main")
    assert f"main:tradeloop.yaml:{at + 2}: labels.horizn: unknown key" in str(err.value)
    assert "did you mean horizon?" in str(err.value)


def test_a_pin_error_on_the_branch_names_the_branch(project: Path) -> None:
    commit(project, "production.yaml", "model: demo\nversion: [3]\n")
    with pytest.raises(PinError, match=r"main:production.yaml:2: version: must be a name"):
        read_desired(project, "main")


def test_a_pin_for_another_model_is_refused(project: Path) -> None:
    commit(project, "production.yaml", Pin("other", "1").to_yaml())
    with pytest.raises(PinError, match="pins 'other' but the spec on 'main' is pipeline 'demo'"):
        read_desired(project, "main")


def test_missing_branch_repository_or_spec_are_bad_input(project: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no branch 'prod'"):
        read_desired(project, "prod")
    (tmp_path / "plain").mkdir()
    with pytest.raises(BadInput, match="not a git repository"):
        read_desired(tmp_path / "plain")
    git(project, "checkout", "-q", "--orphan", "empty")
    git(project, "rm", "-q", "-r", "--cached", ".")
    git(project, "commit", "-q", "--allow-empty", "-m", "nothing")
    with pytest.raises(SpecError, match=r"empty:tradeloop\.yaml: no spec committed"):
        read_desired(project, "empty")
    with pytest.raises(BadInput, match="must be a file path inside the project"):
        read_desired(project, "main", "../production.yaml")


def test_a_project_in_a_subfolder_reads_its_own_files(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    commit(root, "ml/" + SPEC_FILENAME, example_spec())
    commit(root, "ml/production.yaml", PIN.to_yaml())
    desired = read_desired(root / "ml", "main")
    assert desired.pin == PIN and desired.spec_path == "ml/tradeloop.yaml"
    assert desired.pin_path == "ml/production.yaml"
    commit(root, "ml/" + SPEC_FILENAME, "name: Bad Name\n")
    with pytest.raises(SpecError, match=r"main:ml/tradeloop\.yaml:1: name"):
        read_desired(root / "ml", "main")


def test_a_repository_made_by_tradeloop_init(tmp_path: Path) -> None:
    from tradeloop.templates import init_project

    init_project(tmp_path / "p", "demo")
    repo = GitRepo(tmp_path / "p")
    desired = read_desired(tmp_path / "p", "main")
    assert desired.spec_sha == repo.head("main") and desired.pin is None
