"""The syntax layer: grammar/adcli.lark, adcli/parser.py and adcli/nodes.py.

Most tests compare a compact rendering of the AST without spans
(:func:`sx`), so precedence reads at a glance: ``1 + 2 * 3`` is
``(+ 1 (* 2 3))``.
"""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adcli.errors import AdcliError, Span
from adcli.lang import nodes
from adcli.lang import parser as parser_module
from adcli.lang.parser import is_complete, parse

# ------------------------------------------------------------------ helpers


def sx(node: object) -> str:
    """An s-expression for ``node`` (or the single statement of a program)."""
    if isinstance(node, nodes.Program):
        return "; ".join(sx(statement) for statement in node.statements)
    match node:
        case nodes.Number(text=text):
            return text
        case nodes.Bool(value=value):
            return "true" if value else "false"
        case nodes.String(value=value):
            return json.dumps(value)
        case nodes.NoneLit():
            return "none"
        case nodes.Name(id=name):
            return name
        case nodes.ListLit(items=items):
            return "[" + " ".join(sx(item) for item in items) + "]"
        case nodes.Unary(op=op, operand=operand):
            return f"({op} {sx(operand)})"
        case nodes.Binary(op=op, left=left, right=right):
            return f"({op} {sx(left)} {sx(right)})"
        case nodes.Keyword(name=name, value=value):
            return f"{name}={sx(value)}"
        case nodes.Call(func=func, args=args, kwargs=kwargs):
            return "(call " + " ".join(sx(part) for part in (func, *args, *kwargs)) + ")"
        case nodes.Attribute(obj=obj, name=name):
            return f"(. {sx(obj)} {name})"
        case nodes.MethodCall(obj=obj, name=name, args=args, kwargs=kwargs):
            parts = " ".join(sx(part) for part in (obj, *args, *kwargs))
            return f"(.{name} {parts})"
        case nodes.Index(obj=obj, items=items):
            return "(index " + " ".join(sx(part) for part in (obj, *items)) + ")"
        case nodes.Slice(start=start, stop=stop, step=step):
            return ":".join("" if part is None else sx(part) for part in (start, stop, step))
        case nodes.Assign(name=name, value=value):
            return f"(= {name} {sx(value)})"
        case nodes.FuncDef(name=name, params=params, body=body):
            return f"(def {name} ({' '.join(params)}) {sx(body)})"
        case nodes.ExprStmt(expr=expr):
            return sx(expr)
        case nodes.Assert(test=test, message=message):
            return f"(assert {sx(test)}" + ("" if message is None else f" {sx(message)}") + ")"
        case nodes.Import(path=path):
            return f"(import {json.dumps(path)})"
    raise AssertionError(f"not an AST node: {node!r}")


def expr_of(source: str) -> nodes.Node:
    """The expression of a one-statement program."""
    (statement,) = parse(source).statements
    assert isinstance(statement, nodes.ExprStmt)
    return statement.expr


def syntax_error(source: str, **options: object) -> AdcliError:
    with pytest.raises(AdcliError) as caught:
        parse(source, "t.ad", **options)
    return caught.value


def where(span: Span) -> tuple[int, int, int, int]:
    return (span.line, span.column, span.end_line, span.end_column)


FIRST_TASTE = """\
# the tutorial's first cell, as a script
seed(0)
n = 10
x = randn(n, requires_grad=true)     # a leaf that records gradients
f(v) = sqrt(sum(v^2, dim=0))         # a function definition
out = f(x)
out                                  # a bare expression displays its value
out.backward(create_graph=true)
x.grad                               # displays x / |x|
out.grad_fn                          # displays the grad_fn chain
assert allclose(x.grad, x / out)
x.grad.zero_()

g(x, y, z) = mean(log(x^2 + y^2) + z*x*y)
a = randn(n, requires_grad=true); b = randn(n, requires_grad=true)
c = randn(n)                         # a parameter: no gradient recorded
g(a, b, c).backward()

u = tensor([[2, 1]], requires_grad=true)
M = tensor([[1, 2], [3, 4]])
y = mm(u, M)                         # also: u @ M
y.backward(tensor([[1, 0]]), retain_graph=true)
assert allclose(u.grad, tensor([[1, 3]]))

x = randn(2, 2, requires_grad=true); y = randn(2, 2, requires_grad=true)
o = x^2 + x*y + y^2
o.backward(ones(2, 2), create_graph=true)
x_grad = x.grad                      # 2x + y, itself differentiable
assert allclose(x_grad, 2*x + y)
x.grad.data.zero_()                  # same storage as x_grad, as in PyTorch
x_grad.backward(ones(2, 2))
assert allclose(x.grad, full([2, 2], 2))
assert allclose(grad(o, x, order=2), full([2, 2], 2))   # the clean way
"""


