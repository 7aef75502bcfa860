"""The parser's table cache under faults a user's machine can inject.

Each test damages the cache file that a first run wrote (or puts something
else at its path), then runs adcli again in a fresh process: the run must work,
and must repair the cache so that later runs read it again. The runs are of a
copy of the source tree without the generated tables of the shipped grammar
(adcli/lang/_grammar_tables.py), as when the grammar has been edited since: the
parser compiles the grammar and keeps its tables in the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_TREE: list[Path] = []


@pytest.fixture(autouse=True, scope="module")
def _tree_without_generated_tables(tmp_path_factory):
    tree = tmp_path_factory.mktemp("tree")
    skip = shutil.ignore_patterns("__pycache__", "_grammar_tables.py")
    shutil.copytree(ROOT / "adcli", tree / "adcli", ignore=skip)
    if (ROOT / "grammar").is_dir():
        shutil.copytree(ROOT / "grammar", tree / "grammar")
    _TREE.append(tree)
    yield
    _TREE.pop()


def run_adcli(cache_home: Path, *args: str, home: Path | None = None, cwd: Path | None = None):
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(cache_home)
    env["PYTHONPATH"] = str(_TREE[-1])
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "adcli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=_TREE[-1] if cwd is None else cwd,  # (python -m puts the directory first)
        check=False,
    )


@pytest.fixture
def cache_home(tmp_path: Path) -> Path:
    home = tmp_path / "cache"
    done = run_adcli(home, "eval", "1+1")
    assert done.returncode == 0, done.stderr
    return home


def table_file(cache_home: Path) -> Path:
    (found,) = (cache_home / "adcli").glob("grammar-*.json")
    return found


def assert_works_and_repairs(cache_home: Path, path: Path) -> None:
    done = run_adcli(cache_home, "eval", "2*(3+4)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "14"
    assert "Traceback" not in done.stderr
    # Repaired: a regular file with tables in it, read by the next run.
    assert path.is_file() and not path.is_symlink()
    data = json.loads(path.read_text())
    assert isinstance(data, dict) and data["actions"]
    again = run_adcli(cache_home, "eval", "1+1")
    assert again.returncode == 0 and again.stdout.strip() == "2"


def test_the_first_run_writes_valid_tables(cache_home: Path) -> None:
    data = json.loads(table_file(cache_home).read_text())
    assert data["format"] >= 2 and data["lark"] and data["grammar"].startswith("//")


@pytest.mark.parametrize("content", ["[]", "null", "42", "", "{not json"])
def test_valid_json_of_the_wrong_shape_is_rebuilt(cache_home: Path, content: str) -> None:
    path = table_file(cache_home)
    path.write_text(content)
    assert_works_and_repairs(cache_home, path)


def test_a_deeply_nested_array_is_rebuilt(cache_home: Path) -> None:
    path = table_file(cache_home)
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert_works_and_repairs(cache_home, path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(actions=[{"NAME": 10**9}]),  # a state that does not exist
        lambda d: d.update(actions=[]),
        lambda d: d["rules"].__setitem__(0, ["start", 1, 2, [9]]),  # a mode that does not exist
        lambda d: d["handler_names"].__setitem__(
            d["rules"].index(next(r for r in d["rules"] if r[2] == 2)), "__class__"
        ),
        lambda d: d.update(terminals=[["NAME", "(unclosed"]]),
        lambda d: d.update(start_state=-1),
        lambda d: d.update(keywords={"NAME": ["assert"]}),
        lambda d: d.pop("balanced"),
    ],
    ids=[
        "state",
        "no-states",
        "mode",
        "handler",
        "pattern",
        "start",
        "keywords",
        "missing-key",
    ],
)
def test_damaged_tables_under_a_matching_header_are_rebuilt(cache_home: Path, damage) -> None:
    path = table_file(cache_home)
    data = json.loads(path.read_text())
    damage(data)  # grammar text and Lark version still match
    path.write_text(json.dumps(data))
    assert_works_and_repairs(cache_home, path)


def test_a_fifo_does_not_hang(cache_home: Path) -> None:
    path = table_file(cache_home)
    path.unlink()
    os.mkfifo(path)
    assert_works_and_repairs(cache_home, path)


def test_a_symlink_to_dev_zero_is_not_read(cache_home: Path) -> None:
    path = table_file(cache_home)
    path.unlink()
    path.symlink_to("/dev/zero")
    assert_works_and_repairs(cache_home, path)


def test_a_huge_file_is_not_read(cache_home: Path) -> None:
    path = table_file(cache_home)
    with open(path, "r+b") as file:
        file.truncate(64 * 1024 * 1024)  # sparse: past the bound, costs no disk
    assert_works_and_repairs(cache_home, path)


def test_failed_writes_leave_no_temporary_files(cache_home: Path) -> None:
    path = table_file(cache_home)
    path.unlink()
    path.mkdir()  # the rename onto it fails
    (path / "keep").write_text("x")
    for _ in range(3):
        done = run_adcli(cache_home, "eval", "1+1")
        assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
    assert not list((cache_home / "adcli").glob("*.tmp"))


def test_stale_temporary_files_are_removed(cache_home: Path) -> None:
    folder = cache_home / "adcli"
    stale = folder / "grammar-2-00000000.json.abc.tmp"
    stale.write_text("half a write")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    table_file(cache_home).unlink()  # the next run writes, and tidies up
    done = run_adcli(cache_home, "eval", "1+1")
    assert done.returncode == 0
    assert not stale.exists()


def test_a_relative_xdg_cache_home_is_ignored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    done = run_adcli(Path("relative-cache"), "eval", "1+1", home=home, cwd=work)
    assert done.returncode == 0, done.stderr
    assert not (work / "relative-cache").exists()
    assert list((home / ".cache" / "adcli").glob("grammar-*.json"))


def test_an_unwritable_cache_home_is_only_slower(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = run_adcli(blocker, "eval", "1+1")
    assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
