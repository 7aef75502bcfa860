"""Errors of the .ad language: every kind, with its message, line, column and caret.

Each error is rendered through :func:`adcli.cli.render.error_text` (what the CLI
prints on standard error) and the caret line is checked character by character:
``^`` under the first character of the culprit and ``~`` under the rest.
"""

from __future__ import annotations

import numpy as np
import pytest

from adcli import backend
from adcli.backend import cuda_available
from adcli.cli.render import error_text
from adcli.errors import KINDS, AdcliError
from adcli.lang.interpreter import Limits, Session


def failure(source: str, **session_options) -> tuple[AdcliError, list[str]]:
    """The error ``source`` fails with, and its rendering as plain lines."""
    session = Session(**session_options)
    with pytest.raises(AdcliError) as info:
        session.run(source, "<test>", lambda output: None)
    err = info.value
    return err, error_text(err, session.source_lines).plain.split("\n")


def expect(
    source: str,
    kind: str,
    message: str,
    line: int,
    column: int,
    width: int = 1,
    **session_options,
) -> AdcliError:
    """``source`` fails with this error; the rendering puts a caret of ``width`` at the column."""
    err, lines = failure(source, **session_options)
    assert err.kind == kind, (err.kind, err.message)
    assert err.message == message
    assert err.code == KINDS[kind]
    assert (err.span.file, err.span.line, err.span.column) == ("<test>", line, column)
    assert lines[0] == f"<test>:{line}:{column}: error: {message}"
    assert lines[1] == source.split("\n")[line - 1]
    assert lines[2] == " " * (column - 1) + "^" + "~" * (width - 1)
    return err


@pytest.fixture
def second_device(monkeypatch):
    """A device named cuda:7 that NumPy backs: device errors without a GPU."""
    monkeypatch.setitem(backend._backends, "cuda:7", backend.Backend("cuda:7", np, False, None))
    return "cuda:7"


# ------------------------------------------------------------------------------------ syntax
@pytest.mark.parametrize(
    ("source", "message", "line", "column", "width"),
    [
        ("x = 1 +* 2", "expected an expression after '+', found '*'", 1, 8, 1),
        ("1 +", "expected an expression after '+'", 1, 4, 1),
        ("x = 1\ny = (1 + 2", "'(' was never closed", 2, 5, 1),
        ("a = [1, 2", "'[' was never closed", 1, 5, 1),
        ('x = "abc', "unterminated string", 1, 5, 4),
        ("x = 1 $ 2", "invalid character '$'", 1, 7, 1),
        ("1 = 2", "cannot assign to a number", 1, 1, 1),
        ("f(1) = 2", "cannot assign to a call with non-name arguments", 1, 3, 1),
        ("sum(dim=0, ones(2))", "positional argument after keyword argument", 1, 12, 7),
    ],
)
def test_syntax_errors(source, message, line, column, width):
    expect(source, "syntax", message, line, column, width)


def test_a_syntax_error_runs_nothing():
    session = Session()
    with pytest.raises(AdcliError):
        session.run("a = 1\nb = (", "<test>")
    assert "a" not in session.variables()


def test_a_closing_bracket_that_was_never_opened():
    err, lines = failure("x = 1)")
    assert err.kind == "syntax" and ")" in err.message
    assert (err.span.line, err.span.column) == (1, 6)
    assert lines[2] == "     ^"


# -------------------------------------------------------------------------------------- name
@pytest.mark.parametrize(
    ("source", "message", "line", "column", "width"),
    [
        ("y = sqr", "unknown name 'sqr'; did you mean 'sqrt'?", 1, 5, 3),
        ("y = sqr(2)", "unknown function 'sqr'; did you mean 'sqrt'?", 1, 5, 3),
        ("alpha = 1\nalpah + 1", "unknown name 'alpah'; did you mean 'alpha'?", 2, 1, 5),
        (
            "y = tranpose(ones(2))",
            "unknown function 'tranpose'; did you mean 'transpose'?",
            1,
            5,
            8,
        ),
        ("zzzqqq", "unknown name 'zzzqqq'", 1, 1, 6),
        ("x = ones(2)\nx.gard", "a tensor has no attribute 'gard'; did you mean 'grad'?", 2, 3, 4),
        ("x = ones(2)\ny = x.sums()", "unknown method '.sums()'; did you mean 'sum'?", 2, 7, 4),
        ("f(x) = f(x)", "'f' cannot call itself: recursion is not allowed", 1, 8, 1),
        ("f(v) = v\nsqrt(v) = v", "cannot redefine the builtin 'sqrt'", 2, 1, 4),
    ],
)
def test_name_errors(source, message, line, column, width):
    expect(source, "name", message, line, column, width)