# ------------------------------------------------------------------ lexical


@pytest.mark.parametrize(
    ("source", "value", "kind"),
    [("3", 3, int), ("2.5", 2.5, float), (".5", 0.5, float), ("1e-3", 0.001, float),
     ("1E+3", 1000.0, float), ("10.", 10.0, float), ("007", 7, int)],
)  # fmt: skip
def test_numbers(source: str, value: float, kind: type) -> None:
    number = expr_of(source)
    assert isinstance(number, nodes.Number)
    assert number.value == value and type(number.value) is kind
    assert number.text == source


def test_booleans_none_and_names() -> None:
    assert sx(parse("true; false; none")) == "true; false; none"
    # keywords are whole words only
    assert sx(parse("trueish; _x1; false_; none2; assert_; imports")) == (
        "trueish; _x1; false_; none2; assert_; imports"
    )


@pytest.mark.parametrize(
    ("source", "value"),
    [(r'"plain"', "plain"), (r'"say \"hi\""', 'say "hi"'), (r'"back\\slash"', "back\\slash"),
     (r'"tab\tnew\nline"', "tab\tnew\nline"), (r'"C:\data"', "C:\\data"), ('""', ""),
     ('"# not a comment"', "# not a comment"), ('"ünï"', "ünï")],
)  # fmt: skip
def test_strings(source: str, value: str) -> None:
    string = expr_of(source)
    assert isinstance(string, nodes.String) and string.value == value


def test_comments_separators_and_blank_lines() -> None:
    source = "# header\n\n;x = 1 # trailing\n;; y = 2;\n\n# end"
    assert sx(parse(source)) == "(= x 1); (= y 2)"
    assert parse("").statements == ()
    assert parse("\n ; \n# only a comment\n").statements == ()


def test_newlines_inside_brackets_do_not_end_statements() -> None:
    source = "y = f(\n  1,   # first\n  2\n)\nz = [[1, 2],\n     [3, 4]]\nw = a[\n0]"
    assert sx(parse(source)) == "(= y (call f 1 2)); (= z [[1 2] [3 4]]); (= w (index a 0))"


def test_windows_line_endings_and_byte_order_mark() -> None:
    program = parse("\ufeffx = 1\r\ny = 2\r\n")
    assert sx(program) == "(= x 1); (= y 2)"
    assert where(program.statements[1].span) == (2, 1, 2, 6)


