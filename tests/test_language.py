"""The .ad language, row by row of spec/language.md, run through Session.run.

Every expected value is a closed form or worked by hand (d/dx x^4 = 4x^3, the
mean of [1, 2, 3, 4] is 2.5, ...), never the implementation compared with
itself. Errors have their own file (test_language_errors.py); the static
checker too (test_check.py).
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from adcli.backend import cuda_available
from adcli.cli.render import value_renderable
from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError
from adcli.lang.interpreter import Output, Session

PROGRAMS = Path(__file__).parent / "programs"
SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "language.md"


# ----------------------------------------------------------------------------------- helpers
def run(source: str, **session_options) -> tuple[object, list[Output]]:
    """The value of the last statement and every Output the program emitted."""
    outputs: list[Output] = []
    value = Session(**session_options).run(source, "<test>", outputs.append)
    return value, outputs


def ev(source: str, **session_options):
    """The value of the last statement."""
    return run(source, **session_options)[0]


def arr(value) -> np.ndarray:
    """A tensor's numbers (or a plain number) as a float64 array."""
    if isinstance(value, Tensor):
        return np.asarray(value.numpy(), dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def close(value, expected, tol=1e-5) -> None:
    got = arr(value)
    want = np.asarray(expected, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def error_of(source: str, **session_options) -> AdcliError:
    with pytest.raises(AdcliError) as info:
        Session(**session_options).run(source, "<test>", lambda output: None)
    return info.value


class Recorder:
    """An emit that snapshots tensors as they are shown (later in-place ops do not leak in)."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.snapshots: list[object] = []

    def __call__(self, output: Output) -> None:
        self.outputs.append(output)
        v = output.value
        self.snapshots.append(v.numpy().copy() if isinstance(v, Tensor) else v)

    def kinds(self) -> list[str]:
        return [o.kind for o in self.outputs]


# ----------------------------------------------------------------------------------- lexical
class TestLexical:
    def test_comments_run_to_the_end_of_the_line(self):
        assert ev("1 + 2 # + 100\n# a whole line\n") == 3

    def test_a_comment_only_program_has_no_value_and_shows_nothing(self):
        value, outputs = run("# nothing here\n   # nor here")
        assert value is None and outputs == []

    def test_statements_end_at_a_newline_or_a_semicolon(self):
        assert ev("a = 2; b = 3\nc = a * b; c") == 6

    def test_empty_statements_are_allowed(self):
        assert ev(";;\n\n;  a = 4;;\n\na;") == 4

    def test_a_newline_inside_parentheses_does_not_end_a_statement(self):
        assert ev("x = (1 +\n 2 +\n 3)\nx") == 6
        assert ev("max_ = sum(tensor([1, 2]),\n          dim=0)\nmax_.item()") == 3

    def test_a_newline_inside_brackets_does_not_end_a_statement(self):
        close(ev("[[1, 2],\n [3, 4]]"), [[1, 2], [3, 4]])

    @pytest.mark.parametrize("name", ["x", "_", "_private", "Name_2", "a1b2c3", "ALLCAPS"])
    def test_names(self, name):
        assert ev(f"{name} = 7; {name}") == 7

    @pytest.mark.parametrize(
        ("text", "value", "kind"),
        [
            ("3", 3, int),
            ("2.5", 2.5, float),
            (".5", 0.5, float),
            ("1e-3", 0.001, float),
            ("1E3", 1000.0, float),
            ("2.", 2.0, float),
            ("0", 0, int),
        ],
    )
    def test_numbers(self, text, value, kind):
        got = ev(text)
        assert type(got) is kind and got == value

    def test_booleans(self):
        assert ev("true") is True
        assert ev("false") is False

    def test_strings_with_escaped_quote_and_backslash(self):
        assert ev(r'"plain"') == "plain"
        assert ev(r'"say \"hi\""') == 'say "hi"'
        assert ev(r'"back\\slash"') == "back\\slash"
        assert ev(r'"\\\""') == '\\"'

    def test_a_hash_inside_a_string_is_not_a_comment(self):
        assert ev('"a # b"') == "a # b"


# ------------------------------------------------------------------------------- expressions
class TestExpressions:
    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("1 + 2 * 3", 7),
            ("(1 + 2) * 3", 9),
            ("10 - 4 - 3", 3),  # left-associative
            ("2 * 3 - 4 / 2", 4.0),
            ("24 / 4 / 3", 2.0),  # left-associative
            ("-2 * 3", -6),
            ("-2^2", -4),  # -(2^2)
            ("-(2)^2", -4),
            ("(-2)^2", 4),
            ("2^3^2", 512),  # 2^(3^2), right-associative
            ("(2^3)^2", 64),
            ("2**3**2", 512),
            ("2 ** 10", 1024),
            ("2^-1", 0.5),
            ("2 * 3^2", 18),
            ("+3", 3),
            ("- -3", 3),
            ("1 + -2", -1),
            ("2^2 * 3", 12),
            ("3 + 4 * 2 ^ 2 - 1", 18),
        ],
    )
    def test_precedence_and_associativity_on_numbers(self, source, expected):
        assert ev(source) == expected

    def test_unary_minus_is_looser_than_power_on_tensors(self):
        close(ev("x = tensor([2., 3.]); -x^2"), [-4, -9])
        close(ev("x = tensor([2., 3.]); (-x)^2"), [4, 9])

    def test_power_of_tensors_is_right_associative(self):
        close(ev("tensor([2.]) ^ tensor([3.]) ^ tensor([2.])"), [512])
        close(ev("tensor([2.]) ** 3 ** 2"), [512])

    def test_matrix_product_operator(self):
        close(ev("tensor([[1, 2], [3, 4]]) @ tensor([[5], [6]])"), [[17], [39]])
        # @ groups with * and /, left to right: (A @ B) * 2
        close(ev("tensor([[1, 2]]) @ tensor([[1], [1]]) * 2"), [[6]])

    def test_vector_at_vector_is_a_dot_product(self):
        close(ev("tensor([1., 2.]) @ tensor([3., 4.])"), 11)

    def test_broadcasting_addition_as_numpy(self):
        close(ev("ones(2, 3) + tensor([10., 20., 30.])"), [[11, 21, 31], [11, 21, 31]])
        close(ev("tensor([[1.], [2.]]) + tensor([10., 20.])"), [[11, 21], [12, 22]])
        close(ev("tensor([1., 2.]) - 1"), [0, 1])
        close(ev("2 * tensor([1., 2.])"), [2, 4])
        close(ev("1 / tensor([2., 4.])"), [0.5, 0.25])

    def test_calls_take_positional_then_keyword_arguments(self):
        close(ev("sum(tensor([[1, 2], [3, 4]]), dim=1, keepdim=true)"), [[3], [7]])
        close(ev("sum(tensor([[1, 2], [3, 4]]), 0)"), [4, 6])

    def test_user_functions_take_keyword_arguments_too(self):
        assert ev("f(a, b) = a - b; f(10, b=3)") == 7
        assert ev("f(a, b) = a - b; f(b=3, a=10)") == 7

    def test_attributes(self):
        assert ev("ones(2, 3).shape") == (2, 3)
        assert ev("ones(2).requires_grad") is False

    def test_methods(self):
        assert ev("tensor([1., 2., 3.]).sum().item()") == 6
        assert ev("tensor([[1., 2.], [3., 4.]]).mean(dim=0).sum().item()") == 5

    def test_indexing_one_and_two_indices(self):
        m = "m = tensor([[1, 2, 3], [4, 5, 6]]); "
        close(ev(m + "m[1]"), [4, 5, 6])
        close(ev(m + "m[1, 2]"), 6)
        close(ev(m + "m[0][1]"), 2)
        close(ev(m + "m[-1, -1]"), 6)
        close(ev(m + "m[1, 0:2]"), [4, 5])

    @pytest.mark.parametrize(
        ("subscript", "expected"),
        [
            ("1:3", [1, 2]),
            (":2", [0, 1]),
            ("4:", [4, 5]),
            (":", [0, 1, 2, 3, 4, 5]),
            ("::2", [0, 2, 4]),
            ("1:6:2", [1, 3, 5]),
            ("-2:", [4, 5]),
        ],
    )
    def test_slicing(self, subscript, expected):
        close(ev(f"a = arange(6); a[{subscript}]"), expected)

    def test_an_index_may_be_an_expression(self):
        close(ev("a = arange(6); i = 2; a[i + 1]"), 3)

    def test_a_shape_can_be_indexed(self):
        assert ev("shape(ones(2, 5))[1]") == 5

    def test_slicing_is_differentiable(self):
        source = "x = tensor([1., 2., 3., 4.], requires_grad=true)\nsum(x[1:3]).backward()\nx.grad"
        close(ev(source), [0, 1, 1, 0])

    def test_indexing_is_differentiable(self):
        source = (
            "x = tensor([[1., 2.], [3., 4.]], requires_grad=true)\n(5 * x[1, 0]).backward()\nx.grad"
        )
        close(ev(source), [[0, 0], [5, 0]])
        source = "x = tensor([1., 2., 3.], requires_grad=true)\n(x[0] * x[2]).backward()\nx.grad"
        close(ev(source), [3, 0, 1])

    def test_parenthesised_expressions(self):
        assert ev("((((7))))") == 7

    def test_bracket_literals_are_constant_tensors(self):
        t = ev("[[1, 2], [3, 4]]")
        assert isinstance(t, Tensor)
        assert t.shape == (2, 2) and t.dtype == "float32" and not t.requires_grad
        close(t, [[1, 2], [3, 4]])

    def test_bracket_literals_hold_signed_numbers(self):
        close(ev("[-1, +2, -3.5, .5, -1e-3]"), [-1, 2, -3.5, 0.5, -0.001])
        close(ev("tensor([[-1, 2], [3, -4]])"), [[-1, 2], [3, -4]])

    def test_bracket_literals_hold_expressions_of_numbers(self):
        close(ev("a = 2; [a, a * 3, 2^3]"), [2, 6, 8])

    def test_comparisons_are_an_extension(self):
        assert ev("1 < 2") is True
        close(ev("tensor([1., 5.]) > 2"), [0, 1])


# -------------------------------------------------------------------------------- statements
class TestStatements:
    def test_bind_and_rebind(self):
        assert ev("x = 1\nx = x + 10\nx = x * 2\nx") == 22

    def test_rebinding_may_change_the_kind_of_value(self):
        close(ev('x = "text"\nx = tensor([1.])\nx'), [1])

    def test_a_function_definition(self):
        assert ev("sq(v) = v * v\nsq(7)") == 49
        close(ev("f(x, y) = x^2 + y\nf(tensor([1., 2.]), 1)"), [2, 5])

    def test_parameters_are_local(self):
        # The parameter x shadows the global x, and the global is left alone.
        close(ev("x = 100\nf(x) = x + 1\n[f(1), x]"), [2, 100])

    def test_a_function_sees_the_functions_defined_before_it(self):
        assert ev("f(a, b) = a * b\ng(a) = f(a, a) + 1\ng(3)") == 10

    def test_a_function_keeps_the_functions_it_saw_when_defined(self):
        # Redefining f later does not change what g calls.
        close(ev("f(a) = a + 1\ng(a) = f(a)\nf(a) = a + 100\n[g(1), f(1)]"), [2, 101])

    def test_a_function_reads_the_sessions_variables_at_call_time(self):
        # (v2) As a Python lambda reads its globals: the value when called, not when defined.
        assert ev("a = 3\nf(x) = x * a\na = 4\nf(1)") == 4
        assert ev("f(x) = x * a\na = 5\nf(3)") == 15
        err = error_of("f(x) = x * b\nf(3)")
        assert err.kind == "name" and err.message.startswith("unknown name 'b'")
        assert (err.span.line, err.span.column) == (1, 12)

    def test_builtins_taking_a_function_see_the_variables_it_reads(self):
        # d/dx (a x^2) = 2 a x, with a read from the session when jacobian calls f.
        src = 'a = 3\nf(x) = a * x^2\njacobian(f, tensor([1.0, 2.0], dtype="float64"))'
        close(ev(src), [[6.0, 0.0], [0.0, 12.0]], tol=1e-12)

    def test_a_parameter_shadows_a_session_variable(self):
        assert ev("x = 100\nf(x) = x + 1\nf(2)") == 3

    def test_a_function_does_not_see_functions_defined_after_it(self):
        err = error_of("f(v) = g(v)\ng(v) = v")
        assert err.kind == "name" and "unknown name 'g'" in err.message
        assert (err.span.line, err.span.column) == (1, 8)

    def test_no_recursion(self):
        err = error_of("f(x) = x + f(x - 1)")
        assert err.kind == "name"
        assert err.message == "'f' cannot call itself: recursion is not allowed"
        assert (err.span.line, err.span.column) == (1, 12)

    def test_a_bare_expression_is_displayed(self):
        value, outputs = run("x = 3\nx * 2\n")
        assert value == 6
        assert [(o.kind, o.value, o.span.line) for o in outputs] == [("value", 6, 2)]

    def test_a_bare_none_value_that_is_not_a_call_is_displayed(self):
        # .grad of a fresh leaf is none: a value, shown as such.
        _, outputs = run("x = ones(2, requires_grad=true)\nx.grad")
        assert [(o.kind, o.value) for o in outputs] == [("value", None)]

    def test_assignments_and_definitions_display_nothing(self):
        value, outputs = run("x = 3\nf(v) = v")
        assert value is None and outputs == []

    @pytest.mark.parametrize(
        "call",
        [
            "backward(sum(x^2))",
            "sum(x^2).backward()",
            "seed(3)",
            "zero_grad(x)",
        ],
    )
    def test_a_call_that_returns_nothing_is_not_displayed(self, call):
        value, outputs = run(f"x = tensor([1., 2.], requires_grad=true)\n{call}")
        assert value is None and outputs == []

    def test_print_shows_its_text_but_no_value(self):
        value, outputs = run('print("hi", 1)')
        assert value is None
        assert [(o.kind, o.text) for o in outputs] == [("print", "hi 1")]

    def test_assert_that_holds_does_nothing(self):
        value, outputs = run('assert 1 < 2\nassert tensor([1, 1]) == 1\nassert true, "fine"')
        assert value is None and outputs == []

    def test_a_failed_assert_without_a_message_quotes_the_expression(self):
        err = error_of("x = 1\n\nassert x == 2")
        assert err.kind == "assert"
        assert err.message == "assertion failed: x == 2"
        assert (err.span.line, err.span.column) == (3, 1)

    def test_a_failed_assert_with_a_message(self):
        err = error_of('x = 1\nassert x > 5, "x is too small"')
        assert err.kind == "assert" and err.message == "x is too small"
        assert err.span.line == 2

    def test_assert_fails_when_any_element_is_false(self):
        err = error_of("assert tensor([1., 2., 3.]) < 3")
        assert err.kind == "assert"
        assert ev("assert tensor([1., 2., 3.]) < 4\n1") == 1

    def test_assert_on_allclose(self):
        assert error_of("assert allclose(tensor([1.]), tensor([2.]))").kind == "assert"

    def test_a_failed_assert_stops_the_script(self):
        session = Session()
        with pytest.raises(AdcliError):
            session.run("a = 1\nassert false\na = 2", "<test>")
        assert session.lookup("a") == 1


class TestImport:
    def test_import_runs_a_script_relative_to_the_importing_file(self, tmp_path):
        (tmp_path / "lib").mkdir()
        (tmp_path / "lib" / "helpers.ad").write_text('k = 5\nsq(v) = v^2\nprint("lib ran")\n')
        (tmp_path / "lib" / "outer.ad").write_text('import "helpers.ad"\nouter = sq(k)\n')
        main = tmp_path / "main.ad"
        main.write_text('import "lib/outer.ad"\nouter + 1\n')
        outputs = []
        assert Session().run_file(main, outputs.append) == 26
        assert [o.text for o in outputs if o.kind == "print"] == ["lib ran"]

    def test_import_runs_a_file_once_even_if_imported_twice(self, tmp_path):
        (tmp_path / "lib.ad").write_text('n = 1\nprint("ran")\n')
        (tmp_path / "other.ad").write_text('import "lib.ad"\n')
        main = tmp_path / "main.ad"
        main.write_text('import "lib.ad"\nn = n + 1\nimport "lib.ad"\nimport "other.ad"\nn\n')
        outputs = []
        assert Session().run_file(main, outputs.append) == 2  # lib.ad did not reset n
        assert [o.text for o in outputs if o.kind == "print"] == ["ran"]

    def test_import_shares_the_session(self, tmp_path):
        (tmp_path / "lib.ad").write_text("y = x * 10\n")
        main = tmp_path / "main.ad"
        main.write_text('x = 4\nimport "lib.ad"\ny\n')
        assert Session().run_file(main) == 40

    def test_an_import_cycle_is_an_error(self, tmp_path):
        (tmp_path / "a.ad").write_text('import "b.ad"\n')
        (tmp_path / "b.ad").write_text('\nimport "a.ad"\n')
        with pytest.raises(AdcliError) as info:
            Session().run_file(tmp_path / "a.ad")
        err = info.value
        assert err.kind == "value"
        assert err.message == "import cycle: a.ad -> b.ad -> a.ad"
        assert Path(err.span.file).name == "b.ad"
        assert (err.span.line, err.span.column) == (2, 8)

    def test_a_script_importing_itself_is_a_cycle(self, tmp_path):
        me = tmp_path / "me.ad"
        me.write_text('import "me.ad"\n')
        with pytest.raises(AdcliError, match="import cycle: me.ad -> me.ad"):
            Session().run_file(me)
        with pytest.raises(AdcliError, match="import cycle"):
            Session().run(me.read_text(), str(me))

    def test_only_ad_files_can_be_imported(self, tmp_path):
        (tmp_path / "data.txt").write_text("1\n")
        main = tmp_path / "main.ad"
        main.write_text('x = 1\nimport "data.txt"\n')
        with pytest.raises(AdcliError) as info:
            Session().run_file(main)
        err = info.value
        assert err.kind == "value"
        assert err.message == "import takes only .ad files, not 'data.txt'"
        assert (err.span.line, err.span.column) == (2, 8)

    def test_a_missing_import_is_an_error(self, tmp_path):
        main = tmp_path / "main.ad"
        main.write_text('import "nowhere.ad"\n')
        with pytest.raises(AdcliError, match="cannot import 'nowhere.ad': no such file"):
            Session().run_file(main)

    def test_an_error_inside_an_imported_file_points_into_that_file(self, tmp_path):
        (tmp_path / "bad.ad").write_text("x = 1\ny = sqr(x)\n")
        main = tmp_path / "main.ad"
        main.write_text('import "bad.ad"\n')
        with pytest.raises(AdcliError) as info:
            Session().run_file(main)
        err = info.value
        assert err.kind == "name"
        assert Path(err.span.file).name == "bad.ad"
        assert (err.span.line, err.span.column) == (2, 5)


# ---------------------------------------------------------------------------------- creation
class TestCreation:
    def test_tensor_from_a_number_and_from_literals(self):
        t = ev("tensor(3.5)")
        assert t.shape == () and t.item() == 3.5
        close(ev("tensor([[1, 2], [3, 4]])"), [[1, 2], [3, 4]])
        close(ev("tensor(true)"), 1)

    @pytest.mark.parametrize(
        "fn",
        [
            "tensor([1, 2])",
            "randn(2)",
            "rand(2)",
            "zeros(2)",
            "ones(2)",
            "full([2], 1)",
            "eye(2)",
            "arange(2)",
            "linspace(0, 1, 2)",
        ],
    )
    def test_every_creation_defaults_to_float32_cpu_without_grad(self, fn):
        t = ev(fn)
        assert (t.dtype, t.device, t.requires_grad, t.is_leaf) == ("float32", "cpu", False, True)

    @pytest.mark.parametrize(
        "fn",
        [
            "tensor([1, 2]",
            "randn(2",
            "rand(2",
            "zeros(2",
            "ones(2",
            "full([2], 1",
            "eye(2",
            "arange(2",
            "linspace(0, 1, 2",
        ],
    )
    def test_every_creation_takes_requires_grad_dtype_and_device(self, fn):
        t = ev(fn + ', requires_grad=true, dtype="float64", device="cpu")')
        assert (t.dtype, t.device, t.requires_grad, t.is_leaf) == ("float64", "cpu", True, True)
        assert t.grad is None

    def test_the_session_default_dtype(self):
        assert ev("ones(2).dtype", dtype="float64") == "float64"
        assert ev('ones(2, dtype="float32").dtype', dtype="float64") == "float32"

    def test_randn_and_rand_shapes_and_ranges(self):
        assert ev("randn(2, 3).shape") == (2, 3)
        assert ev("randn().shape") == ()
        assert ev("rand(4, 1, 2).shape") == (4, 1, 2)
        u = arr(ev("rand(1000)", seed=5))
        assert u.min() >= 0 and u.max() < 1 and 0.4 < u.mean() < 0.6
        g = arr(ev("randn(4000)", seed=5))
        assert abs(g.mean()) < 0.1 and 0.9 < g.std() < 1.1

    def test_zeros_and_ones(self):
        close(ev("zeros(2, 3)"), np.zeros((2, 3)))
        close(ev("ones(3)"), np.ones(3))
        close(ev("zeros([2, 3])"), np.zeros((2, 3)))  # a shape as a list
        close(ev("ones(shape(zeros(1, 2)))"), np.ones((1, 2)))  # a shape value

    def test_full(self):
        close(ev("full([2, 3], 7)"), np.full((2, 3), 7.0))
        close(ev("full(3, -1.5)"), [-1.5, -1.5, -1.5])

    def test_eye(self):
        close(ev("eye(3)"), np.eye(3))
        close(ev("eye(2, 3)"), np.eye(2, 3))

    def test_arange(self):
        close(ev("arange(5)"), [0, 1, 2, 3, 4])
        close(ev("arange(2, 5)"), [2, 3, 4])
        close(ev("arange(1, 2, 0.25)"), [1, 1.25, 1.5, 1.75])

    def test_linspace(self):
        close(ev("linspace(0, 1, 5)"), [0, 0.25, 0.5, 0.75, 1])
        close(ev("linspace(-1, 1, 3)"), [-1, 0, 1])


# -------------------------------------------------------------------------------------- math
X = "x = tensor([0.5, 1.0, 2.0])\n"
XS = np.array([0.5, 1.0, 2.0])


class TestMath:
    @pytest.mark.parametrize(
        ("fn", "expected"),
        [
            ("sqrt", np.sqrt(XS)),
            ("log", np.log(XS)),
            ("exp", np.exp(XS)),
            ("abs", XS),
            ("sin", np.sin(XS)),
            ("cos", np.cos(XS)),
            ("tanh", np.tanh(XS)),
            ("sigmoid", 1 / (1 + np.exp(-XS))),
            ("relu", XS),
        ],
    )
    def test_elementwise_values(self, fn, expected):
        close(ev(X + f"{fn}(x)"), expected)

    @pytest.mark.parametrize(
        ("fn", "derivative"),
        [
            ("sqrt", 0.5 / np.sqrt(XS)),
            ("log", 1 / XS),
            ("exp", np.exp(XS)),
            ("sin", np.cos(XS)),
            ("cos", -np.sin(XS)),
            ("tanh", 1 - np.tanh(XS) ** 2),
            ("sigmoid", np.exp(-XS) / (1 + np.exp(-XS)) ** 2),
        ],
    )
    def test_elementwise_derivatives(self, fn, derivative):
        source = f"x = tensor([0.5, 1.0, 2.0], requires_grad=true)\nsum({fn}(x)).backward()\nx.grad"
        close(ev(source), derivative)

    def test_abs_and_relu_on_negative_numbers(self):
        v = "v = tensor([-2., 3.], requires_grad=true)\n"
        close(ev(v + "abs(v)"), [2, 3])
        close(ev(v + "relu(v)"), [0, 3])
        close(ev(v + "sum(abs(v)).backward(); v.grad"), [-1, 1])
        close(ev(v + "sum(relu(v)).backward(); v.grad"), [0, 1])

    def test_math_on_plain_numbers_gives_tensors(self):
        close(ev("sqrt(4)"), 2)
        close(ev("log(1)"), 0)
        close(ev("exp(0)"), 1)

    def test_pow(self):
        close(ev("pow(tensor([2., 3.]), 2)"), [4, 9])
        close(ev("pow(2, 3)"), 8)
        close(ev("pow(2, tensor([1., 2., 3.]))"), [2, 4, 8])
        close(ev("x = tensor(4.0, requires_grad=true); pow(x, 0.5).backward(); x.grad"), 0.25)

    def test_mm_and_matmul(self):
        a = "a = tensor([[1, 2], [3, 4]]); b = tensor([[5, 6], [7, 8]])\n"
        close(ev(a + "mm(a, b)"), [[19, 22], [43, 50]])
        close(ev(a + "matmul(a, b)"), [[19, 22], [43, 50]])
        close(ev(a + "matmul(a, tensor([1., 1.]))"), [3, 7])
        close(ev(a + "a @ b"), [[19, 22], [43, 50]])

    def test_mm_gradient_is_grad_times_b_transposed(self):
        source = (
            "a = tensor([[1., 2.]], requires_grad=true)\n"
            "b = tensor([[1., 2.], [3., 4.]])\n"
            "sum(mm(a, b)).backward()\na.grad"
        )
        close(ev(source), [[3, 7]])  # ones(1, 2) @ b^T

    def test_dot(self):
        close(ev("dot(tensor([1., 2., 3.]), tensor([4., 5., 6.]))"), 32)
        source = (
            "a = tensor([1., 2.], requires_grad=true); dot(a, tensor([3., 4.])).backward(); a.grad"
        )
        close(ev(source), [3, 4])

    def test_sum(self):
        m = "m = tensor([[1, 2, 3], [4, 5, 6]])\n"
        close(ev(m + "sum(m)"), 21)
        close(ev(m + "sum(m, dim=0)"), [5, 7, 9])
        close(ev(m + "sum(m, dim=1)"), [6, 15])
        close(ev(m + "sum(m, dim=-1)"), [6, 15])
        close(ev(m + "sum(m, dim=1, keepdim=true)"), [[6], [15]])
        close(ev(m + "sum(m, dim=[0, 1])"), 21)

    def test_mean(self):
        m = "m = tensor([[1, 2, 3], [4, 5, 6]])\n"
        close(ev(m + "mean(m)"), 3.5)
        close(ev(m + "mean(m, dim=0)"), [2.5, 3.5, 4.5])
        close(ev(m + "mean(m, dim=1, keepdim=true)"), [[2], [5]])
        source = "x = tensor([1., 2., 3., 4.], requires_grad=true); mean(x).backward(); x.grad"
        close(ev(source), [0.25] * 4)

    def test_transpose_and_dot_T(self):
        m = "m = tensor([[1, 2, 3], [4, 5, 6]])\n"
        close(ev(m + "transpose(m)"), [[1, 4], [2, 5], [3, 6]])
        close(ev(m + "m.T"), [[1, 4], [2, 5], [3, 6]])
        close(ev(m + "m.T.T"), [[1, 2, 3], [4, 5, 6]])

    def test_reshape(self):
        close(ev("reshape(arange(6), 2, 3)"), [[0, 1, 2], [3, 4, 5]])
        close(ev("reshape(arange(6), [3, 2])"), [[0, 1], [2, 3], [4, 5]])
        assert ev("reshape(arange(6), 3, -1).shape") == (3, 2)
        source = "x = arange(4, requires_grad=true)\nsum(reshape(x, 2, 2) * tensor([[1, 2], [3, 4]])).backward()\nx.grad"
        close(ev(source), [1, 2, 3, 4])


# ---------------------------------------------------------------------------------- autograd
class TestAutogradBuiltins:
    def test_backward_function_and_method(self):
        x = "x = tensor([1., 2.], requires_grad=true)\n"
        close(ev(x + "backward(sum(x^2))\nx.grad"), [2, 4])
        close(ev(x + "sum(x^2).backward()\nx.grad"), [2, 4])

    def test_backward_with_a_gradient(self):
        x = "x = tensor([1., 2.], requires_grad=true)\n"
        close(ev(x + "backward(x^2, tensor([1., 10.]))\nx.grad"), [2, 40])
        close(ev(x + "(x^2).backward(tensor([1., 10.]))\nx.grad"), [2, 40])
        close(ev(x + "(x^2).backward(gradient=tensor([1., 10.]))\nx.grad"), [2, 40])

    def test_backward_retain_graph(self):
        source = (
            "x = tensor(3.0, requires_grad=true); y = x^2\n"
            "backward(y, retain_graph=true)\nbackward(y)\nx.grad"
        )
        close(ev(source), 12)  # 6 + 6

    def test_backward_create_graph_makes_the_gradient_differentiable(self):
        source = (
            "x = tensor(2.0, requires_grad=true)\n"
            "backward(x^3, create_graph=true)\n"
            "g = x.grad\n"  # 3 x^2 = 12
            "[g.item(), g.requires_grad]"
        )
        close(ev(source), [12, 1])
        source = (
            "x = tensor(2.0, requires_grad=true)\n"
            "(x^3).backward(create_graph=true)\n"
            "grad(x.grad, x)"  # 6x
        )
        close(ev(source), 12)

    def test_grad_returns_the_derivative_and_leaves_dot_grad_alone(self):
        source = "x = tensor([1., 2.], requires_grad=true)\ng = grad(sum(x^3), x)\n[g, x.grad]"
        err = error_of(source)  # x.grad is none: cannot go in a bracket literal
        assert err.kind == "type"
        value = ev("x = tensor([1., 2.], requires_grad=true)\ng = grad(sum(x^3), x)\nx.grad")
        assert value is None
        close(ev("x = tensor([1., 2.], requires_grad=true)\ngrad(sum(x^3), x)"), [3, 12])

    def test_grad_with_grad_outputs(self):
        source = "x = tensor([1., 2.], requires_grad=true)\ngrad(x^2, x, tensor([1., 10.]))"
        close(ev(source), [2, 40])

    def test_grad_create_graph_and_retain_graph(self):
        source = (
            "x = tensor([1., 2.], requires_grad=true)\ny = sum(x^3)\n"
            "g = grad(y, x, create_graph=true)\n"  # 3x^2
            "grad(sum(g), x)"  # 6x
        )
        close(ev(source), [6, 12])
        source = (
            "x = tensor([1., 2.], requires_grad=true)\ny = sum(x^2)\n"
            "a = grad(y, x, retain_graph=true)\nb = grad(y, x)\na + b"
        )
        close(ev(source), [4, 8])

    @pytest.mark.parametrize(
        ("order", "expected"),
        [
            (1, lambda x: 4 * x**3),
            (2, lambda x: 12 * x**2),
            (3, lambda x: 24 * x),
            (4, lambda x: 24 + 0 * x),
            (5, lambda x: 0 * x),
        ],
    )
    def test_grad_order_n_of_x_to_the_fourth(self, order, expected):
        xs = np.array([1.0, 2.0, -0.5])
        source = f"x = tensor([1., 2., -0.5], requires_grad=true)\ngrad(x^4, x, order={order})"
        close(ev(source), expected(xs), tol=1e-4)

    def test_grad_order_is_the_gradient_of_the_sum_taken_n_times(self):
        # y = x0^2 x1: grad = [2 x0 x1, x0^2]; grad of its sum = [2 x1 + 2 x0, 2 x0]
        source = "x = tensor([3., 5.], requires_grad=true)\ny = x[0]^2 * x[1]\ngrad(y, x, order=2)"
        close(ev(source), [2 * 5 + 2 * 3, 2 * 3])

    @pytest.mark.parametrize("method", ["auto", "taylor", "nested"])
    def test_grad_order_methods_agree_with_the_closed_form(self, method):
        source = (
            f"x = tensor([0.3, 1.1], requires_grad=true)\n"
            f'grad(sin(x), x, order=3, method="{method}")'
        )
        close(ev(source), -np.cos([0.3, 1.1]), tol=1e-4)

    def test_jacobian_of_a_user_function(self):
        close(ev("f(v) = v^2\njacobian(f, tensor([1., 2.]))"), [[2, 0], [0, 4]])
        # f(v) = [v0 v1, v0 + v1] as a 2-vector: rows are the outputs
        source = "f(v) = v[0] * v + v[1]\njacobian(f, tensor([2., 3.]))"
        # out_i = v0 v_i + v1 -> d out0 = [2 v0 + 0, 1] = [4, 1]; d out1 = [v1, v0 + 1] = [3, 3]
        close(ev(source), [[4, 1], [3, 3]])

    def test_hessian_of_a_user_function(self):
        source = "f(v) = sum(v^3) + v[0] * v[1]\nhessian(f, tensor([1., 2., 3.]))"
        close(ev(source), [[6, 1, 0], [1, 12, 0], [0, 0, 18]])

    def test_detach(self):
        source = "x = tensor([1., 2.], requires_grad=true)\nd = detach(x * 2)\n"
        assert ev(source + "d.requires_grad") is False
        assert ev(source + "d.grad_fn") is None
        close(ev(source + "d"), [2, 4])
        # A detached factor is a constant: d/dx (x * detach(x)) = detach(x)
        source = "x = tensor([1., 2.], requires_grad=true)\nsum(x * detach(x)).backward()\nx.grad"
        close(ev(source), [1, 2])

    def test_no_grad(self):
        source = "x = tensor([1., 2.], requires_grad=true)\ny = no_grad(x * 2 + 1)\n"
        assert ev(source + "y.requires_grad") is False
        assert ev(source + "y.grad_fn") is None
        close(ev(source + "y"), [3, 5])
        # Recording resumes after no_grad
        assert ev(source + "(x * 2).requires_grad") is True

    def test_zero_grad(self):
        source = (
            "x = tensor([1., 2.], requires_grad=true); y = tensor(3., requires_grad=true)\n"
            "sum(x^2 * y).backward()\nzero_grad(x, y)\n"
        )
        close(ev(source + "x.grad"), [0, 0])
        close(ev(source + "y.grad"), 0)
        # zero_grad on a leaf whose .grad is none leaves it none
        assert ev("x = ones(2, requires_grad=true)\nzero_grad(x)\nx.grad") is None

    def test_gradcheck(self):
        source = 'f(v) = sin(v) * v^2\ngradcheck(f, tensor([0.3, 1.2], dtype="float64", requires_grad=true))'
        assert ev(source) is True
        assert ev("f(v) = exp(v) / (1 + v^2)\ngradcheck(f, tensor([0.5, -1.]))") is True
        assert (
            ev("f(a, b) = a * sin(b)\ngradcheck(f, tensor([1., 2.]), tensor([0.5, 0.7]))") is True
        )


# --------------------------------------------------------------------------------- utilities
class TestUtilities:
    def test_seed_makes_randn_reproducible(self):
        a = arr(ev("seed(42)\nrandn(5)"))
        b = arr(ev("seed(42)\nrandn(5)"))
        c = arr(ev("seed(43)\nrandn(5)"))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
        assert ev("seed(1); a = randn(3); seed(1); b = randn(3); allclose(a, b)") is True
        assert ev("seed(1); a = randn(3); b = randn(3); allclose(a, b)") is False

    def test_the_session_seed_matches_seed(self):
        np.testing.assert_array_equal(arr(ev("randn(4)", seed=7)), arr(ev("seed(7)\nrandn(4)")))

    def test_print(self):
        _, outputs = run('x = 2\nprint("x is", x, true, false, [1, 2])')
        assert len(outputs) == 1
        out = outputs[0]
        # PyTorch's print: True/False, and a tensor as its repr
        assert out.kind == "print" and out.text == "x is 2 True False tensor([1., 2.])"
        assert out.span.line == 2
        _, outputs = run("print(shape(ones(2, 3)))")
        assert outputs[0].text == "[2, 3]"

    def test_allclose(self):
        assert ev("allclose(tensor([1., 2.]), tensor([1., 2.]))") is True
        assert ev("allclose(tensor([1.]), tensor([1.1]))") is False
        assert ev("allclose(tensor([1.]), tensor([1.1]), atol=0.2)") is True
        assert ev("allclose(tensor([100.]), tensor([101.]), rtol=0.05)") is True
        assert ev("allclose(tensor([100.]), tensor([101.]), rtol=0.001)") is False
        assert ev("allclose(ones(2, 2), 1)") is True  # broadcasting

    def test_shape(self):
        assert ev("shape(ones(2, 3))") == (2, 3)
        assert ev("shape(tensor(1.))") == ()
        assert ev("shape(ones(2, 3)) == [2, 3]") is True

    def test_item(self):
        assert ev("item(tensor(3.5))") == 3.5
        assert ev("item(tensor([[2.]]))") == 2.0


# ------------------------------------------------------------------- attributes and methods
class TestAttributes:
    def test_data_shares_storage_and_drops_the_graph(self):
        source = "x = tensor([1., 2.], requires_grad=true)\n"
        assert ev(source + "x.data.requires_grad") is False
        close(ev(source + "x.data"), [1, 2])
        close(ev(source + "d = x.data\nd.zero_()\nx"), [0, 0])

    def test_grad(self):
        source = "x = tensor([1., 2.], requires_grad=true)\n"
        assert ev(source + "x.grad") is None
        close(ev(source + "sum(3 * x).backward()\nx.grad"), [3, 3])

    def test_grad_fn(self):
        source = "x = tensor([1., 2.], requires_grad=true)\n"
        assert ev(source + "x.grad_fn") is None
        assert ev(source + "(x * 2).grad_fn.name") == "MulBackward"

    def test_requires_grad_and_is_leaf(self):
        source = "x = tensor([1.], requires_grad=true); c = tensor([1.])\n"
        assert ev(source + "x.requires_grad") is True
        assert ev(source + "c.requires_grad") is False
        assert ev(source + "(x * c).requires_grad") is True
        assert ev(source + "(c * c).requires_grad") is False
        assert ev(source + "x.is_leaf") is True
        assert ev(source + "c.is_leaf") is True
        assert ev(source + "(x * c).is_leaf") is False
        assert ev(source + "(c * c).is_leaf") is True

    def test_shape_dtype_device(self):
        assert ev("ones(2, 3).shape") == (2, 3)
        assert ev("ones(2).dtype") == "float32"
        assert ev('ones(2, dtype="float64").dtype') == "float64"
        assert ev("ones(2).device") == "cpu"

    def test_T(self):
        close(ev("tensor([[1, 2, 3]]).T"), [[1], [2], [3]])
        assert ev("ones(2, 3, 4).T.shape") == (4, 3, 2)


class TestMethods:
    def test_backward_method(self):
        close(ev("x = tensor(2., requires_grad=true); (x^3).backward(); x.grad"), 12)

    def test_zero_(self):
        # zero_ zeroes in place and returns the same tensor
        close(ev("g = tensor([1., 2.])\nh = g.zero_()\ng"), [0, 0])
        close(ev("g = tensor([1., 2.])\ng.zero_()"), [0, 0])

    def test_detach_method(self):
        source = "x = tensor([1., 2.], requires_grad=true)\nd = (x * 3).detach()\n"
        assert ev(source + "d.requires_grad") is False
        close(ev(source + "d"), [3, 6])

    @pytest.mark.skipif(cuda_available(), reason="checks the error where there is no GPU")
    def test_cuda_without_a_gpu_is_a_device_error(self):
        err = error_of("x = ones(2)\ny = x.cuda()")
        assert err.kind == "device"
        assert "cuda" in err.message
        assert err.span.line == 2

    @pytest.mark.cuda
    @pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU / CuPy not installed")
    def test_cuda_with_a_gpu_moves_and_differentiates(self):
        source = "x = tensor([1., 2.], requires_grad=true)\ny = x.cuda()\nsum(y^2).backward()\n"
        assert ev(source + "y.device") == "cuda:0"
        close(ev(source + "x.grad"), [2, 4])
        close(ev(source + "y.cpu()"), [1, 2])

    def test_cpu_and_to(self):
        assert ev("ones(2).cpu().device") == "cpu"
        assert ev('ones(2).to("cpu").device') == "cpu"
        t = ev('tensor([1.5]).to("float64")')
        assert t.dtype == "float64"
        close(t, [1.5])
        assert ev('ones(2, dtype="float64").to("float32").dtype') == "float32"

    def test_to_is_differentiable(self):
        source = (
            'x = tensor([1., 2.], requires_grad=true)\nsum(x.to("float64")^2).backward()\nx.grad'
        )
        close(ev(source), [2, 4])

    def test_sum_and_mean_methods(self):
        m = "m = tensor([[1, 2, 3], [4, 5, 6]])\n"
        close(ev(m + "m.sum()"), 21)
        close(ev(m + "m.sum(dim=0)"), [5, 7, 9])
        close(ev(m + "m.sum(1)"), [6, 15])
        close(ev(m + "m.sum(dim=1, keepdim=true)"), [[6], [15]])
        close(ev(m + "m.mean()"), 3.5)
        close(ev(m + "m.mean(dim=1)"), [2, 5])
        close(ev(m + "m.mean(dim=0, keepdim=true)"), [[2.5, 3.5, 4.5]])

    def test_item_method(self):
        value = ev("tensor(2.5).item()")
        assert value == 2.5 and isinstance(value, float)


# ------------------------------------------------------------------------ autograd semantics
class TestAutogradSemantics:
    def test_leaves_accumulate_into_grad(self):
        source = (
            "x = tensor([1., 2.], requires_grad=true)\n"
            "sum(x^2).backward()\n"  # 2x
            "sum(3 * x).backward()\n"  # + 3
            "x.grad"
        )
        close(ev(source), [5, 7])

    def test_grad_starts_as_none(self):
        value, outputs = run("x = randn(3, requires_grad=true)\nx.grad")
        assert value is None
        assert [o.kind for o in outputs] == ["value"]  # a leaf's .grad: no warning

    def test_zero_zeroes_the_grad_in_place(self):
        source = (
            "x = tensor([1., 2.], requires_grad=true)\n"
            "sum(x^2).backward()\n"
            "g = x.grad\n"
            "x.grad.zero_()\n"
            "sum(x).backward()\n"
        )
        close(ev(source + "x.grad"), [1, 1])
        close(ev(source + "g"), [1, 1])  # the same tensor, zeroed then accumulated into

    def test_a_non_leaf_grad_is_none_with_a_warning(self):
        value, outputs = run(
            "x = tensor([1., 2.], requires_grad=true)\ny = x * 2\nsum(y).backward()\ny.grad"
        )
        assert value is None
        assert [o.kind for o in outputs] == ["warning", "value"]
        warning = outputs[0]
        assert "not a leaf Tensor" in warning.text and ".grad" in warning.text
        assert "retain_grad" in warning.text
        assert warning.span.line == 4

    def test_backward_of_a_non_scalar_without_a_gradient_is_an_error(self):
        err = error_of("x = tensor([1., 2.], requires_grad=true)\ny = x^2\ny.backward()")
        assert err.message == "grad can be implicitly created only for scalar outputs"
        assert (err.span.line, err.span.column) == (3, 1)
        err = error_of("x = tensor([1., 2.], requires_grad=true)\nbackward(x^2)")
        assert err.message == "grad can be implicitly created only for scalar outputs"

    def test_a_second_backward_without_retain_graph_is_an_error_that_says_so(self):
        source = "x = tensor(2.0, requires_grad=true)\ny = x^2\ny.backward()\ny.backward()"
        err = error_of(source)
        assert "backward through the graph a second time" in err.message
        assert "retain_graph" in err.message
        assert (err.span.line, err.span.column) == (4, 1)
        assert "3:1" in (err.hint or "")  # names the backward that freed the graph

    def test_a_second_backward_works_with_retain_graph(self):
        source = "x = tensor(2.0, requires_grad=true)\ny = x^2\ny.backward(retain_graph=true)\ny.backward()\nx.grad"
        close(ev(source), 8)

    def test_a_second_backward_works_after_create_graph(self):
        source = "x = tensor(2.0, requires_grad=true)\ny = x^2\ny.backward(create_graph=true)\ny.backward()\nx.grad"
        close(ev(source), 8)

    def test_grad_also_frees_the_graph(self):
        source = "x = tensor(2.0, requires_grad=true)\ny = x^2\ng = grad(y, x)\ngrad(y, x)"
        assert "second time" in error_of(source).message

    def test_create_graph_gives_higher_orders(self):
        # y = x^3: y' = 3x^2 = 12, y'' = 6x = 12, y''' = 6 at x = 2
        source = (
            "x = tensor(2.0, requires_grad=true)\n"
            "d1 = grad(x^3, x, create_graph=true)\n"
            "d2 = grad(d1, x, create_graph=true)\n"
            "d3 = grad(d2, x)\n"
            "[d1, d2, d3]"
        )
        close(ev(source), [12, 12, 6])

    def test_broadcasting_is_summed_back_to_each_input_shape(self):
        source = (
            "x = tensor([1., 2.], requires_grad=true)\n"  # shape [2]
            "c = tensor([[1.], [2.], [3.]], requires_grad=true)\n"  # shape [3, 1]
            "y = sum(x * c)\ny.backward()\n"
        )
        close(ev(source + "x.grad"), [6, 6])  # sum over c
        close(ev(source + "c.grad"), [[3], [3], [3]])  # sum over x
        source = "s = tensor(2.0, requires_grad=true)\nsum(s * ones(2, 3)).backward()\ns.grad"
        close(ev(source), 6)

    @pytest.mark.parametrize(
        ("expr", "name"),
        [
            ("sqrt(x)", "SqrtBackward"),
            ("sum(x)", "SumBackward"),
            ("x^2", "PowBackward"),
            ("x * x", "MulBackward"),
            ("x + x", "AddBackward"),
            ("mm(reshape(x, 1, 2), reshape(x, 2, 1))", "MmBackward"),
            ("mean(x)", "MeanBackward"),
            ("log(x)", "LogBackward"),
            ("exp(x)", "ExpBackward"),
        ],
    )
    def test_grad_fn_names_follow_pytorch(self, expr, name):
        assert ev(f"x = tensor([1., 2.], requires_grad=true)\n({expr}).grad_fn.name") == name

    def test_a_leaf_grad_fn_is_none_and_leaves_are_accumulate_grad_in_a_chain(self):
        source = "x = tensor([1., 2.], requires_grad=true)\nout = sqrt(sum(x^2))\n"
        assert ev(source + "x.grad_fn") is None
        assert ev(source + "out.grad_fn.name") == "SqrtBackward"
        assert ev(source + "out.grad_fn.next_functions[0].name") == "SumBackward"
        assert ev(source + "out.grad_fn.next_functions[0].next_functions[0].name") == "PowBackward"
        chain = "out.grad_fn.next_functions[0].next_functions[0].next_functions[0]"
        assert ev(source + chain + ".name") == "AccumulateGrad"
        leaf = ev(source + chain + ".variable")
        close(leaf, [1, 2])
        assert leaf.requires_grad and leaf.is_leaf

    def test_a_displayed_grad_fn_is_the_node(self):
        value, outputs = run("x = tensor([1.], requires_grad=true)\nout = sqrt(x)\nout.grad_fn")
        assert outputs[0].kind == "value"
        assert value.name() == "SqrtBackward"

    def test_grad_of_something_that_does_not_depend_on_x_is_zeros(self):
        source = (
            "x = tensor([2., 3.], requires_grad=true); y = tensor([5., 7.], requires_grad=true)\n"
        )
        close(ev(source + "grad(x * y, x, order=1)"), [5, 7])
        close(ev(source + "grad(x * y, x, order=2)"), [0, 0])
        close(ev(source + "grad(x * y, x, order=3)"), [0, 0])
        close(ev(source + "grad(sum(y^2), x)"), [0, 0])
        assert ev(source + "grad(x * y, x, order=3).shape") == (2,)
        # A number does not require grad at all: PyTorch's error (contract v2), not zeros.
        with pytest.raises(AdcliError, match="does not require grad and does not have a grad_fn"):
            ev(source + "grad(3, x)")

    def test_operations_across_devices_name_both(self, monkeypatch):
        # A second device backed by NumPy stands in for a GPU (see test_language_errors).
        from adcli import backend

        monkeypatch.setitem(backend._backends, "cuda:7", backend.Backend("cuda:7", np, False, None))
        err = error_of('a = ones(2)\nb = ones(2, device="cuda:7")\nc = a * b')
        assert err.kind == "device"
        assert "cpu" in err.message and "cuda:7" in err.message


# ------------------------------------------------------------------------- the first taste
FIRST_TASTE = PROGRAMS / "first_taste.ad"


def test_the_first_taste_fixture_is_the_spec_verbatim():
    if not SPEC.is_file():
        pytest.skip("spec/language.md is not next to this checkout")
    block = re.search(r"## A first taste.*?```\n(.*?)```", SPEC.read_text(), re.DOTALL)
    assert block is not None
    assert FIRST_TASTE.read_text() == block.group(1)


def rendered(value) -> str:
    """How the CLI displays a value, as plain text."""
    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None).print(value_renderable(value))
    return buffer.getvalue().rstrip("\n")


def test_the_first_taste_runs_end_to_end_with_its_asserts():
    record = Recorder()
    session = Session(seed=0)
    session.run_file(FIRST_TASTE, record)
    # Line 31's backward adds into y.grad, which o.backward filled: said once, as a note.
    notes = [o for o in record.outputs if o.kind == "accumulation"]
    assert [(o.span.line, o.value.name) for o in notes] == [(31, "y")]
    kept = [(o, snap) for o, snap in zip(record.outputs, record.snapshots) if o.kind == "value"]
    shown = {o.span.line: (o, snap) for o, snap in kept}
    assert set(record.kinds()) == {"value", "accumulation"}

    # line 7: out, a 0-d tensor |x| with grad_fn SqrtBackward
    out = shown[7][0]
    assert out.value.shape == () and out.value.grad_fn.name() == "SqrtBackward"
    # line 9: x.grad, which was x / |x| when shown: a unit vector
    grad_shown = shown[9][1]
    assert grad_shown.shape == (10,)
    assert math.isclose(float(np.linalg.norm(grad_shown)), 1.0, rel_tol=1e-5)
    # line 10: the grad_fn chain of out, down to the leaf x
    assert shown[10][0].value.name() == "SqrtBackward"
    assert rendered(shown[7][0].value).splitlines()[-1] == (
        "shape=[] dtype=float32 device=cpu grad_fn=<SqrtBackward>"
    )
    assert rendered(shown[10][0].value).split() == [
        "SqrtBackward",
        "└──",
        "SumBackward",
        "└──",
        "PowBackward",
        "└──",
        "AccumulateGrad",
        "(x)",
    ]
    # line 12: x.grad.zero_() shows the zeroed gradient
    np.testing.assert_array_equal(shown[12][1], np.zeros(10, dtype=np.float32))
    # line 30: x.grad.data.zero_() shows a zeroed 2 x 2
    np.testing.assert_array_equal(shown[30][1], np.zeros((2, 2), dtype=np.float32))
    assert sorted(shown) == [7, 9, 10, 12, 30]

    # u.grad = [1, 0] @ M^T = [[1, 3]]; x.grad = 2 after the second backward
    close(session.lookup("u").grad, [[1, 3]])
    close(session.lookup("x").grad, np.full((2, 2), 2.0))


def test_the_first_taste_shows_x_over_its_norm():
    """Line 9 shows x / |x| for the x of line 4 (checked by hand, not by the script's assert)."""
    record = Recorder()
    session = Session(seed=0)
    source = FIRST_TASTE.read_text().split("\n")
    session.run("\n".join(source[:9]), str(FIRST_TASTE), record)
    x = session.lookup("x").numpy().astype(np.float64)
    np.testing.assert_allclose(record.snapshots[-1], x / np.linalg.norm(x), rtol=1e-5)
    np.testing.assert_allclose(record.snapshots[0], np.linalg.norm(x), rtol=1e-5)


@pytest.mark.parametrize(
    "example",
    sorted((Path(__file__).resolve().parents[1] / "scripts" / "examples").glob("*.ad")),
    ids=lambda p: p.name,
)
def test_every_example_script_runs(example):
    Session(seed=0).run_file(example, lambda output: None)


def test_through_the_cli_the_first_taste_passes_and_a_failed_assert_exits_1(tmp_path):
    from typer.testing import CliRunner

    from adcli.cli.app import app

    runner = CliRunner()
    result = runner.invoke(app, ["run", "--quiet", str(FIRST_TASTE)])
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.ad"
    bad.write_text('x = 1\nassert x == 2, "x should be 2"\n')
    result = runner.invoke(app, ["run", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2:1: error: x should be 2" in result.output
