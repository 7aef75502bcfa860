"""The v2 statements and values of spec/language.md: blocks, loops, if,
functions with bodies, tuples, unpacking, and/or/not, % and //, constants.

Values and gradients are checked against closed forms or float64 finite
differences, never against adcli itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError
from adcli.lang.interpreter import Limits, Output, Session


def run(source: str, **options) -> tuple[object, list[Output], Session]:
    outputs: list[Output] = []
    session = Session(**options)
    value = session.run(source, "<test>", outputs.append)
    return value, outputs, session


def ev(source: str, **options):
    return run(source, **options)[0]


def var(source: str, name: str, **options):
    return run(source, **options)[2].variables()[name]


def arr(value) -> np.ndarray:
    if isinstance(value, Tensor):
        return np.asarray(value.numpy(), dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def close(value, expected, tol=1e-6) -> None:
    got = arr(value)
    want = np.asarray(expected, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def error_of(source: str, **options) -> AdcliError:
    with pytest.raises(AdcliError) as info:
        Session(**options).run(source, "<test>", lambda output: None)
    return info.value


def fd(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of a scalar function of a float64 array."""
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        out[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return out


# ------------------------------------------------------------------------------- loops
class TestLoops:
    def test_the_one_liner_from_the_issue(self):
        assert ev("s = 0; for i in range(5) { s += i }; s") == 10

    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("range(4)", [0, 1, 2, 3]),
            ("range(2, 5)", [2, 3, 4]),
            ("range(10, 0, -3)", [10, 7, 4, 1]),
            ("(3, 1, 2)", [3, 1, 2]),
        ],
    )
    def test_for_iterates_ranges_and_tuples(self, header, expected):
        value = ev(f"out = 0\nfor v in {header} {{ out = out * 100 + v }}\nout")
        want = 0
        for v in expected:
            want = want * 100 + v
        assert value == want

    def test_for_over_a_tensor_walks_its_first_dimension_differentiably(self):
        src = """
        x = tensor([[1., 2.], [3., 4.]], requires_grad=true)
        total = 0
        for row in x { total = total + sum(row^2) }
        total.backward()
        """
        session = run(src)[2]
        close(session.variables()["total"], 30.0)
        close(session.variables()["x"].grad, [[2, 4], [6, 8]])  # d sum(x^2) = 2x

    def test_while_break_continue(self):
        src = """
        n = 0; odd = 0
        while true {
            n += 1
            if n > 9 { break }
            if n % 2 == 0 { continue }
            odd += n
        }
        odd
        """
        assert ev(src) == 1 + 3 + 5 + 7 + 9

    def test_nested_loops_break_only_the_inner_one(self):
        src = "c = 0\nfor i in range(3) {\n for j in range(10) {\n if j == 2 { break }\n c += 1\n }\n}\nc"
        assert ev(src) == 6

    def test_the_loop_variable_stays_bound_after_the_loop(self):
        assert ev("for i in range(3) { }\ni") == 2

    def test_a_loop_body_displays_nothing(self):
        outputs = run("for i in range(3) { i }")[1]
        assert outputs == []

    def test_print_inside_a_loop(self):
        outputs = run("for i in range(2) { print(i) }")[1]
        assert [o.text for o in outputs if o.kind == "print"] == ["0", "1"]


# ------------------------------------------------------------------------------------ if
class TestIf:
    @pytest.mark.parametrize(("x", "expected"), [(5, 1), (-5, 2), (0, 3)])
    def test_else_if_chain(self, x, expected):
        src = f"x = {x}\nif x > 0 {{ r = 1 }} else if x < 0 {{ r = 2 }} else {{ r = 3 }}\nr"
        assert ev(src) == expected

    def test_else_may_start_the_next_line(self):
        assert ev("if false { r = 1 }\nelse { r = 2 }\nr") == 2

    def test_an_if_block_at_top_level_displays_as_top_level(self):
        outputs = run("if true { 42 }")[1]
        assert [o.value for o in outputs if o.kind == "value"] == [42]

    def test_one_element_tensors_have_a_truth_value(self):
        assert ev("r = 0\nif tensor([2.0]) > 1 { r = 1 }\nr") == 1
        assert ev("r = 0\nif tensor(0.0) { r = 1 }\nr") == 0

    def test_a_tensor_of_several_elements_is_ambiguous(self):
        err = error_of("if ones(3) > 0 { 1 }")
        assert err.kind == "value"
        assert err.message == "Boolean value of Tensor with more than one value is ambiguous"
        assert (err.span.line, err.span.column) == (1, 4)

    def test_assert_keeps_requiring_every_element(self):
        ev("assert ones(3) > 0")
        assert error_of("assert tensor([1., 0.])").kind == "assert"