# -------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a + b - c", "(- (+ a b) c)"),
        ("a * b / c @ d", "(@ (/ (* a b) c) d)"),
        ("a + b * c", "(+ a (* b c))"),
        ("a * b + c", "(+ (* a b) c)"),
        ("-a", "(- a)"),
        ("+a", "(+ a)"),
        ("--a", "(- (- a))"),
        ("-a * b", "(* (- a) b)"),
        ("a * -b", "(* a (- b))"),
        ("a - -b", "(- a (- b))"),
        ("a ^ b", "(^ a b)"),
        ("a ** b", "(^ a b)"),
        ("a ^ b ^ c", "(^ a (^ b c))"),
        ("a ** b ^ c", "(^ a (^ b c))"),
        ("-x^2", "(- (^ x 2))"),
        ("2^-1", "(^ 2 (- 1))"),
        ("2^-x^2", "(^ 2 (- (^ x 2)))"),
        ("a * b ^ c", "(* a (^ b c))"),
        ("(a + b) * c", "(* (+ a b) c)"),
        ("((a))", "a"),
        ("x.grad ^ 2", "(^ (. x grad) 2)"),
        ("-x.T", "(- (. x T))"),
        ("f(x)^2", "(^ (call f x) 2)"),
        ("a[0]^2", "(^ (index a 0) 2)"),
        # comparisons (extension): loosest of all
        ("a + 1 == b * 2", "(== (+ a 1) (* b 2))"),
        ("a != b", "(!= a b)"),
        ("a < b", "(< a b)"),
        ("a <= b", "(<= a b)"),
        ("a > b", "(> a b)"),
        ("a >= b", "(>= a b)"),
        ("(a < b) == c", "(== (< a b) c)"),
    ],
)
def test_precedence_and_associativity(source: str, expected: str) -> None:
    assert sx(expr_of(source)) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("f()", "(call f)"),
        ("f(x)", "(call f x)"),
        ("f(x, y + 1)", "(call f x (+ y 1))"),
        ("randn(n, requires_grad=true)", "(call randn n requires_grad=true)"),
        ("sum(v^2, dim=0, keepdim=false)", "(call sum (^ v 2) dim=0 keepdim=false)"),
        ("f(x,)", "(call f x)"),
        ("f(x, k=1,)", "(call f x k=1)"),
        ("f(k=a == b)", "(call f k=(== a b))"),
        ("f(x)(y)", "(call (call f x) y)"),
        ("x.grad", "(. x grad)"),
        ("out.grad_fn", "(. out grad_fn)"),
        ("x.grad.data", "(. (. x grad) data)"),
        ("x.backward()", "(.backward x)"),
        ("x.grad.zero_()", "(.zero_ (. x grad))"),
        ("y.backward(g, retain_graph=true)", "(.backward y g retain_graph=true)"),
        ('x.to("cuda")', '(.to x "cuda")'),
        ("f(x).backward()", "(.backward (call f x))"),
        ("a[i]", "(index a i)"),
        ("a[i, j]", "(index a i j)"),
        ("a[-1]", "(index a (- 1))"),
        ("a[1:3]", "(index a 1:3:)"),
        ("a[:, 0]", "(index a :: 0)"),
        ("a[::2]", "(index a ::2)"),
        ("a[1:]", "(index a 1::)"),
        ("a[:2]", "(index a :2:)"),
        ("a[1:-1:2]", "(index a 1:(- 1):2)"),
        ("a[:2:]", "(index a :2:)"),
        ("a[i][j]", "(index (index a i) j)"),
        ("a.b[0].c(1)", "(.c (index (. a b) 0) 1)"),
    ],
)
def test_postfix_forms(source: str, expected: str) -> None:
    assert sx(expr_of(source)) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("3", "3"),
        ("true", "true"),
        ('"s"', '"s"'),
        ("name", "name"),
        ("(e)", "e"),
        ("[]", "[]"),
        ("[1, 2, 3]", "[1 2 3]"),
        ("[[1, 2], [3, 4]]", "[[1 2] [3 4]]"),
        ("[[-1, +2.5], [.5, -1e-3]]", "[[(- 1) (+ 2.5)] [.5 (- 1e-3)]]"),
        ("[1, 2,]", "[1 2]"),
        ("[x + 1, f(y)]", "[(+ x 1) (call f y)]"),
    ],
)
def test_atoms(source: str, expected: str) -> None:
    assert sx(expr_of(source)) == expected


# ---------------------------------------------------------------- statements


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1", "(= x 1)"),
        ("x = x + 1", "(= x (+ x 1))"),
        ("(x) = 1", "(= x 1)"),
        ("f(v) = sqrt(sum(v^2, dim=0))", "(def f (v) (call sqrt (call sum (^ v 2) dim=0)))"),
        ("g(x, y, z) = x*y", "(def g (x y z) (* x y))"),
        ("c() = 3", "(def c () 3)"),
        ("f(x)", "(call f x)"),
        ("x == 1", "(== x 1)"),
        ("assert x", "(assert x)"),
        (
            'assert allclose(a, b), "a and b differ"',
            '(assert (call allclose a b) "a and b differ")',
        ),
        ('import "lib/helpers.ad"', '(import "lib/helpers.ad")'),
    ],
)
def test_statements(source: str, expected: str) -> None:
    assert sx(parse(source)) == expected


