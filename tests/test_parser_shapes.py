"""The parser's replays of statement shapes and its findall lexer, against Lark.

A statement whose shape (the kinds of its tokens, and the parser state it
starts in) was met before is built by a compiled replay of that shape's
handler calls, not token by token (``parser._Shapes``). Every test here parses
programs whose statements repeat, so that replays build most of them, and
compares the trees, spans included, with Lark's own parser over the same
grammar and builder.
"""

from __future__ import annotations

import random

import pytest
from test_parser_differential import assert_same, outcome_ours, statement

from adcli.errors import AdcliError
from adcli.lang import parser


def replays_used() -> int:
    return sum(1 for entry in parser._get_tables().shapes.memo.values() if type(entry) is tuple)


def repeated(rng: random.Random, times: int = 3) -> str:
    """A few generated statements, each several times over (with other spacing)."""
    text = ""
    for _ in range(rng.randint(1, 6)):
        line = statement(rng)
        for _ in range(times):
            text += line + rng.choice(["\n", "\n", "; ", "\n\n", "  # c\n"])
    return text


@pytest.mark.parametrize("seed", range(40))
def test_repeated_statements_parse_as_lark_parses_them(seed: int) -> None:
    rng = random.Random(5000 + seed)
    for _ in range(4):
        assert_same(repeated(rng), f"rep{seed}.ad")


def test_replays_build_repeated_statements() -> None:
    """The tests above exercise replays, not only the loop."""
    parser._get_tables().shapes.memo.clear()
    source = "y = sin(y) * 2\n" * 5 + "f(a, b=1)\n" * 4 + "z = (a + b) * c\n" * 3
    assert_same(source, "r.ad")
    assert replays_used() >= 3


BLOCKS = [
    "f(x) {\n  y = x * 2\n  y = x * 2\n  y = x * 2\n  return y\n}\n",
    "for i in range(3) { s = s + i; s = s + i; s = s + i }\n",
    "while s < 3 {\n s = s + 1\n s = s + 1\n s = s + 1\n}\n",
    "if a { b = 1 } else if c { b = 1 }\nelse {\n b = 1\n}\n",
    "no_grad {\n w = w - 0.1 * w.grad\n w = w - 0.1 * w.grad\n}\n",
    "g(v) { return v }\ng(v) { return v }\n",
    "x = [1,\n 2]\nx = [1,\n 2]\nx = [1,\n 2]\n",
    "a, b = b, a\na, b = b, a\na, b = b, a\n",
    "x[0] = 1\nx[0] = 1\nx.grad = none\nx.grad = none\nx += 1\nx += 1\nx += 1\n",
    'assert x == 1, "m"\nassert x == 1, "m"\nassert x == 1, "m"\n',
    "y = -x ** 2\ny = -x ** 2\ny = -x ** 2\ny = not a and b or c\n" * 2,
    "h(x) = x^2\nh(x) = x^2\nh(x) = x^2\n",
]


@pytest.mark.parametrize("source", BLOCKS)
def test_blocks_and_statement_kinds_parse_as_lark_parses_them(source: str) -> None:
    assert_same(source * 2, "b.ad")


@pytest.mark.parametrize(
    "line",
    ["1 = 2", "f(1) = 2", "f(a=1, a=2)", "f(a=1, 2)", "a, 1 = 2", "x = 10" + "0" * 5000],
)
def test_an_error_in_a_repeated_shape_is_reported_where_it_first_is(line: str) -> None:
    """A shape that fails is worded by the careful pass, at its first statement."""
    source = "ok = 1\n" + (line + "\n") * 4
    with pytest.raises(AdcliError) as first:
        parser.parse(source, "e.ad")
    with pytest.raises(AdcliError) as alone:
        parser.parse("ok = 1\n" + line + "\n", "e.ad")
    assert str(first.value) == str(alone.value)
    assert first.value.span == alone.value.span
    assert first.value.span.line == 2