def test_a_function_body_may_not_call_a_later_function():
    expect("f(v) = g(v)\ng(v) = v", "name", "unknown name 'g' in the body of 'f'", 1, 8)


# -------------------------------------------------------------------------------------- type
@pytest.mark.parametrize(
    ("source", "message", "line", "column", "width"),
    [
        ("sqrt(1, 2)", "sqrt() takes 1 argument, but 2 were given", 1, 1, 10),
        ("y = sqrt()", "sqrt() takes 1 argument, but 0 were given", 1, 5, 6),
        ("zero_grad()", "zero_grad() takes at least 1 argument, but 0 were given", 1, 1, 11),
        ("linspace(0, 1)", "linspace() takes 3 arguments, but 2 were given", 1, 1, 14),
        ("sum(ones(2), dimm=0)", "sum() got an unexpected keyword argument 'dimm'", 1, 1, 20),
        (
            "x = ones(2)\ny = x.sum(dimm=1)",
            ".sum() got an unexpected keyword argument 'dimm'",
            2,
            5,
            13,
        ),
        ("f(v) = v\nf(1, 2, 3)", "f() takes 1 argument, but 3 were given", 2, 1, 10),
        ("f(v) = v\nf(w=1)", "f() got an unexpected keyword argument 'w'", 2, 1, 6),
        ('true + "a"', "unsupported operand types for +: a bool and a string", 1, 6, 1),
        ("x = 1\ny = x(2)", "'x' is a number, not a function", 2, 5, 1),
        ("x = 1\ny = x.grad", "a number has no attribute 'grad'", 2, 7, 4),
        ("ones(2)[0.5]", "an index must be a whole number, got a number", 1, 9, 3),
        ('[1, "a"]', "a bracket literal holds numbers, not a string", 1, 5, 3),
        ("2 @ 3", "@ needs tensors, not numbers", 1, 3, 1),
    ],
)
def test_type_errors(source, message, line, column, width):
    expect(source, "type", message, line, column, width)


# ------------------------------------------------------------------------------------- shape
@pytest.mark.parametrize(
    ("source", "message", "line", "column", "width"),
    [
        # Operators: the caret is under the operator.
        (
            "a = ones(2)\nb = a + ones(3)",
            (
                "shapes [2] and [3] do not broadcast in add: the size of tensor a (2) must match "
                "the size of tensor b (3) at non-singleton dimension 0"
            ),
            2,
            7,
            1,
        ),
        (
            "y = tensor([1, 2]) @ tensor([[1, 2, 3]])",
            "matmul: shapes [2] and [1, 3] cannot be multiplied (2 != 1)",
            1,
            20,
            1,
        ),
        # Calls: the caret runs under the whole call.
        (
            "x = 1\ny = mm(ones(2, 3), ones(2, 3))",
            "mm: shapes [2, 3] and [2, 3] cannot be multiplied (3 != 2)",
            2,
            5,
            26,
        ),
        (
            "reshape(ones(6), 4, 2)",
            "shape [4, 2] is invalid for input of size 6",
            1,
            1,
            22,
        ),
        # Indexing: the caret is under the indexed expression.
        ("x = ones(2)\nx[5]", "index 5 is out of bounds for dimension 0 with size 2", 2, 1, 4),
        (
            "x = ones(2, 2)\ny = x[0, 0, 0]",
            "too many indices for a tensor of dimension 2",
            2,
            5,
            10,
        ),
    ],
)
def test_shape_errors(source, message, line, column, width):
    expect(source, "shape", message, line, column, width)


def test_a_shape_error_inside_a_function_points_at_the_call_in_its_body():
    expect(
        "f(a, b) = mm(a, b)\ny = f(ones(2, 3), ones(2, 3))",
        "shape",
        "mm: shapes [2, 3] and [2, 3] cannot be multiplied (3 != 2)",
        1,
        11,
        8,
    )