def test_statement_node_types() -> None:
    program = parse('x = 1\nf(a, b) = a\nx\nassert x, "m"\nimport "p.ad"')
    kinds = [type(statement) for statement in program.statements]
    assert kinds == [nodes.Assign, nodes.FuncDef, nodes.ExprStmt, nodes.Assert, nodes.Import]
    definition = program.statements[1]
    assert definition.params == ("a", "b")
    assert [where(span) for span in definition.param_spans] == [(2, 3, 2, 4), (2, 6, 2, 7)]
    assert where(definition.name_span) == (2, 1, 2, 2)


def test_first_taste_script_parses() -> None:
    program = parse(FIRST_TASTE, "taste.ad")
    assert len(program.statements) == 31
    assert sx(program.statements[3]) == "(def f (v) (call sqrt (call sum (^ v 2) dim=0)))"
    assert sx(program.statements[-1]) == (
        "(assert (call allclose (call grad o x order=2) (call full [2 2] 2)))"
    )
    assert all(isinstance(node, nodes.Node) for node in nodes.walk(program))


# --------------------------------------------------------------------- spans


def test_spans_point_at_the_source() -> None:
    call = expr_of("  f(x, k=1) ")
    assert isinstance(call, nodes.Call)
    assert where(call.span) == (1, 3, 1, 12)
    assert where(call.func.span) == (1, 3, 1, 4)
    assert where(call.args[0].span) == (1, 5, 1, 6)
    keyword = call.kwargs[0]
    assert where(keyword.span) == (1, 8, 1, 11) and where(keyword.name_span) == (1, 8, 1, 9)

    attribute = expr_of("out.grad_fn")
    assert isinstance(attribute, nodes.Attribute)
    assert where(attribute.span) == (1, 1, 1, 12) and where(attribute.name_span) == (1, 5, 1, 12)

    method = expr_of("x.grad.zero_()")
    assert isinstance(method, nodes.MethodCall)
    assert where(method.span) == (1, 1, 1, 15) and where(method.name_span) == (1, 8, 1, 13)

    product = expr_of("a @ b")
    assert where(product.op_span) == (1, 3, 1, 4)
    power = expr_of("a ** b")
    assert power.op == "^" and where(power.op_span) == (1, 3, 1, 5)


def test_parentheses_widen_the_parent_not_the_node() -> None:
    product = expr_of("(a + b) * c")
    assert where(product.span) == (1, 1, 1, 12)
    assert where(product.left.span) == (1, 2, 1, 7)
    name = expr_of("(x)")
    assert where(name.span) == (1, 2, 1, 3)
    statement = parse("(x)").statements[0]
    assert where(statement.span) == (1, 1, 1, 4)


def test_multiline_spans_and_filename() -> None:
    program = parse("a = 1\nb = f(\n  a,\n  2)\n", "script.ad")
    assign = program.statements[1]
    assert assign.span == Span("script.ad", 2, 1, 4, 5)
    assert where(assign.value.args[1].span) == (4, 3, 4, 4)
    assert where(program.span) == (1, 1, 5, 1)


def test_assignment_spans() -> None:
    (assign,) = parse("total = a + b").statements
    assert where(assign.span) == (1, 1, 1, 14) and where(assign.name_span) == (1, 1, 1, 6)
    (statement,) = parse('assert x, "m"').statements
    assert where(statement.span) == (1, 1, 1, 14)
    (statement,) = parse('import "p.ad"').statements
    assert where(statement.span) == (1, 1, 1, 14) and where(statement.path_span) == (1, 8, 1, 14)