# --------------------------------------------------------------------------- logic, % and //
class TestOperators:
    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("true and false", False),
            ("true or false", True),
            ("not true", False),
            ("not 0", True),
            ("1 < 2 and 2 < 3", True),
            ("false or 7", 7),
            ("0 and nope", 0),  # short-circuit: nope is never evaluated
            ("1 or nope", 1),
            ("not 1 == 2", True),  # not is looser than ==
        ],
    )
    def test_logic(self, source, expected):
        assert ev(source) == expected

    @pytest.mark.parametrize(("a", "b"), [(7, 3), (-7, 3), (7, -3), (-7, -3), (7.5, 2), (-7.5, 2)])
    def test_remainder_and_floor_division_of_numbers_as_python(self, a, b):
        assert ev(f"{a} % {b}".replace("--", "")) == pytest.approx(a % b)
        assert ev(f"{a} // {b}") == pytest.approx(a // b)

    def test_remainder_of_tensors_is_torch_remainder(self):
        # torch.remainder: the result has the sign of the divisor (as Python's %)
        a = np.array([-7.0, -1.5, 0.0, 2.5, 7.0])
        close(ev("tensor([-7, -1.5, 0, 2.5, 7]) % 3"), np.remainder(a, 3))
        close(ev("tensor([-7, -1.5, 0, 2.5, 7]) % -3"), np.remainder(a, -3))
        close(ev("tensor([-7, -1.5, 0, 2.5, 7]) // 2"), np.floor_divide(a, 2))

    def test_gradients_of_remainder(self):
        # d/da (a % b) = 1 and d/db = -floor(a / b), away from the jumps
        src = """
        a = tensor([5.3, -2.2, 7.9], dtype="float64", requires_grad=true)
        b = tensor([2.0, 1.5, -3.0], dtype="float64", requires_grad=true)
        ga, gb = grad(sum(a % b), (a, b))
        """
        session = run(src)[2]
        a, b = np.array([5.3, -2.2, 7.9]), np.array([2.0, 1.5, -3.0])
        close(session.variables()["ga"], fd(lambda v: np.sum(np.remainder(v, b)), a))
        close(session.variables()["gb"], fd(lambda v: np.sum(np.remainder(a, v)), b))

    def test_floor_division_records_no_gradient(self):
        assert ev("x = tensor(5.0, requires_grad=true)\n(x // 2).requires_grad") is False

    def test_constants(self):
        assert ev("pi") == math.pi
        assert ev("inf") == math.inf
        assert math.isnan(ev("nan"))
        close(ev("cos(tensor(pi))"), -1.0)
        assert ev("pi = 3\npi") == 3  # a name like sum: a variable may shadow it


# --------------------------------------------------------------------------------- tuples
class TestTuples:
    def test_tuple_literals_index_and_len(self):
        assert ev("t = (1, 2, 3)\n(t[0], t[-1], len(t))") == (1, 3, 3)
        assert ev("(5,)") == (5,)
        assert ev("len((1, (2, 3)))") == 2

    def test_unpacking(self):
        assert ev("a, b = (1, 2)\n(b, a)") == (2, 1)
        assert ev("a = 1; b = 2\na, b = b, a\n(a, b)") == (2, 1)

    def test_unpacking_a_tensor_takes_its_first_dimension(self):
        src = "x = tensor([[1., 2.], [3., 4.]])\nr0, r1 = x\nr1"
        close(ev(src), [3, 4])

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ("a, b = (1, 2, 3)", "too many values to unpack (expected 2)"),
            ("a, b, c = (1, 2)", "not enough values to unpack (expected 3, got 2)"),
            ("a, b = 1", "cannot unpack a number"),
        ],
    )
    def test_unpacking_errors(self, source, message):
        assert error_of(source).message == message

    def test_grad_with_a_tuple_or_a_bracket_list_returns_a_tuple(self):
        src = """
        x = tensor([1., 2.], dtype="float64", requires_grad=true)
        w = tensor([3., -1.], dtype="float64", requires_grad=true)
        y = sum(x * w^2)
        gx, gw = grad(y, (x, w), retain_graph=true)
        g = grad(y, [x, w])
        """
        v = run(src)[2].variables()
        close(v["gx"], [9, 1])  # w^2
        close(v["gw"], [6, -4])  # 2 x w
        assert isinstance(v["g"], tuple) and len(v["g"]) == 2
        close(v["g"][1], [6, -4])

    def test_backward_inputs_accumulates_only_into_those(self):
        src = """
        x = tensor(2.0, requires_grad=true); w = tensor(3.0, requires_grad=true)
        y = x * w
        y.backward(inputs=[w])
        """
        v = run(src)[2].variables()
        close(v["w"].grad, 2.0)
        assert v["x"].grad is None

    def test_a_bracket_literal_of_tensors_stacks_them_differentiably(self):
        src = """
        x = tensor(2.0, dtype="float64", requires_grad=true)
        v = [x^2, sin(x), 3]
        sum(v * tensor([1., 10., 100.], dtype="float64")).backward()
        """
        v = run(src)[2].variables()
        close(v["v"], [4, math.sin(2), 3])
        close(v["x"].grad, 2 * 2 + 10 * math.cos(2))


