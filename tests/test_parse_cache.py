"""The cache of parsed scripts: a second run of an unchanged script skips
parsing; a damaged or hostile entry is never trusted; ``--no-cache``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from adcli.errors import AdcliError, Span
from adcli.lang import astcache, nodes, parser
from adcli.lang.parser import parse

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = (
    'x = tensor([1.5, 2.0], dtype="float64", requires_grad=true)\n'
    "f(a, b) = a * b + sin(a)\n"
    + "".join(f"y{i} = f(x, {i}.5)[0] - x[1:2].sum() ^ 2  # step {i}\n" for i in range(60))
    + 'assert y3 != 0, "nonzero"\n'
    + "z = y59\nz.backward()\nx.grad\n"
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    parser.set_cache(True)
    yield home
    parser.set_cache(True)


def entries(home: Path) -> list[Path]:
    return sorted((home / "adcli").glob("ast-*.ast"))


def test_an_unchanged_script_is_not_parsed_again(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = parse(SCRIPT, "a.ad", cache=True)
    assert len(entries(private_cache)) == 1

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(parser, "_parse", no_parsing)
    second = parse(SCRIPT, "a.ad", cache=True)
    assert second == first
    # The file name is the caller's, not the one the entry was written with.
    third = parse(SCRIPT, "b.ad", cache=True)
    assert third.statements[0].span == Span("b.ad", 1, 1, 1, 60)
    assert [type(s) for s in third.statements] == [type(s) for s in first.statements]


def test_a_changed_script_is_parsed(private_cache: Path) -> None:
    parse(SCRIPT, "a.ad", cache=True)
    changed = SCRIPT.replace("0.5", "0.25")
    program = parse(changed, "a.ad", cache=True)
    assert len(entries(private_cache)) == 2
    assert program == parse(changed, "a.ad")


def test_short_sources_and_plain_calls_are_not_cached(private_cache: Path) -> None:
    parse("x = 1\n", "a.ad", cache=True)
    parse(SCRIPT, "a.ad")  # cache=False: the default of parse()
    assert entries(private_cache) == []


def test_set_cache_false_neither_reads_nor_writes(private_cache: Path) -> None:
    parser.set_cache(False)
    parse(SCRIPT, "a.ad", cache=True)
    assert entries(private_cache) == []


def test_the_nesting_limit_still_applies_to_a_cached_script(private_cache: Path) -> None:
    deep = SCRIPT + "w = " + "(" * 30 + "1" + ")" * 30 + "\n"
    parse(deep, "a.ad", cache=True)
    with pytest.raises(AdcliError) as caught:
        parse(deep, "a.ad", cache=True, max_depth=10)
    assert caught.value.kind == "limit"


def test_syntax_errors_are_not_cached(private_cache: Path) -> None:
    bad = SCRIPT + "w = (1 +\n"
    for _ in range(2):
        with pytest.raises(AdcliError) as caught:
            parse(bad, "a.ad", cache=True)
        assert caught.value.kind == "syntax"
    assert entries(private_cache) == []


def _entry(private_cache: Path) -> tuple[Path, dict, dict]:
    parse(SCRIPT, "a.ad", cache=True)
    (path,) = entries(private_cache)
    head, body = path.read_bytes().split(b"\n", 1)
    return path, json.loads(head), astcache._parts(body)


def _rewrite(path: Path, header: dict, body: dict | bytes, fix_hash: bool = True) -> None:
    """Write an entry of ``body`` (the parts of one, or its bytes) under ``header``."""
    import hashlib

    raw = body if type(body) is bytes else astcache._body(body)
    if fix_hash:
        header = {**header, "body": hashlib.sha256(raw).hexdigest()}
    path.write_bytes(json.dumps(header).encode() + b"\n" + raw)


HOSTILE = {
    "unknown class": lambda b: b["builders"].__setitem__(0, ["Tensor", 2]),
    "private class": lambda b: b["builders"].__setitem__(0, ["Node", 0]),
    "wrong arity": lambda b: b["builders"].__setitem__(0, [b["builders"][0][0], 7]),
    "negative tuple": lambda b: b["builders"].append(["()", -1]),
    "builder out of range": lambda b: b["code"].__setitem__(0, 10**9),
    "field out of range": lambda b: b["code"].__setitem__(1, 10**9),
    "a record cut short": lambda b: b["code"].pop(),
    "no program at the end": lambda b: b["code"].extend([0] + [0] * b["builders"][0][1]),
    "a list constant": lambda b: b["consts"].append([1, 2]),
    "an object constant": lambda b: b["consts"].append({"__class__": "x"}),
    "a packed span past the end": lambda b: b["packed"].__setitem__(0, 10**6 << 32 | 10**6),
    "a packed end past the end": lambda b: b["packed"].__setitem__(0, 10**6),
    "line starts not from 0": lambda b: b["starts"].__setitem__(0, 1),
    "line starts that fall": lambda b: b["starts"].__setitem__(1, b["starts"][2]),
    "line starts past the end": lambda b: b["starts"].append(10**6),
    "no line starts": lambda b: b.update(starts=[]),
    "a constant where a span goes": lambda b: _point_a_span_at_a_constant(b),
    "empty code": lambda b: b.update(code=[]),
    "a run of more empty tuples than the code has numbers": lambda b: _huge_empty_run(b),
}


def _huge_empty_run(body: dict) -> None:
    """Put first a run of four billion empty tuples: no fields, so it fits the code."""
    body["builders"].append(["()", 0])
    body["code"][0:0] = [len(body["builders"]) - 1, 4_000_000_000]


def _point_a_span_at_a_constant(body: dict) -> None:
    """Point the first span field of the first run of nodes at the first literal."""
    code, position = body["code"], 0
    while True:
        name, size = body["builders"][code[position]]
        count = code[position + 1]
        if name != "()":
            names = [f.name for f in fields(getattr(nodes, name))]
            if "span" in names:
                code[position + 2 + names.index("span") * count] = 0
                return
        position += 2 + count * size


def _with_head(body: dict, **changes) -> bytes:
    """The bytes of ``body`` with its JSON line changed as ``changes`` say."""
    raw = astcache._body(body)
    head, rest = raw.split(b"\n", 1)
    return json.dumps({**json.loads(head), **changes}).encode() + b"\n" + rest


def _negative(body: dict, name: str, index: int) -> bytes:
    """The bytes of ``body`` with the ``index``-th number of array ``name`` made -1 (as
    a signed number would be written): the arrays are unsigned, so it reads as huge."""
    if name == "spans":
        body["spans"][0][index] = 0
    else:
        body[name][index] = 0
    raw = astcache._body(body)
    sizes = [len(body["spans"][0]) * 4, len(body["packed"]), len(body["starts"])]
    width_of = {array: astcache._ITEM_SIZES[code] for array, code in astcache._ARRAYS}
    at = raw.index(b"\n") + 1
    for size, array in zip(sizes, ("spans", "packed", "starts")):
        if array == name:
            break
        at += size * width_of[array]
    width = width_of[name]
    at += index * width
    return raw[:at] + b"\xff" * width + raw[at + width :]


#: Damage to the bytes of a body, which its parts cannot express.
HOSTILE_BYTES = {
    "cut short": lambda b: astcache._body(b)[:-1],
    "a byte too many": lambda b: astcache._body(b) + b"\0",
    "ragged spans": lambda b: astcache._body(b)[:-4],  # one int fewer than the sizes say
    "sizes that do not add up": lambda b: _with_head(
        b, sizes=[len(b["spans"][0]) + 1, len(b["packed"]) - 2, *map(len, (b["starts"], b["code"]))]
    ),
    "a list of sizes": lambda b: _with_head(b, sizes=[[1], 2, 3, 4]),
    "a float size": lambda b: _with_head(b, sizes=[1.5, 0, 0, 0]),
    "a bool size": lambda b: _with_head(
        b, sizes=[True, *map(len, (b["packed"], b["starts"], b["code"]))]
    ),
    "no line of JSON": lambda b: b"\0" * 64,
    "a negative index": lambda b: _negative(b, "code", 1),
    "a negative span": lambda b: _negative(b, "spans", 1),
    "a negative packed span": lambda b: _negative(b, "packed", 0),
    "a JSON list": lambda b: b"[]\n",
}


@pytest.mark.parametrize(
    "damage",
    [*HOSTILE.values(), *map(staticmethod, HOSTILE_BYTES.values())],
    ids=[*HOSTILE, *(f"bytes: {name}" for name in HOSTILE_BYTES)],
)
def test_a_hostile_entry_is_ignored_and_replaced(private_cache: Path, damage) -> None:
    path, header, body = _entry(private_cache)
    assert astcache.load(header["key"], "a.ad", 200, len(SCRIPT)) is not None
    if type(damage) is staticmethod:  # (one that makes the bytes)
        _rewrite(path, header, damage.__func__(body))
    else:
        damage(body)
        _rewrite(path, header, body)
    assert astcache.load(header["key"], "a.ad", 200, len(SCRIPT)) is None
    program = parse(SCRIPT, "a.ad", cache=True)
    assert program == parse(SCRIPT, "a.ad")
    # Replaced by a good entry: read back as is.
    assert astcache.load(header["key"], "a.ad", 200, len(SCRIPT)) == program


@pytest.mark.parametrize(
    "header_damage",
    [
        lambda h: h.update(key="0" * 64),
        lambda h: h.update(format=99),
        lambda h: h.update(depth=-1),
        lambda h: h.update(depth="deep"),
        lambda h: h.update(body="0" * 64),
    ],
    ids=["key", "format", "negative-depth", "depth-type", "body-hash"],
)
def test_a_damaged_header_is_ignored(private_cache: Path, header_damage) -> None:
    path, header, body = _entry(private_cache)
    header_damage(header)
    _rewrite(path, header, body, fix_hash=False)
    assert parse(SCRIPT, "a.ad", cache=True) == parse(SCRIPT, "a.ad")


@pytest.mark.parametrize("spot", [-1, -4000, 200])
def test_a_flipped_byte_in_the_body_is_caught(private_cache: Path, spot: int) -> None:
    path, header, _ = _entry(private_cache)
    raw = bytearray(path.read_bytes())
    raw[spot] ^= 1
    path.write_bytes(bytes(raw))
    assert astcache.load(header["key"], "a.ad", 200, len(SCRIPT)) is None
    assert parse(SCRIPT, "a.ad", cache=True) == parse(SCRIPT, "a.ad")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "garbage", "empty"])
def test_what_is_not_an_entry_is_not_read(private_cache: Path, kind: str) -> None:
    path, _, _ = _entry(private_cache)
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"\x00\xff" * 1000)
    else:
        path.write_bytes(b"")
    assert parse(SCRIPT, "a.ad", cache=True) == parse(SCRIPT, "a.ad")


def test_deep_trees_round_trip(private_cache: Path) -> None:
    chain = "y = 1" + " + x" * 20_000 + "\n"
    first = parse(chain, "c.ad", cache=True)
    second = parse(chain, "c.ad", cache=True)
    assert isinstance(second, nodes.Program)
    assert list(map(type, nodes.walk(second))) == list(map(type, nodes.walk(first)))
    assert second.statements[0].span == first.statements[0].span


MIXED = (
    "g(a) {\n  if a > 0 { return a } else if a < 0 { return -a } else { return }\n}\n"
    "x = tensor([[1.0, 2.0], [3.0, 4.0]])\n"
    + "".join(
        f"v{i} = x[{i % 2}:, ::{1 + i % 3}] + x[:{i % 2 + 1}] * g({i}) + max(x, {i}.5, axis=0)"
        f' - h(x, a={i}, b=true)[0] + [{i}, {i}.0, none, "s{i}"][1] ^ -{i % 4}\n'
        for i in range(40)
    )
    + "u, w = w, u\nfor i in range(3) { while false { break }\n continue }\n"
    'assert v1 != 0\nassert v2 != 0, "why"\n'
)


def test_every_kind_of_field_round_trips(private_cache: Path) -> None:
    # Fields that are sometimes None and sometimes a node, tuples of several sizes
    # in one field, literals of several types in one field, leaves at every depth.
    first = parse(MIXED, "m.ad", cache=True)
    assert len(entries(private_cache)) == 1
    second = parse(MIXED, "m.ad", cache=True)
    assert second == first == parse(MIXED, "m.ad")
    spans = [getattr(n, "span", None) for n in nodes.walk(second)]
    assert spans == [getattr(n, "span", None) for n in nodes.walk(first)]
    assert [type(v) for n in nodes.walk(second) for v in vars_of(n)] == [
        type(v) for n in nodes.walk(first) for v in vars_of(n)
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_spans_round_trip_past_wide_characters_and_crlf(private_cache: Path, newline: str) -> None:
    # Offsets count characters, not bytes; a line may end in \r\n.
    source = MIXED.replace('"s', '"\u00e9\U0001f600 s').replace("\n", newline)
    first = parse(source, "u.ad")
    parse(source, "u.ad", cache=True)
    second = parse(source, "u.ad", cache=True)
    assert len(entries(private_cache)) == 1
    assert second == first
    spans = [
        getattr(n, name) for n in nodes.walk(first) for name in n._field_names if "span" in name
    ]
    assert spans == [
        getattr(n, name) for n in nodes.walk(second) for name in n._field_names if "span" in name
    ]


def vars_of(node: object) -> list:
    return [getattr(node, name) for name in getattr(node, "_field_names", ())]


def test_the_cache_stays_bounded(private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(astcache, "MAX_ENTRIES", 3)
    for i in range(6):
        parse(SCRIPT + f"q = {i}\n", "a.ad", cache=True)
    assert len(entries(private_cache)) == 3


# ------------------------------------------------------------------ through the command line


def run_adcli(cache_home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "adcli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_run_uses_the_cache_and_no_cache_turns_it_off(tmp_path: Path) -> None:
    script = tmp_path / "s.ad"
    script.write_text(SCRIPT)
    cold = tmp_path / "cold"
    off = run_adcli(cold, "--no-cache", "run", str(script))
    assert off.returncode == 0, off.stderr
    assert entries(cold) == []
    first = run_adcli(cold, "run", str(script))
    second = run_adcli(cold, "run", str(script))
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout == off.stdout
    assert len(entries(cold)) == 1
    also = run_adcli(cold, "run", "--no-cache", str(script))  # after the command, too
    assert also.returncode == 0 and also.stdout == off.stdout


def test_errors_from_a_cached_script_point_into_it(tmp_path: Path) -> None:
    script = tmp_path / "bad.ad"
    script.write_text(SCRIPT + "boom(1)\n")
    home = tmp_path / "c"
    first = run_adcli(home, "run", str(script))
    second = run_adcli(home, "run", str(script))
    assert first.returncode == second.returncode == 1
    assert first.stderr == second.stderr
    assert f"{script}:{SCRIPT.count(chr(10)) + 1}:1" in second.stderr


def test_a_change_to_the_tree_building_code_is_a_new_key(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parse(SCRIPT, "a.ad", cache=True)
    monkeypatch.setattr(astcache, "_stamp", "parser.py:1:2")  # as if edited
    parse(SCRIPT, "a.ad", cache=True)
    assert len(entries(private_cache)) == 2


def test_packed_spans_unpack_as_the_parser_reads_them() -> None:
    # A column of packed spans is unpacked at once as Lines.span unpacks one: empty
    # spans, spans across lines, at the end of the text, after a last newline.
    import random

    rng = random.Random(1)
    for _ in range(200):
        size = rng.randint(0, 60)
        source = "".join(rng.choice("ab\n") for _ in range(size))
        lines = nodes.Lines("f.ad", source)
        column = []
        for _ in range(50):
            start = rng.randint(0, size)
            column.append(nodes.packed(start, rng.randint(start, size)))
        parts: list[list[int]] = [[], [], [], []]
        astcache._unpack(column, astcache._line_table(lines, column[0]), parts)
        assert list(zip(*parts)) == [tuple(lines.span(pos))[1:] for pos in column]