# -------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("source", "message", "line", "column"),
    [
        ("1 +", "expected an expression after '+'", 1, 4),
        ("x = 1 +   # comment\ny = 2", "expected an expression after '+'", 1, 8),
        ("x = ", "expected an expression after '='", 1, 4),
        ("x = * 3", "expected an expression after '=', found '*'", 1, 5),
        ("(1 + )", "expected an expression after '+', found ')'", 1, 6),
        ("()", "expected an expression after '(', found ')'", 1, 2),
        ("f(,)", "expected an expression after '(', found ','", 1, 3),
        ("assert", "expected an expression after 'assert'", 1, 7),
        ("x = 1\n* 2", "unexpected '*'", 2, 1),
        ("f(1 +", "'(' was never closed", 1, 2),
        ("x = [1,\n 2,\n", "'[' was never closed", 1, 5),
        ("f(g(1)", "'(' was never closed", 1, 2),
        (")", "unexpected ')'", 1, 1),
        ("x = 1\n  ]", "unexpected ']'", 2, 3),
        ("(1]", "closing ']' does not match '(' opened at line 1, column 1", 1, 3),
        ('x = "abc', "unterminated string", 1, 5),
        ('print("abc)', "unterminated string", 1, 7),
        ("x = $", "invalid character '$'", 1, 5),
        ("x = 'a'", 'invalid character "\'"', 1, 5),
        ("é = 1", "invalid character 'é'", 1, 1),
        ("x = 1 \x00", "invalid character U+0000", 1, 7),
        ("1 2", "unexpected '2'", 1, 3),
        ("f(x y)", "unexpected 'y'", 1, 5),
        ('print "hi"', 'unexpected string "hi"', 1, 7),
        ("x = y = 2", "unexpected '='", 1, 7),
        ("a == b == c", "comparisons cannot be chained", 1, 8),
        ("x.", "expected an attribute name after '.'", 1, 3),
        ("x.1", "unexpected '.1'", 1, 2),
        ("import x", "expected a file name in double quotes after 'import', found 'x'", 1, 8),
        ("assert x, 3", "expected a message in double quotes after ',', found '3'", 1, 11),
        ("f(1) = 2", "cannot assign to a call with non-name arguments", 1, 3),
        ("f(x, y + 1) = 2", "cannot assign to a call with non-name arguments", 1, 6),
        ("f(x, k=1) = 2", "cannot assign to a call with keyword arguments", 1, 6),
        ("f(x, x) = 1", "duplicate parameter 'x'", 1, 6),
        ("a.b(x) = 1", "cannot assign to a method call", 1, 1),
        ("a.b() = 1", "cannot assign to a method call", 1, 1),
        ("(a + 1) = 1", "cannot assign to an expression", 1, 1),
        ("3 = x", "cannot assign to a number", 1, 1),
        ("true = x", "cannot assign to true", 1, 1),
        ("a + b = 1", "cannot assign to an expression", 1, 1),
        ("f(a=1, 2)", "positional argument after keyword argument", 1, 8),
        ("f(a=1, a=2)", "keyword argument 'a' given twice", 1, 8),
        # the first error in the source wins, lexical or not
        ("1 +\n$", "expected an expression after '+'", 1, 4),
        ("x = (1 2\n$", "unexpected '2'", 1, 8),
    ],
)
def test_syntax_errors_in_words(source: str, message: str, line: int, column: int) -> None:
    error = syntax_error(source)
    assert error.kind == "syntax"
    assert error.message == message
    assert error.span is not None and error.span.file == "t.ad"
    assert (error.span.line, error.span.column) == (line, column)
    assert "Expected one of" not in error.message and "Token" not in error.message


def test_unterminated_string_span_runs_to_end_of_line() -> None:
    error = syntax_error('x = "abc\r\ny')
    assert where(error.span) == (1, 5, 1, 9)


def test_error_hints() -> None:
    assert "operator" in syntax_error("1 2").hint
    assert "double quotes" in syntax_error("x = 'a'").hint
    assert "parentheses" in syntax_error("a < b < c").hint
    assert "==" in syntax_error("x = y = 2").hint


# -------------------------------------------------------------------- limits


def test_deep_nesting_is_refused_cleanly() -> None:
    error = syntax_error("(" * 5000 + "1" + ")" * 5000)
    assert error.kind == "limit"
    assert error.message == "expression nested too deeply (limit 200)"
    assert where(error.span) == (1, 201, 1, 202)
    error = syntax_error("x = " + "[" * 5000 + "1" + "]" * 5000)
    assert error.kind == "limit"