def test_chunks_of_a_few_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast lexer's chunks end after a newline: with tiny chunks, the same trees."""
    monkeypatch.setattr(parser, "_CHUNK_CHARS", 5)
    rng = random.Random(77)
    for _ in range(20):
        assert_same(repeated(rng, 2), "small.ad")
    for source in BLOCKS:
        assert_same(source, "small.ad")


def test_the_memo_of_shapes_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser, "_MAX_SHAPES", 4)
    shapes = parser._get_tables().shapes
    shapes.memo.clear()
    source = "".join(f"v{i} = {'x + ' * i}1\n" * 3 for i in range(30))
    assert_same(source, "many.ad")
    assert len(shapes.memo) <= 4
    assert len(shapes._compiled) <= 4


def test_long_statements_are_parsed_token_by_token() -> None:
    line = "y = " + " + ".join(["x"] * 200) + "\n"
    assert_same(line * 3, "long.ad")


@pytest.mark.parametrize(
    ("pattern", "plain"),
    [
        ("[A-Za-z_][A-Za-z0-9_]*", True),
        (r"#[^\n]*", True),
        (r'"(?:[^"\\\n]|\\[^\n])*"', True),
        ("(a)b", False),  # a capturing group: findall would give the group
        ("a(?=b)", False),  # a lookahead: the kind depends on what follows
        ("(?<=a)b", False),
        (r"\bword", False),
        ("a$", False),
        ("[^x]", False),  # may match a newline
        (r"\s+", False),
        ("(?s:.)", False),
        ("(?>ab|a)c", False),
        ("a*+", False),
        ("(?:", False),  # does not compile
    ],
)
def test_which_patterns_the_fast_lexer_takes(pattern: str, plain: bool) -> None:
    assert parser._plain_pattern(pattern, newline=False) is plain


def test_the_newline_terminal_must_be_one_newline() -> None:
    assert parser._plain_pattern("\n", newline=True)
    assert not parser._plain_pattern("\n+", newline=True)
    assert not parser._plain_pattern("\r?\n", newline=True)


def test_a_text_kind_is_the_first_terminal_matching_all_of_it() -> None:
    kind_of = parser._get_tables().kind_of
    assert kind_of["if"] == "IF"
    assert kind_of["iffy"] == "NAME"
    assert kind_of["+="] == "AUG_OP"
    assert kind_of["**"] == "POW_OP"
    assert kind_of["1e5"] == "NUMBER"
    assert kind_of["  "] == "WHITESPACE"
    assert kind_of["$"] == parser._NO_TOKEN


def test_statements_that_are_not_separated_still_fail() -> None:
    assert outcome_ours("a = 1 b = 2\n" * 3, "x") == ("refused", "syntax")


def test_the_lexer_keeps_the_order_of_terminals_that_may_match_at_one_place() -> None:
    terminals = parser._get_tables().data["terminals"]
    order = [name for name, _ in parser._scan_order(terminals)]
    lark = [name for name, _ in terminals]
    assert sorted(order) == sorted(lark)
    firsts = {name: parser._first_characters(p) for name, p in terminals}
    for i, a in enumerate(lark):
        for b in lark[i + 1 :]:
            if firsts[a] is None or firsts[b] is None or firsts[a] & firsts[b]:
                assert order.index(a) < order.index(b), (a, b)
    assert order.index("COMP_OP") < order.index("EQUAL")
    assert order.index("NUMBER") < order.index("ELLIPSIS") < order.index("DOT")
    assert order[0] == "NAME"


@pytest.mark.parametrize(
    ("pattern", "first"),
    [("abc", "a"), ("[xy]z", "xy"), ("(?:a|b)+", "ab"), ("a?b", "ab"), ("[0-9]", "0123456789")],
)
def test_first_characters(pattern: str, first: str) -> None:
    assert parser._first_characters(pattern) == frozenset(map(ord, first))


