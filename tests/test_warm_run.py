"""The warm path of a run: top-level statements taken without the tree walk,
Session.run_program, the collector around a long run, and format 4 entries of
the cache of parsed scripts that point where they must not."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from adcli.errors import AdcliError
from adcli.lang import astcache, parser
from adcli.lang.interpreter import Session
from adcli.lang.parser import parse


def outputs(source: str, **session) -> tuple[list, object]:
    shown: list = []
    s = Session(dtype="float64", **session)
    error = None
    try:
        s.run(source, "t.ad", emit=shown.append)
    except AdcliError as err:
        error = (err.kind, err.span, err.message)
    return [(o.kind, repr(o.value), o.text) for o in shown], error


def walked(source: str) -> tuple[list, object]:
    """The same program with each statement run by the general evaluator (in a block)."""
    return outputs("if true {\n" + source + "}\n")


@pytest.mark.parametrize(
    "source",
    [
        "x = tensor([1.0, 2.0])\ny = x * 2\ny = sin(y)\ny = y - x\ny\n",
        "x = tensor([1.0, 2.0])\nm = tensor([[1.0, 2.0, 3.0]])\ny = x @ m\n",
        "x = tensor([1.0, 2.0])\ny = sin(x, 2)\n",
        'x = tensor([1.0, 2.0])\ny = x * "a"\n',
        "x = tensor([1.0])\ny = x / 0\ny\nz = log(x - 1)\nz\n",
        "x = 2\ny = x * 3\ny\nz = sin(x)\nz\n",
        "x = tensor([1.0])\ny = x + q\n",
        "x = tensor([1.0])\ny = nothing(x)\n",
        "x = tensor([1.0])\ny = pi * x\ny\nw = x * pi\nw\n",
    ],
)
def test_top_level_assignments_run_as_in_a_block(source: str) -> None:
    shown, error = outputs(source)
    block_shown, block_error = walked(source)
    assert [s[1:] for s in shown] == [s[1:] for s in block_shown]
    if error is None:
        assert block_error is None
    else:
        assert block_error is not None
        assert error[0] == block_error[0] and error[2] == block_error[2]
        # the same column of the statement (the block version is one line lower)
        assert (error[1].line + 1, error[1].column) == (block_error[1].line, block_error[1].column)


def test_a_user_function_shadows_the_builtin_at_top_level() -> None:
    shown, error = outputs("x = tensor([1.0])\nsquare(a) = a * 100\ny = square(x)\ny\n")
    assert error is None
    assert "100" in shown[-1][1]


def test_a_bad_operand_is_reported_at_the_operator() -> None:
    _, error = outputs("x = tensor([1.0, 2.0])\nm = tensor([[1.0, 2.0, 3.0]])\ny = x @ m\n")
    assert error is not None and error[1].line == 3 and error[1].column == 7


def test_the_step_limit_counts_top_level_statements() -> None:
    source = "x = tensor([1.0])\n" + "x = x * 2\n" * 5 + "for i in range(3) { x = x + 1 }\n"
    _, error = outputs(source, limits=None)
    assert error is None
    from adcli.lang.values import Limits

    _, error = outputs(source, limits=Limits(max_steps=7))
    assert error is not None and error[0] == "limit"


def test_run_program_runs_a_parsed_program_as_run_does() -> None:
    source = "x = tensor([1.0, 2.0])\ny = x * 2\ny\nz = q + 1\n"
    program = parse(source, "f.ad")
    shown: list = []
    s = Session()
    with pytest.raises(AdcliError) as caught:
        s.run_program(program, source, "f.ad", emit=shown.append)
    assert caught.value.kind == "name" and caught.value.span.line == 4
    assert s.source_lines("f.ad")[3] == "z = q + 1"
    assert [o.kind for o in shown] == ["value"]
    assert Session().run_program(parse("1 + 2"), "1 + 2") == 3
    with pytest.raises(TypeError):
        Session().run_program("1 + 2", "1 + 2")


def test_the_collector_is_as_it_was_after_a_long_run() -> None:
    long = "y = 1\n" * 1500
    assert gc.isenabled()
    Session().run(long, "a.ad")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with pytest.raises(AdcliError):
        Session().run(long + "z = q\n", "a.ad")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with pytest.raises(AdcliError):
        Session().run(long + "z = (\n", "a.ad")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        Session().run(long, "a.ad")
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()


# ---------------------------------------------------------------- the cache's format 4

SCRIPT = "x = tensor([1.5], requires_grad=true)\ny = x\n" + "y = y * 1.0001\ny = sin(y)\n" * 60


@pytest.fixture
def entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    parser.set_cache(True)
    parse(SCRIPT, "a.ad", cache=True)
    (path,) = (tmp_path / "cache" / "adcli").glob("ast-*.ast")
    head, body = path.read_bytes().split(b"\n", 1)
    return path, json.loads(head), astcache._parts(body)


def _load_after(entry, damage) -> object:
    import hashlib

    path, header, body = entry
    damage(body)
    raw = astcache._body(body)
    header = {**header, "body": hashlib.sha256(raw).hexdigest()}
    path.write_bytes(json.dumps(header).encode() + b"\n" + raw)
    return astcache.load(header["key"], "a.ad", 200, len(SCRIPT))


def test_a_good_entry_is_read(entry) -> None:
    assert _load_after(entry, lambda b: None) == parse(SCRIPT, "a.ad")


def _first_run_points_at_itself(body: dict) -> None:
    pools = len(body["consts"]) + len(body["spans"][0]) + len(body["packed"])
    code = body["code"]
    position = built = 0  # the first run of several records that have fields
    while True:
        count, size = code[position + 1], body["builders"][code[position]][1]
        if count > 1 and size > 0:
            break
        position += 2 + count * size
        built += count
    # the run's last record's first field: at the run's first record
    code[position + 2 + count - 1] = pools + built


def _a_run_of_nothing(body: dict) -> None:
    body["code"][1] = 0


def _endless_empty_tuples(body: dict) -> None:
    body["builders"].append(["()", 0])
    body["code"][:0] = [len(body["builders"]) - 1, 2**31 - 1]


def _bool_count(body: dict) -> None:
    body["code"][1] = True


@pytest.mark.parametrize(
    "damage", [_first_run_points_at_itself, _a_run_of_nothing, _endless_empty_tuples, _bool_count]
)
def test_a_run_that_points_where_it_must_not_is_refused(entry, damage) -> None:
    assert _load_after(entry, damage) is None


def test_errors_inside_a_cached_statement_point_where_a_parse_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spans below a statement stay packed in the cache and are made when an error reads one.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    parser.set_cache(True)
    source = SCRIPT + "m = tensor([[1.0], [2.0]])\nw = (y +\n  y) @ m\n"
    found = []
    for cache in (False, True, True):
        program = parse(source, "a.ad", cache=cache)
        with pytest.raises(AdcliError) as caught:
            Session().run_program(program, source, "a.ad")
        found.append((caught.value.kind, caught.value.span, caught.value.message))
    assert found[0] == found[1] == found[2]
    assert found[0][1].line == SCRIPT.count("\n") + 3