# ---------------------------------------------------------------------- functions with bodies
class TestFunctionBodies:
    def test_a_body_with_locals_and_return(self):
        assert ev("f(x) {\n  y = x * 2\n  return y + 1\n}\nf(3)") == 7

    def test_no_return_gives_none(self):
        assert ev("f(x) { y = x }\nf(1)") is None

    def test_return_ends_the_body_even_inside_a_loop(self):
        src = "first_over(t) {\n for i in range(100) { if i * i > t { return i } }\n return -1\n}"
        assert ev(src + "\nfirst_over(50)") == 8

    def test_locals_leave_the_session_untouched(self):
        _, _, session = run("y = 100\nf(x) { y = x; return y }\nr = f(1)")
        assert session.variables()["y"] == 100 and session.variables()["r"] == 1

    def test_a_body_reads_session_variables_at_call_time(self):
        assert ev("f(x) { return x + k }\nk = 1\na = f(1)\nk = 10\n(a, f(1))") == (2, 11)

    def test_a_body_calls_the_functions_defined_before_it(self):
        assert ev("sq(v) = v * v\nf(x) { return sq(x) + 1 }\nf(3)") == 10

    def test_recursion_is_refused(self):
        err = error_of("f(x) { return f(x) }")
        assert err.message == "'f' cannot call itself: recursion is not allowed"

    def test_an_error_in_a_body_names_the_call_site(self):
        err = error_of("f(x) {\n  return mm(x, x)\n}\ny = f(ones(2, 3))")
        assert err.kind == "shape"
        assert err.message.endswith("(in f(), called at <test>:4:5)")
        assert err.span.line == 2

    def test_jacobian_hessian_and_gradcheck_take_block_functions(self):
        src = """
        f(x) {
            y = x^3
            return sum(y)
        }
        g(x) { return x^2 }
        x = tensor([1., 2.], dtype="float64", requires_grad=true)
        H = hessian(f, x)
        J = jacobian(g, x)
        ok = gradcheck(f, x)
        """
        v = run(src)[2].variables()
        close(v["H"], np.diag([6.0, 12.0]))  # d2/dx2 sum(x^3) = diag(6x)
        close(v["J"], np.diag([2.0, 4.0]))
        assert v["ok"] is True

    def test_grad_inside_a_function_body_checked_by_gradcheck(self):
        # gradcheck runs f with grad mode on: a body that calls grad is checked correctly
        src = """
        df(x) {
            y = sum(sin(x))
            return sum(grad(y, x, create_graph=true))
        }
        x = tensor([0.3, 1.1], dtype="float64", requires_grad=true)
        d2 = grad(df(x), x)
        """
        close(var(src, "d2"), -np.sin([0.3, 1.1]))