def test_nesting_limit_is_configurable() -> None:
    assert sx(parse("(" * 200 + "1" + ")" * 200)) == "1"
    assert syntax_error("(" * 11 + "1" + ")" * 11, max_depth=10).kind == "limit"
    # Beyond the default, the parser itself copes: it never recurses.
    deep = "[" * 5000 + "1" + "]" * 5000
    literal = expr_of_program(parse(deep, max_depth=6000))
    depth = 0
    while isinstance(literal, nodes.ListLit):
        (literal,) = literal.items
        depth += 1
    assert depth == 5000


def expr_of_program(program: nodes.Program) -> nodes.Node:
    (statement,) = program.statements
    return statement.expr


def test_source_size_limit() -> None:
    error = syntax_error("x = 1\n" * 10, max_source_bytes=50)
    assert error.kind == "limit" and "source too large" in error.message
    assert len(parse("x = 1\n" * 10, max_source_bytes=60).statements) == 10


def test_number_with_too_many_digits_is_an_error() -> None:
    assert syntax_error("x = " + "9" * 5000).kind == "limit"


def test_long_chain_parses_left_deep() -> None:
    # 100,000 terms took about 0.7 s on the development machine (not timed here).
    started = time.perf_counter()
    program = parse("+".join(["1"] * 100_000))
    elapsed = time.perf_counter() - started
    node = expr_of_program(program)
    count = 0
    while isinstance(node, nodes.Binary):  # left-deep: walk down the left spine
        assert node.op == "+" and isinstance(node.right, nodes.Number)
        node = node.left
        count += 1
    assert count == 99_999 and isinstance(node, nodes.Number)
    assert elapsed < 30  # generous: only catches quadratic behaviour
    # the program, its statement, 100,000 numbers and 99,999 sums
    assert sum(1 for _ in nodes.walk(program)) == 200_001


@pytest.mark.parametrize(
    "source",
    [
        "-" * 100_000 + "1",
        "2^" * 100_000 + "1",
        "x" + ".a" * 100_000,
        "f" + "(1)" * 100_000,
        "a" + "[0]" * 100_000,
        "x = 1\n" * 100_000,
    ],
    ids=["unary", "power", "attributes", "calls", "indexes", "statements"],
)
def test_long_inputs_never_recurse(source: str) -> None:
    assert isinstance(parse(source), nodes.Program)


# --------------------------------------------------------------- is_complete


@pytest.mark.parametrize(
    ("source", "complete"),
    [
        ("", True),
        ("1 + 1", True),
        ("1 +", True),  # a syntax error, not a continuation
        ("x = ", True),
        ("f(1,", False),
        ("f(1,\n  2", False),
        ("x = [[1, 2],", False),
        ("x = [[1, 2],\n [3, 4]]", True),
        ("f(1, 2))", True),
        ("(1]", True),
        ("f(1 2", True),  # already wrong: show the error now
        ('f("abc', True),
        ("f(x) = (", False),
        ("f( # comment", False),
        ('print("(")', True),
        ("x # (", True),
    ],
)
def test_is_complete(source: str, complete: bool) -> None:
    assert is_complete(source) is complete


# ------------------------------------------------------------------- grammar


def test_grammar_has_no_conflicts() -> None:
    # build_lark() is strict: a shift/reduce or reduce/reduce conflict raises.
    assert parser_module.build_lark() is not None
    from lark.exceptions import GrammarError

    with pytest.raises(GrammarError):
        parser_module.build_lark('start: a | b\na: "x"\nb: "x"\n')


def test_tables_are_cached_and_reused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(parser_module, "_tables", None)
    monkeypatch.setattr(parser_module, "_made_tables", lambda: None)  # as if the grammar changed
    first = sx(parse("a + b * c"))
    (cache_file,) = (tmp_path / "adcli").glob("grammar-*.json")
    monkeypatch.setattr(parser_module, "_tables", None)
    monkeypatch.setattr(parser_module, "_compile_grammar", None)  # must not be needed
    assert sx(parse("a + b * c")) == first
    # a stale or damaged cache is rebuilt
    cache_file.write_text("{not json")
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(parser_module, "_tables", None)
    monkeypatch.setattr(parser_module, "_made_tables", lambda: None)
    assert sx(parse("a + b * c")) == first
    assert json.loads(cache_file.read_text())["format"] == parser_module._Tables.FORMAT