@pytest.mark.parametrize("pattern", ["a*", "[^a]", r"\w", ".", "(?:)", "a|"])
def test_first_characters_unknown(pattern: str) -> None:
    assert parser._first_characters(pattern) is None


def test_kinds_met_after_the_first_replay_get_replays_too() -> None:
    tables = parser._get_tables()
    fresh = parser._Shapes(tables)
    old = tables.shapes
    tables.shapes = fresh
    try:
        assert_same("a = 1\n" * 4, "first.ad")
        assert replays_used() == 1
        assert_same('s = ["x", y.z]\n' * 4, "later.ad")
        assert replays_used() == 2
    finally:
        tables.shapes = old


@pytest.mark.parametrize("cached", [False, True])
def test_the_first_parse_of_a_process_finishes(tmp_path, cached: bool) -> None:
    """Setting up the replays while the tables load under their lock once deadlocked
    the first parse of every process: a fresh process parses, with and without the
    tables' cache file, within a time limit instead of hanging."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = "from adcli.lang import parser; print(len(parser.parse('y = sin(y)\\n' * 5).statements))"
    runs = 2 if cached else 1
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "5"


# ------------------------------------------------- the spaces before a token, and separators

SPACED = [
    "y = y * 1.0001\n",
    "y  =\ty\t*  1.0001   \n",
    "\ty = sin( y )\f\n",
    "y = y + 0.0001\r\n",
    "   \n\t\n",
    "y = y - 0.0001  # a comment after spaces\n",
    "  # a comment alone\n",
    "f( a ,\n   b = 1 )\n",
    "x = [ 1 ,\n\t 2 ]  ;  z = x\n",
    "if a {  b = 1  }  \n  else  {  b = 2  }\n",
]


@pytest.mark.parametrize("tail", ["", "   ", "\t", "  # end"])
def test_spaces_before_tokens_keep_every_span(tail: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast lexer takes the spaces before a token with it: the same trees and
    spans as Lark's, for spaces of every kind in every place, and the careful lexer
    is not needed for any of them."""
    careful = []
    tokenize = parser._tokenize
    monkeypatch.setattr(parser, "_tokenize", lambda *a, **k: careful.append(1) or tokenize(*a, **k))
    rng = random.Random(11)
    for _ in range(30):
        source = "".join(rng.choice(SPACED) for _ in range(rng.randint(1, 12))) + tail
        assert_same(source, "spaced.ad")
    assert not careful


def test_spaces_are_taken_with_a_token_only_where_no_terminal_starts_with_one() -> None:
    terminals = parser._get_tables().data["terminals"]
    name, _, chars = parser._leading_spaces(terminals, ["WHITESPACE", "COMMENT"])
    assert name == "WHITESPACE"
    assert set(chars) == set(" \t\f\r")
    spaced = [*terminals, ["INDENT", " +x"]]
    assert parser._leading_spaces(spaced, ["WHITESPACE", "COMMENT"]) is None
    unknown = [*terminals, ["ANY", "."]]  # may start with anything
    assert parser._leading_spaces(unknown, ["WHITESPACE", "COMMENT"]) is None
    for pattern in ["[ \t]+x", "[ \t]*", " |\t", "(?: |\t\t)+", "[^x]+"]:
        odd = [[n, pattern if n == "WHITESPACE" else p] for n, p in terminals]
        assert parser._leading_spaces(odd, ["WHITESPACE", "COMMENT"]) is None, pattern
    assert parser._leading_spaces(terminals, ["COMMENT"]) is None


def test_a_replayed_statement_takes_its_separator_with_it() -> None:
    tables = parser._get_tables()
    tables.shapes.memo.clear()
    source = "y = y * 2\n" * 4 + "y = y * 2; " * 4 + "\nf(x) {\n  y = x\n  y = x\n  y = x\n}\n"
    assert_same(source, "sep.ad")
    replays = [entry for entry in tables.shapes.memo.values() if type(entry) is tuple]
    assert any(entry[2] is not None for entry in replays)
    program = parser.parse(source, "sep.ad")
    assert len(program.statements) == 9
    assert program.statements[-1].body.statements[2].span.line == 9