# ------------------------------------------------------------------------------ grad mode
class TestGradModeBlocks:
    def test_no_grad_block_records_nothing(self):
        src = "x = tensor(1.0, requires_grad=true)\nno_grad { y = x * 2 }\ny.requires_grad"
        assert ev(src) is False

    def test_enable_grad_inside_no_grad(self):
        src = (
            "x = tensor(1.0, requires_grad=true)\nno_grad { enable_grad { y = x * 2 } }\ny.grad_fn"
        )
        assert ev(src).name() == "MulBackward"

    def test_no_grad_call_form_stays(self):
        assert ev("x = tensor(1.0, requires_grad=true)\nno_grad(x * 2).requires_grad") is False


# --------------------------------------------------------------------------------- limits
class TestLimits:
    def test_max_steps_stops_a_runaway_loop_at_the_loop(self):
        err = error_of("x = 1\nwhile true { x += 1 }", limits=Limits(max_steps=1000))
        assert err.kind == "limit"
        assert err.message == "the program ran more than 1,000 statements"
        assert (err.span.line, err.span.column) == (2, 1)

    def test_an_empty_loop_body_still_counts(self):
        assert error_of("while true { }", limits=Limits(max_steps=50)).kind == "limit"

    def test_timeout_stops_a_loop(self):
        err = error_of("while true { x = 1 }", limits=Limits(timeout=0.2))
        assert err.kind == "limit" and "time limit" in err.message
        assert err.span.line == 1

    def test_memory_stays_flat_in_a_loop_that_rebinds_tensors(self):
        import tracemalloc

        session = Session()
        session.run("x = tensor(1.0, requires_grad=true)", "<t>")
        src = "for i in range({n}) {{ y = ones(100) * x; loss = sum(y); loss.backward() }}"
        session.run(src.format(n=50), "<t>")
        tracemalloc.start()
        session.run(src.format(n=200), "<t>")
        small = tracemalloc.get_traced_memory()[0]
        session.run(src.format(n=2000), "<t>")
        large = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert large - small < 200_000


# ---------------------------------------------------------------------- Python habits
@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("def f(x):\n  return x", "'def' is Python"),
        ("for i in range(3):\n  i", "a block is written in braces"),
        ("x = 1; x++", "there is no '++' operator"),
        ("x = True", "did you mean 'true'?"),
        ("x = None", "did you mean 'none'?"),
        ("x = (1 +\n2\ny = 3", "'(' was never closed"),
    ],
)
def test_python_habits_get_the_ad_spelling(source, words):
    err = error_of(source)
    assert words in err.message, err.message


def test_import_of_a_python_module_points_at_ad_files():
    err = error_of("import numpy")
    assert err.message == "expected a file name in double quotes after 'import', found 'numpy'"
    assert "not Python modules" in err.hint


def test_an_unclosed_bracket_is_blamed_on_the_line_that_opened_it():
    err = error_of("x = [1, 2,\n3\ny = 4")
    assert (err.span.line, err.span.column) == (1, 5)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("break", "'break' outside a loop"),
        ("if true { continue }", "'continue' outside a loop"),
        ("return 1", "'return' outside a function"),
        ("f(x) { for i in range(2) { } ; break }", "'break' outside a loop"),
    ],
)
def test_structure_errors_before_anything_runs(source, message):
    outputs: list = []
    with pytest.raises(AdcliError) as info:
        Session().run('print("ran")\n' + source, "<test>", outputs.append)
    assert info.value.message == message
    assert outputs == []  # found before the program ran


def test_a_python_file_is_named_as_python(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("import torch\n")
    with pytest.raises(AdcliError) as info:
        Session().run_file(script)
    assert "is a Python file" in info.value.message


def test_eval_shows_the_value_displayed_by_a_top_level_if(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(
        [sys.executable, "-m", "adcli", "eval", "s = 0; for i in range(5) { s += i }; s"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "10"
    done = subprocess.run(
        [sys.executable, "-m", "adcli", "eval", "if 2 > 1 { 42 } else { 0 }"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "42"