def test_ast_holds_only_nodes_and_plain_values() -> None:
    program = parse(FIRST_TASTE + '\na[1:2, :, ::3]; (x); -y; [1, [2]]; none; "s"')
    for node in nodes.walk(program):
        assert isinstance(node, nodes.Node)
        assert isinstance(node.span, Span)
        for name in node.__slots__:
            value = getattr(node, name)
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                assert isinstance(item, (nodes.Node, Span, str, int, float, bool, type(None)))


def test_nodes_are_frozen_and_hashable() -> None:
    node = expr_of("a + 1")
    with pytest.raises(AttributeError):
        node.op = "-"  # type: ignore[misc]
    assert hash(node) == hash(expr_of("a + 1"))
    assert node == expr_of("a + 1") and node != expr_of("a + 2")


def test_parse_time_of_a_long_script() -> None:
    # A 10,000-line script (the first taste, repeated) took about 0.35 s on the
    # development machine; only a gross slowdown fails here.
    lines = (FIRST_TASTE * 400).splitlines()[:10_000]
    started = time.perf_counter()
    program = parse("\n".join(lines))
    elapsed = time.perf_counter() - started
    assert len(program.statements) > 9000
    assert elapsed < 10


# ---------------------------------------------------------------- robustness


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_any_text_parses_or_raises_adcli_error(source: str) -> None:
    try:
        assert isinstance(parse(source), nodes.Program)
    except AdcliError as error:
        assert error.kind in ("syntax", "limit") and error.span is not None
    assert isinstance(is_complete(source), bool)


_PIECES = [
    "x", "f", "1", "2.5", ".5", "1e-3", "true", "none", '"s"', "+", "-", "*", "/", "@", "^",
    "**", "==", "<", "=", "(", ")", "[", "]", ",", ":", ".", ";", "\n", " ", "#c\n", "assert",
    "import", "$", '"', "'",
]  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30))
def test_token_soup_parses_or_raises_adcli_error(pieces: list[str]) -> None:
    source = "".join(pieces)
    try:
        program = parse(source)
    except AdcliError as error:
        span = error.span
        assert error.kind in ("syntax", "limit") and span is not None
        assert 1 <= span.line <= source.count("\n") + 1 and span.column >= 1
        assert "$END" not in error.message and "_NEWLINE" not in error.message
    else:
        for node in nodes.walk(program):
            assert isinstance(node, nodes.Node)


def test_packed_spans_become_spans_when_read() -> None:
    """The parser keeps a node's spans as offsets; reading one gives the Span
    (and the same one again), as a node built with Spans holds them."""
    lines = nodes.Lines("t.ad", "ab\ncd = 1\n")
    assert lines.span(nodes.packed(3, 5)) == Span("t.ad", 2, 1, 2, 3)
    assert lines.span(nodes.packed(2, 3)) == Span("t.ad", 1, 3, 1, 4)  # a newline
    assert lines.span(nodes.packed(0, 8)) == Span("t.ad", 1, 1, 2, 6)  # across lines
    assert lines.span(nodes.packed(10, 10)) == Span("t.ad", 3, 1, 3, 1)  # the end
    program = parse("y = (1 +\n  2) * x\n", "t.ad")
    (assign,) = program.statements
    assert assign.span == Span("t.ad", 1, 1, 2, 9)
    assert assign.span is assign.span
    assert assign.value.op_span == Span("t.ad", 2, 6, 2, 7)
    given_span = Span("t.ad", 1, 1, 1, 2)
    built = nodes.Name("x", given_span)
    assert built.span is given_span
    assert built == nodes.MAKERS[nodes.Name](lines, "x", nodes.packed(0, 1)).__class__(
        "x", given_span
    )