def test_a_number_of_too_many_digits_is_refused_where_it_is_after_replays() -> None:
    source = "x = 1\n" * 3 + "x = 1.5\n" * 3 + "x = " + "9" * 5000 + "\n"
    with pytest.raises(AdcliError) as caught:
        parser.parse(source, "n.ad")
    assert caught.value.kind == "limit"
    assert caught.value.span.line == 7
    values = [s.value.value for s in parser.parse(source.rsplit("x = 9", 1)[0]).statements]
    assert values == [1, 1, 1, 1.5, 1.5, 1.5]
    assert [type(v) for v in values] == [int] * 3 + [float] * 3


def test_nodes_the_replays_make_are_of_their_own_class_and_frozen() -> None:
    from dataclasses import FrozenInstanceError

    from adcli.lang import nodes

    program = parser.parse("y = y * 2\n" * 4 + "z = sin(y)\n" * 4)
    made = [program.statements[-1], program.statements[-1].value, program.statements[0].value]
    assert [type(node) for node in made] == [nodes.Assign, nodes.Call, nodes.Binary]
    with pytest.raises(FrozenInstanceError):
        made[2].op = "+"
    assert made[2] == nodes.Binary("*", made[2].left, made[2].right, made[2].span, made[2].op_span)
    assert all(not cls.__qualname__.endswith("<being made>") for cls in nodes.NODE_CLASSES)


def test_the_memos_of_texts_keep_no_long_text() -> None:
    """The memos of texts outlive a parse: a long string literal, long spaces before a
    token or a long number is worked out again each time rather than kept."""
    tables = parser._get_tables()
    long_string = '"' + "a" * 5000 + '"'
    source = f"x = {long_string}\n{' ' * 3000}y = 1\nz = {'7' * 900}\n" * 3
    program = parser.parse(source, "long.ad")
    assert program.statements[0].value.value == "a" * 5000
    assert program.statements[1].span.column == 3001
    assert program.statements[2].value.value == float("inf")
    memos = [tables.kind_of, tables.texts.code_of, tables.texts.value_of, tables.texts.place_of]
    memos += [tables.texts.scaled_length, parser._NUMBER_VALUES]
    assert all(len(text) <= parser._LONGEST_TEXT_KEPT for memo in memos for text in memo)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("9223372036854775807", 9223372036854775807),
        ("9223372036854775808", 9.223372036854775808e18),
        ("1" + "0" * 308, 1e308),
        ("2" + "0" * 308, float("inf")),  # past the largest float: inf, as 1e400 is
        ("7" * 4000, float("inf")),
    ],
)
def test_whole_number_literals_past_64_bits_are_floats(text: str, value: float) -> None:
    for source in (f"x = {text}\n", f"x = {text}\n" * 3):
        number = parser.parse(source).statements[-1].value
        assert number.value == value
        assert type(number.value) is type(value)


def test_the_careful_path_alone_parses_and_words_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A grammar the fast lexer cannot take has no replays: the careful path alone
    gives the same trees and the same errors."""
    source = "y = sin(y) * 2\n" * 3 + "if a { b = 1 }\nelse { b = 2 }\n"
    expected = parser.parse(source, "c.ad")
    with pytest.raises(AdcliError) as first:
        parser.parse("x = (1 +\n", "c.ad")
    tables = parser._get_tables()
    monkeypatch.setattr(tables, "fast", False)
    monkeypatch.setattr(tables, "shapes", None)
    assert parser.parse(source, "c.ad") == expected
    with pytest.raises(AdcliError) as again:
        parser.parse("x = (1 +\n", "c.ad")
    assert (again.value.message, again.value.span) == (first.value.message, first.value.span)