# ------------------------------------------------------------------------------------ device
def test_an_unknown_device():
    expect(
        'x = ones(2, device="tpu")',
        "device",
        "unknown device 'tpu': use 'cpu', 'cuda' or 'cuda:N'",
        1,
        5,
        21,
    )


def test_devices_mixed_by_an_operator_name_both_under_the_operator(second_device):
    expect(
        'a = ones(2)\nb = ones(2, device="cuda:7")\nc = a + b',
        "device",
        "Expected all tensors to be on the same device, but found at least two devices, "
        "cpu and cuda:7! (in add)",
        3,
        7,
        1,
    )


def test_devices_mixed_in_a_call_name_both_under_the_call(second_device):
    expect(
        'b = ones(2, 2, device="cuda:7")\nc = mm(ones(2, 2), b)',
        "device",
        "Expected all tensors to be on the same device, but found at least two devices, "
        "cpu and cuda:7! (in mm)",
        2,
        5,
        17,
    )


def test_moving_to_the_same_device_fixes_a_mismatch(second_device):
    session = Session()
    value = session.run('b = ones(2, device="cuda:7")\n(ones(2) + b.cpu()).device', "<test>")
    assert value == "cpu"


@pytest.mark.skipif(cuda_available(), reason="checks the error where there is no GPU")
def test_cuda_without_a_gpu():
    err, lines = failure("x = ones(2)\ny = x.cuda()")
    assert err.kind == "device"
    assert err.message.startswith("device 'cuda' needs ")
    assert (err.span.line, err.span.column) == (2, 5)
    assert lines[2] == "    ^~~~~~~~"
    err, _ = failure('ones(2, device="cuda")')
    assert err.kind == "device"


# ------------------------------------------------------------------------------------ assert
def test_a_failed_assert_without_a_message():
    expect("x = 1\nassert x == 2", "assert", "assertion failed: x == 2", 2, 1, 13)


def test_a_failed_assert_with_a_message():
    expect('x = 1\n\n  assert x > 2, "too small"', "assert", "too small", 3, 3, 25)


def test_a_failed_assert_on_some_elements():
    expect(
        "assert tensor([1., 2.]) < 2",
        "assert",
        "assertion failed: tensor([1., 2.]) < 2",
        1,
        1,
        27,
    )


def test_assert_on_a_string_is_a_type_error():
    expect('assert "yes"', "type", "assert needs a bool, number or tensor, got a string", 1, 8, 5)


# ------------------------------------------------------------------------------------- value
@pytest.mark.parametrize(
    ("source", "message", "line", "column", "width"),
    [
        (
            "x = tensor([1., 2.], requires_grad=true)\ny = x^2\ny.backward()",
            "grad can be implicitly created only for scalar outputs",
            3,
            1,
            12,
        ),
        (
            "x = tensor([1., 2.], requires_grad=true)\nbackward(x^2)",
            "grad can be implicitly created only for scalar outputs",
            2,
            1,
            13,
        ),
        (
            "backward(ones(2).sum())",
            "element 0 of tensors does not require grad and does not have a grad_fn",
            1,
            1,
            23,
        ),
        (
            "grad(sum(ones(2)), ones(2))",
            "One of the differentiated Tensors does not require grad",
            1,
            1,
            27,
        ),
        ('import "data.txt"', "import takes only .ad files, not 'data.txt'", 1, 8, 10),
        ("zeros(-1)", "a shape cannot have a negative size (-1)", 1, 1, 9),
        (
            'ones(2, dtype="float16")',
            "unknown dtype 'float16': use 'float32', 'float64', 'int64' or 'bool'",
            1,
            1,
            24,
        ),
        (
            "x = tensor([1.], requires_grad=true)\ngrad(x, x, order=0)",
            "order must be at least 1, got 0",
            2,
            1,
            19,
        ),
    ],
)
def test_value_errors(source, message, line, column, width):
    expect(source, "value", message, line, column, width)


def test_a_second_backward_is_a_value_error_at_the_second_call():
    source = "x = tensor(2.0, requires_grad=true)\ny = x^2\ny.backward()\ny.backward()"
    err, lines = failure(source)
    assert err.kind == "value"
    assert err.message.startswith("Trying to backward through the graph a second time")
    assert "retain_graph=True" in err.message
    assert (err.span.line, err.span.column) == (4, 1)
    assert lines[2] == "^~~~~~~~~~~~"
    assert "<test>:3:1" in lines[-1]  # the hint names the backward that freed the graph


