"""The shared static pass (adcli/lang/scope.py): ``adcli check`` understands
the v2 language, and it and ``run`` agree (on structure, names in bodies,
arity messages and the global limits)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adcli.errors import AdcliError
from adcli.lang import builtins as B
from adcli.lang.check import check_source
from adcli.lang.interpreter import Limits, Session

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO.parents[1] / "shared" / "spec" / "language.md"


def problems(source: str, **kw) -> list[tuple[str, str, int, int]]:
    return [
        (e.kind, e.message, e.span.line, e.span.column) for e in check_source(source, "<t>", **kw)
    ]


def run_error(source: str, **kw) -> AdcliError:
    with pytest.raises(AdcliError) as info:
        Session(**kw).run(source, "<t>", lambda output: None)
    return info.value


CLEAN = [
    "s = 0; for i in range(5) { s += i }; s",
    "x = 1\nwhile x < 10 { x *= 2 }",
    "for i in range(3) { if i > 0 { print(prev) }; prev = i }",
    "f(x) {\n  y = x * 2\n  return y + k\n}\nk = 1\nf(2)",
    "a, b = (1, 2)\nc = a + b",
    "w = ones(2, requires_grad=true)\nno_grad { w -= 1 }\nw.grad = none\nw[0] = 2",
    "if true { r = 1 } else if false { r = 2 } else { r = 3 }\nr",
    "t = (1, 2)\nn = len(t) + pi",
    "x = ones(2, requires_grad=true)\ng = grad(sum(x * x), [x])",
]


@pytest.mark.parametrize("source", CLEAN)
def test_v2_programs_are_clean(source):
    assert problems(source) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("break", ("syntax", "'break' outside a loop", 1, 1)),
        ("x = 1\nif x { continue }", ("syntax", "'continue' outside a loop", 2, 8)),
        ("return 1", ("syntax", "'return' outside a function", 1, 1)),
        ("for i in range(2) { y = nope }", ("name", "unknown name 'nope'", 1, 25)),
        ("f(x) { return x + nope }", ("name", "unknown name 'nope' in a function body", 1, 19)),
        (
            "f(x) { return f(x) }",
            ("name", "'f' cannot call itself: recursion is not allowed", 1, 15),
        ),
        ("x = True", ("name", "unknown name 'True'; did you mean 'true'?", 1, 5)),
        (
            "x = ones(2)\nx.shape = 1",
            ("name", "cannot set the attribute 'shape' of a tensor", 2, 3),
        ),
        ("f(x) { return x }\nf(1, 2)", ("type", "f() takes 1 argument, but 2 were given", 2, 1)),
        ("ones(2).item(1)", ("type", ".item() takes 0 arguments, but 1 was given", 1, 1)),
    ],
)
def test_check_finds_v2_problems(source, expected):
    assert problems(source) == [expected]


@pytest.mark.parametrize(
    "source",
    [
        "break",
        "return 1",
        "f(x) { return f(x) }",
        "f(v) = g(v)\ng(v) = v",
        "f(x) { return x }\nf(1, 2)",
        "ones(2).item(1)",
    ],
)
def test_check_and_run_report_the_same_error(source):
    (kind, message, line, column) = problems(source)[0]
    err = run_error(source)
    assert (err.kind, err.message, err.span.line, err.span.column) == (kind, message, line, column)


def test_check_honours_max_depth_like_run():
    deep = "x = " + "(" * 5 + "1" + ")" * 5
    limits = Limits(max_depth=3, max_expr_depth=30)
    (kind, message, _, _) = problems(deep, limits=limits)[0]
    err = run_error(deep, limits=limits)
    assert kind == err.kind == "limit"
    assert message == err.message
    assert problems(deep) == []


_SMALL = Limits(max_depth=3, max_expr_depth=30)


@pytest.mark.parametrize(
    ("source", "column"),
    [
        ("x = " + "- " * 40 + "1", 65),  # unary minus, one level each
        ("x = ones(1)" + ".exp()" * 40, 5),  # a chain of methods
        ("x = 2" + "^1" * 40, 65),  # ^ is right-associative: nested
        ("for i in range(2) {\n  x = " + "- " * 40 + "1\n}", 67),  # inside a loop
        ("f(x) = " + "- " * 40 + "x", 68),  # a function's body
        ("x = 1\nif x > 0 {\n  y = 1\n} else if " + "- " * 40 + "x < 0 {\n  y = 2\n}", 69),
    ],
)
def test_check_and_run_agree_on_the_expression_depth(source, column):
    (kind, message, _line, col) = problems(source, limits=_SMALL)[0]
    err = run_error(source, limits=_SMALL)
    assert (kind, message) == ("limit", "expression nested too deeply (limit 30)")
    assert (err.kind, err.message, err.span.column) == (kind, message, col)
    assert col == column
    # The default limit (2,000) takes them.
    assert problems(source) == []


@pytest.mark.parametrize("cached", [False, True])
def test_an_expression_over_several_lines_is_measured_too(cached, tmp_path, monkeypatch):
    # Its width in characters bounds its depth, over several lines as on one: a deep
    # one is found (from a parse, and from the cache of parsed scripts), a shallow
    # one within the limit is not walked and not refused.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    pad = "# padding\n" * (150 if cached else 0)  # past the size the cache takes
    deep = pad + "x = [\n" + "- \n" * 40 + "1]\n"
    shallow = pad + "x = [1,\n 2,\n 3]\ny = x\n"
    for _ in range(2 if cached else 1):  # (the second parse is read from the cache)
        (kind, message, line, col) = problems(deep, limits=_SMALL)[0]
        assert (kind, message) == ("limit", "expression nested too deeply (limit 30)")
        err = run_error(deep, limits=_SMALL)
        assert (err.kind, err.message, err.span.line, err.span.column) == (kind, message, line, col)
        assert problems(shallow, limits=_SMALL) == []
        session = Session(limits=_SMALL)
        assert session.run(shallow + "y", "<test>", lambda output: None).tolist() == [1, 2, 3]
    assert bool(list(tmp_path.rglob("ast-*.ast"))) == cached


def test_span_width_is_known_for_packed_spans_and_one_line_spans():
    from adcli.errors import Span
    from adcli.lang import nodes
    from adcli.lang.parser import parse

    (stmt,) = parse("x = [1,\n 2]").statements
    assert nodes.span_width(stmt) == len("x = [1,\n 2]")  # packed offsets: any lines
    assert nodes.span_width(nodes.Name("x", Span("f", 1, 3, 1, 8))) == 5
    assert nodes.span_width(nodes.Name("x", Span("f", 1, 3, 2, 8))) is None


def test_a_long_chain_of_one_operator_is_one_level():
    # a + b + c ... is walked in a loop: a 200-term sum is within a limit of 30.
    source = "x = 1" + " + 1" * 200
    assert problems(source, limits=_SMALL) == []
    session = Session(limits=_SMALL)
    assert session.run(source + "\nx", "<test>", lambda output: None) == 201


def test_a_too_deep_expression_stops_the_program_before_it_runs():
    # The limit is checked with the program's structure, as check does: nothing runs.
    outputs = []
    session = Session(limits=_SMALL)
    with pytest.raises(AdcliError) as info:
        session.run('print("first")\nx = ' + "- " * 40 + "1", "<test>", outputs.append)
    assert info.value.kind == "limit" and info.value.span.line == 2
    assert outputs == []


def test_the_static_depth_counts_what_the_evaluator_counts():
    from adcli.lang import evaluator, nodes, scope

    assert scope._COUNTED == set(evaluator._EVAL) - {nodes.Number}


def test_adcli_check_fails_like_run_on_the_command_line(tmp_path):
    script = tmp_path / "deep.ad"
    script.write_text("x = ((((1))))\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for command in ("check", "run"):
        done = subprocess.run(
            [sys.executable, "-m", "adcli", "--max-depth", "3", command, str(script)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "nested too deeply (limit 3)" in done.stdout + done.stderr


@pytest.mark.skipif(not SPEC.exists(), reason="the shared spec is not next to the checkout")
def test_the_second_taste_of_the_spec_is_clean_and_runs():
    text = SPEC.read_text()
    start = text.index("## A second taste (v2)")
    block = text[text.index("```", start) + 3 :]
    source = block[: block.index("```")]
    if "float" not in B.METHODS:  # .float() comes with the dtype work (issue 13 part B)
        source = source.replace("(t > 0).float()", "(t > 0) * 1.0")
    assert check_source(source, "<spec>") == []
    session = Session()
    session.run(source, "<spec>", lambda output: None)
    v = session.variables()
    assert abs(v["x"].item() - 0.7390851332151607) < 1e-12
    assert isinstance(v["gw"], type(v["w"])) and v["gw"].shape == (3,)
