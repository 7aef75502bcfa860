"""No silent zeros (issue 10, items 2-4; contract v2 "Autograd semantics").

Differentiating what does not require grad is PyTorch's error; zeros only where
a tensor that requires grad does not depend on the input, and for vanishing
orders. gradcheck runs f with grad mode on; ``order=1`` frees the graph as
``grad`` does. Expected numbers are closed forms.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from adcli import engine as E
from adcli.cli.app import app
from adcli.errors import AdcliError
from adcli.lang.interpreter import Session

NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"
X = "x = tensor(1.5, requires_grad=true)\n"


def ev(source: str, **options):
    return Session(**options).run(source, "<test>")


def error_of(source: str) -> AdcliError:
    with pytest.raises(AdcliError) as info:
        ev(source)
    return info.value


# ----- item 2: an error, with the hint that says why -----------------------------------------------
def test_a_gradient_made_without_create_graph_cannot_be_differentiated():
    err = error_of(X + "g = grad(sin(x), x)\ngrad(g, x)")
    assert (err.kind, err.message) == ("value", NO_GRAD_FN)
    assert (err.span.line, err.span.column) == (3, 1)
    assert "create_graph=true" in err.hint and "grad()" in err.hint


def test_backward_of_a_grad_made_by_backward_says_create_graph():
    err = error_of(X + "sin(x).backward()\ng = x.grad\ng.backward()")
    assert (err.kind, err.message) == ("value", NO_GRAD_FN)
    assert "create_graph=true" in err.hint and "backward()" in err.hint


def test_with_create_graph_the_second_derivative_is_right():
    got = ev(X + "g = grad(sin(x), x, create_graph=true)\ngrad(g, x)").item()
    assert math.isclose(got, -math.sin(1.5), rel_tol=1e-6)


@pytest.mark.parametrize(
    "expr",
    ["grad(tensor(1.0), x)", "grad(3, x)", "grad(x.detach() * 2, x)", "tensor(2.0).backward()"],
)
def test_an_output_that_does_not_require_grad_is_an_error(expr):
    err = error_of(X + expr)
    assert (err.kind, err.message) == ("value", NO_GRAD_FN)
    # not a gradient: the hint does not claim it came from grad/backward
    assert "computed by" not in err.hint


def test_no_grad_around_a_function_that_calls_grad_is_an_error():
    err = error_of(X + "df(v) = grad(sum(sin(v)), v)\nno_grad(df(x))")
    assert (err.kind, err.message) == ("value", NO_GRAD_FN)


def test_zeros_only_where_y_requires_grad_but_not_through_x():
    src = X + "w = tensor(2.0, requires_grad=true)\n"
    assert ev(src + "grad(w * w, x)").item() == 0.0
    assert ev(src + "grad(w * x, x, order=2)").item() == 0.0  # a vanishing order
    assert ev(src + "grad(x^2, x, order=3)").item() == 0.0
    np.testing.assert_array_equal(ev(src + "f(v) = tensor(3.0)\njacobian(f, x)").numpy(), 0.0)
    np.testing.assert_array_equal(ev(src + "f(v) = v * 2\nhessian(f, x)").numpy(), 0.0)


def test_cli_orders_of_a_polynomial_vanish_as_zeros():
    result = CliRunner().invoke(
        app, ["eval", "2*x", "--at", "x=1.5", "--wrt", "x", "--order", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["derivatives"]["x"] == [2.0, 0.0, 0.0]


def test_cli_orders_of_a_constant_are_zeros():
    result = CliRunner().invoke(
        app, ["eval", "tensor(3.0)", "--at", "x=1.5", "--wrt", "x", "--order", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["derivatives"]["x"] == [0.0, 0.0]


def test_cli_several_names_share_one_graph():
    args = ["eval", "x^2 * y", "--at", "x=1.5", "--at", "y=2", "--wrt", "x", "--wrt", "y", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    grads = json.loads(result.stdout)["derivatives"]
    assert grads == {"x": [2 * 1.5 * 2], "y": [1.5**2]}


def test_the_engine_says_it_in_its_own_words():
    x = E.tensor(1.5, requires_grad=True)
    g = E.grad(E.sin(x), x)
    with pytest.raises(AdcliError) as info:
        E.grad(g, x)
    err = info.value
    assert err.message == NO_GRAD_FN
    assert err.hint is None  # keywords are the language's to add
    assert err.details == {"reason": "does_not_require_grad", "origin": "grad"}


# ----- item 3: gradcheck with grad mode on ---------------------------------------------------------
DF = "df(v) = grad(sum(3.0 * sin(v)), v, create_graph=true)\n"


def test_gradcheck_of_a_derivative_is_true():
    assert (
        ev("x = tensor([0.3, 1.1, -2.0], requires_grad=true)\n" + DF + "gradcheck(df, x)") is True
    )


def test_gradcheck_inside_no_grad_still_checks():
    src = "x = tensor([0.3, 1.1], requires_grad=true)\n" + DF
    assert ev(src + "no_grad(gradcheck(df, x))") is True


def test_gradcheck_still_catches_a_wrong_gradient():
    # detach hides half of d(v^2)/dv: analytic v, numeric 2v.
    assert (
        ev("x = tensor([0.5, 2.0], requires_grad=true)\nf(v) = v * detach(v)\ngradcheck(f, x)")
        is False
    )


def test_jacobian_of_the_derivative_agrees_with_the_closed_form():
    xs = [0.3, 1.1]
    got = ev(
        'x = tensor([0.3, 1.1], dtype="float64", requires_grad=true)\n' + DF + "jacobian(df, x)"
    )
    np.testing.assert_allclose(got.numpy(), np.diag([-3 * math.sin(v) for v in xs]), rtol=1e-12)


# ----- item 4: order=1 is grad ---------------------------------------------------------------------
def test_order_one_frees_the_graph_as_grad_does():
    for first in ("grad(o, x)", "grad(o, x, order=1)"):
        err = error_of(X + f"o = x^3\na = {first}\ngrad(o, x)")
        assert err.message.startswith("Trying to backward through the graph a second time")
        assert "retain_graph=true" in err.hint
        assert "freed by the grad at <test>:3:1" in err.hint
        assert "use grad(" not in err.hint  # the old advice, to someone already using grad


def test_order_one_with_retain_graph_keeps_it():
    got = ev(X + "o = x^3\na = grad(o, x, order=1, retain_graph=true)\ngrad(o, x)").item()
    assert math.isclose(got, 3 * 1.5**2, rel_tol=1e-6)


def test_higher_orders_read_the_same_graph_again():
    src = X + "o = sin(x)\n"
    got = ev(src + "a = grad(o, x, order=2)\nb = grad(o, x, order=3)\nb").item()
    assert math.isclose(got, -math.cos(1.5), rel_tol=1e-5)


# ----- the engine's words: no flags, no language keywords ------------------------------------------
def test_engine_errors_name_no_flags_or_keywords():
    E.STATE.max_elements, saved = 10, E.STATE.max_elements
    try:
        with pytest.raises(AdcliError) as info:
            E.ones(11)
    finally:
        E.STATE.max_elements = saved
    err = info.value
    assert err.hint is None and err.details["limit"] == "max_elements"
    assert err.details["requested"] == 11 and err.details["maximum"] == 10
    x = E.tensor(1.0)
    with pytest.raises(AdcliError) as info:
        E.grad(x * 2, x)
    assert info.value.hint is None and "requires_grad" not in info.value.message
    y = E.tensor(1.0, requires_grad=True)
    z = y * y
    E.grad(z, y)
    with pytest.raises(AdcliError) as info:
        E.grad(z, y)
    assert info.value.hint is None and info.value.details["reason"] == "graph_freed"


def test_the_language_adds_its_keywords():
    err = error_of("x = tensor(1.0)\ngrad(x * 2, x)")
    assert err.hint == "create it with requires_grad=true"


def test_the_engine_names_python_types_and_the_language_its_own():
    with pytest.raises(AdcliError) as info:
        E.add("s", 1)
    assert info.value.message == "expected a tensor or a number, got str"
    assert error_of('tensor(1.0)["a"]').message.endswith("got a string")


# ----- siblings found while searching ---------------------------------------------------------------
def test_jacobian_of_a_function_that_forgot_create_graph_is_an_error_not_zeros():
    err = error_of(
        "x = tensor([1.0, 2.0], requires_grad=true)\ndf(v) = grad(sum(sin(v)), v)\njacobian(df, x)"
    )
    assert err.message == NO_GRAD_FN and "create_graph=true" in err.hint


def test_gradcheck_of_a_function_that_forgot_create_graph_is_an_error_not_true():
    err = error_of(
        "x = tensor([1.0, 2.0], requires_grad=true)\ndf(v) = grad(sum(sin(v)), v)\ngradcheck(df, x)"
    )
    assert err.message == NO_GRAD_FN


def test_cli_wrt_of_a_gradient_without_a_graph_is_an_error():
    result = CliRunner().invoke(app, ["eval", "grad(x^3, x)", "--at", "x=1.5", "--wrt", "x"])
    assert result.exit_code == 1
    assert NO_GRAD_FN in result.stderr and "create_graph=true" in result.stderr
    ok = CliRunner().invoke(
        app, ["eval", "grad(x^3, x, create_graph=true)", "--at", "x=1.5", "--wrt", "x", "--json"]
    )
    assert json.loads(ok.stdout)["derivatives"]["x"] == [6 * 1.5]


def test_hessian_of_a_constant_is_zeros_of_the_inputs_dtype():
    got = ev(
        'x = tensor([1.0, 2.0], dtype="float64", requires_grad=true)\n'
        "f(v) = tensor(3.0)\nhessian(f, x)"
    )
    assert got.shape == (2, 2) and got.dtype == "float64"
    np.testing.assert_array_equal(got.numpy(), 0.0)


def test_jacobian_with_no_output_elements_has_the_inputs_dtype():
    x = E.tensor([[1.0, 2.0]], dtype="float64", requires_grad=True)
    j = E.jacobian(lambda v: E.sum(v, 0)[0:0], x)
    assert j.shape == (0, 1, 2) and j.dtype == "float64"


def test_check_of_a_program_that_calls_grad_evaluates_it_with_grad_mode_on():
    args = ["eval", "grad(x^3, x, create_graph=true)", "--at", "x=1.5", "--wrt", "x"]
    result = CliRunner().invoke(app, [*args, "--order", "2", "--check", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["derivatives"]["x"] == [6 * 1.5, 6.0]  # d/dx 3x^2 = 6x, then 6
    assert got["check"]["x"]["finite_differences"] is True
    assert got["check"]["x"]["max_disagreement"] < 1e-8