# ------------------------------------------------------------------------------------- limit
@pytest.mark.parametrize(
    ("limits", "source", "message", "line", "column", "width"),
    [
        (
            Limits(max_elements=100),
            "x = 1\ny = zeros(1000)",
            "tensor of shape [1000] would hold 1,000 elements, over the limit of 100",
            2,
            5,
            11,
        ),
        (
            Limits(max_bytes=1000),
            "x = zeros(1000)",
            "a tensor of shape [1000] would take 4,000 bytes, over the limit of 1,000",
            1,
            5,
            11,
        ),
        (
            Limits(max_call_depth=3),
            "f(x) = x\ng(x) = f(x)\nh(x) = g(x)\nk(x) = h(x)\nk(1)",
            "function calls nested too deeply (limit 3)",
            2,
            8,
            4,
        ),
        (
            Limits(max_calls=10),
            "f(x) = x\ng(x) = f(x) + f(x)\nh(x) = g(x) + g(x)\nk(x) = h(x) + h(x)\nk(1)",
            "this statement made more than 10 function calls",
            2,
            8,
            4,
        ),
        (
            Limits(max_order=4),
            "x = tensor([1.], requires_grad=true)\ngrad(x^9, x, order=5)",
            "derivative order 5 is over the limit of 4",
            2,
            1,
            21,
        ),
    ],
)
def test_limit_errors(limits, source, message, line, column, width):
    expect(source, "limit", message, line, column, width, limits=limits)


def test_an_impossible_allocation_is_a_limit_error_with_a_hint():
    err, lines = failure("zeros(100000, 100000, 100000)")
    assert err.kind == "limit"
    assert "would take 4,000,000,000,000,000 bytes" in err.message
    assert lines[2] == "^" + "~" * 28
    assert lines[3].startswith("hint: ")


def test_nesting_too_deep_is_a_limit_error():
    err, _ = failure("x = [[[[[[[1]]]]]]]", limits=Limits(max_depth=5))
    assert err.kind == "limit" and "nested too deeply" in err.message
    assert err.span.line == 1
    err, _ = failure("x = " + "-" * 50 + "1", limits=Limits(max_expr_depth=20))
    assert err.kind == "limit" and "nested too deeply" in err.message


# ------------------------------------------------------------------------------- every kind
def test_every_kind_is_covered_here():
    covered = {"syntax", "name", "type", "shape", "device", "assert", "value", "limit"}
    assert covered == set(KINDS)


def test_an_error_in_a_later_statement_keeps_earlier_bindings():
    session = Session()
    with pytest.raises(AdcliError):
        session.run("a = 1\nb = sqr(2)\nc = 3", "<test>")
    assert session.lookup("a") == 1
    assert "c" not in session.variables()


def test_tabs_are_kept_so_the_caret_lines_up():
    err, lines = failure("\ty = sqr")
    assert (err.span.line, err.span.column) == (1, 6)
    assert lines[2] == "\t    ^~~"


# ------------------------------------------------------------------- functions passed as values
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("jacobian(no_grad, ones(2))", "no_grad() cannot be passed as a function"),
        ("hessian(no_grad, ones(2))", "no_grad() cannot be passed as a function"),
        ("jacobian(grad, ones(2))", "grad() takes 2 to 3 arguments, but 1 was given"),
        ("f(x, y) = x * y\njacobian(f, ones(2))", "f() takes 2 arguments, but 1 was given"),
        ("f(x) = x\ngradcheck(f, ones(2), ones(2))", "f() takes 1 argument, but 2 were given"),
    ],
)
def test_a_function_passed_with_the_wrong_arity_is_a_type_error(source, message):
    err, lines = failure(source)
    assert (err.kind, err.message) == ("type", message)
    last = source.split("\n")[-1]
    assert (err.span.line, err.span.column) == (source.count("\n") + 1, 1)
    assert lines[2] == "^" + "~" * (len(last) - 1)


def test_a_builtin_passed_as_a_function_works():
    session = Session()
    value = session.run("jacobian(sqrt, tensor([1., 4.]))", "<test>")
    np.testing.assert_allclose(value.numpy(), [[0.5, 0], [0, 0.25]])
