"""jacobian, hessian, gradcheck and nth-order gradients against closed forms, and deep
chains (iterative backward, freeing saved values)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import adcli.engine as E
from adcli.engine.autodiff import gradcheck, hessian, jacobian
from adcli.engine.ops import TABLE
from adcli.engine.taylor import nth_grads
from adcli.engine.tensor import apply
from adcli.errors import AdcliError


def f64(values, requires_grad=False):
    return E.tensor(values, dtype="float64", requires_grad=requires_grad)


# ----- jacobian and hessian -----------------------------------------------------------------------


def test_jacobian_of_elementwise_square_is_diagonal():
    x = f64([1.0, -2.0, 3.0])
    j = jacobian(lambda t: t * t, x)
    assert j.shape == (3, 3)
    np.testing.assert_allclose(j.numpy(), np.diag(2 * x.numpy()))


def test_jacobian_of_a_linear_map_is_the_matrix():
    a = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    j = jacobian(lambda t: E.matmul(f64(a), t), f64([0.3, -0.7]))
    assert j.shape == (3, 2)
    np.testing.assert_allclose(j.numpy(), a)


def test_jacobian_shape_is_output_shape_then_input_shape():
    x = f64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    j = jacobian(lambda t: E.sum(t, dim=0), x)
    assert j.shape == (3, 2, 3)
    expected = np.zeros((3, 2, 3))
    for i in range(3):
        expected[i, :, i] = 1.0
    np.testing.assert_array_equal(j.numpy(), expected)


def test_jacobian_of_a_scalar_function_is_its_gradient():
    x = f64([0.5, 1.0])
    j = jacobian(lambda t: E.sum(E.sin(t)), x)
    assert j.shape == (2,)
    np.testing.assert_allclose(j.numpy(), np.cos(x.numpy()))


def test_jacobian_of_softmax_like_function():
    xv = np.array([0.1, -0.4, 0.8])

    def softmax(t):
        e = E.exp(t)
        return e / E.sum(e)

    j = jacobian(softmax, f64(xv))
    s = np.exp(xv) / np.exp(xv).sum()
    np.testing.assert_allclose(j.numpy(), np.diag(s) - np.outer(s, s), atol=1e-12)


def test_jacobian_does_not_touch_the_input():
    x = f64([1.0, 2.0], requires_grad=True)
    jacobian(lambda t: t * 3.0, x)
    assert x.grad is None


def test_hessian_of_a_cubic_is_diagonal():
    x = f64([1.0, -2.0, 0.5])
    h = hessian(lambda t: E.sum(t**3), x)
    assert h.shape == (3, 3)
    np.testing.assert_allclose(h.numpy(), np.diag(6 * x.numpy()))


def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose():
    a = np.array([[1.0, 2.0], [0.5, -3.0]])
    h = hessian(lambda t: E.dot(t, E.matmul(f64(a), t)), f64([0.3, 0.9]))
    np.testing.assert_allclose(h.numpy(), a + a.T)


def test_hessian_of_a_linear_function_is_zero():
    h = hessian(lambda t: E.sum(t * 2.0), f64([1.0, 2.0]))
    np.testing.assert_array_equal(h.numpy(), np.zeros((2, 2)))


def test_hessian_of_a_matrix_input_has_doubled_shape():
    x = f64([[1.0, 2.0], [3.0, 4.0]])
    h = hessian(lambda t: E.sum(t * t) * 0.5, x)
    assert h.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(h.numpy().reshape(4, 4), np.eye(4))


def test_hessian_of_log_sum_exp():
    xv = np.array([0.2, -1.0, 0.7])
    h = hessian(lambda t: E.log(E.sum(E.exp(t))), f64(xv))
    s = np.exp(xv) / np.exp(xv).sum()
    np.testing.assert_allclose(h.numpy(), np.diag(s) - np.outer(s, s), atol=1e-12)


def test_hessian_needs_a_scalar_function():
    with pytest.raises(AdcliError) as info:
        hessian(lambda t: t * t, f64([1.0, 2.0]))
    assert info.value.kind == "value"


# ----- gradcheck -------------------------------------------------------------------------------


def test_gradcheck_passes_for_correct_functions():
    assert gradcheck(lambda t: E.sin(t) * t, f64([0.3, -1.2, 2.0]))["ok"]
    assert gradcheck(lambda a, b: E.mm(a, b), [E.randn(2, 3), E.randn(3, 2)])["ok"]
    result = gradcheck(lambda t: E.sum(E.exp(t)), E.randn(4))  # float32 in: checked in float64
    assert result["ok"]
    assert result["max_abs_error"] < 1e-6


def test_gradcheck_detects_a_wrong_rule():
    wrong = dataclasses.replace(TABLE["sin"], vjps=(lambda F, g, out, a: g * F.sin(a),))
    result = gradcheck(lambda t: apply(wrong, (t,)), f64([0.3, -1.2, 2.0]))
    assert not result["ok"]
    assert result["max_abs_error"] > 0.1
    # the table itself is untouched
    assert gradcheck(lambda t: E.sin(t), f64([0.3, -1.2, 2.0]))["ok"]


def test_gradcheck_detects_a_wrong_broadcasting_rule():
    wrong = dataclasses.replace(
        TABLE["mul"], vjps=(TABLE["mul"].vjps[0], lambda F, g, out, a, b: g)
    )
    result = gradcheck(lambda a, b: apply(wrong, (a, b)), [f64([1.0, 2.0]), f64([3.0, 4.0])])
    assert not result["ok"]


# ----- nth order ---------------------------------------------------------------------------------


def test_nth_grads_of_exp_are_all_exp():
    x = f64([0.1, 0.5, -0.3], requires_grad=True)
    for d in nth_grads(E.exp(x), x, 4):
        np.testing.assert_allclose(d.numpy(), np.exp(x.numpy()), rtol=1e-12)


def test_nth_grads_of_sin_cycle():
    x = f64([0.1, 0.5, -0.3], requires_grad=True)
    xv = x.numpy()
    d1, d2, d3, d4 = nth_grads(E.sin(x), x, 4)
    np.testing.assert_allclose(d1.numpy(), np.cos(xv))
    np.testing.assert_allclose(d2.numpy(), -np.sin(xv))
    np.testing.assert_allclose(d3.numpy(), -np.cos(xv))
    np.testing.assert_allclose(d4.numpy(), np.sin(xv))


def test_nth_grads_of_power_chain():
    x = f64([0.7, 1.3], requires_grad=True)
    xv = x.numpy()
    d1, d2, d3 = nth_grads(E.sqrt(x) * E.log(x), x, 3)
    # f = sqrt(x) log x
    f1 = (np.log(xv) + 2) / (2 * np.sqrt(xv))
    f2 = -np.log(xv) / (4 * xv**1.5)
    f3 = (3 * np.log(xv) - 2) / (8 * xv**2.5)
    np.testing.assert_allclose(d1.numpy(), f1, rtol=1e-12)
    np.testing.assert_allclose(d2.numpy(), f2, rtol=1e-12)
    np.testing.assert_allclose(d3.numpy(), f3, rtol=1e-10)


def test_nth_grads_of_sigmoid_and_tanh():
    xv = np.array([-1.5, 0.2, 2.0])
    x = f64(xv, requires_grad=True)
    s = 1 / (1 + np.exp(-xv))
    d1, d2 = nth_grads(E.sigmoid(x), x, 2)
    np.testing.assert_allclose(d1.numpy(), s * (1 - s), rtol=1e-12)
    np.testing.assert_allclose(d2.numpy(), s * (1 - s) * (1 - 2 * s), rtol=1e-10)
    t = np.tanh(xv)
    d1, d2 = nth_grads(E.tanh(x), x, 2)
    np.testing.assert_allclose(d1.numpy(), 1 - t**2, rtol=1e-12)
    np.testing.assert_allclose(d2.numpy(), -2 * t * (1 - t**2), rtol=1e-10)


def test_nth_grads_order_must_be_positive():
    x = f64([1.0], requires_grad=True)
    with pytest.raises(AdcliError) as info:
        nth_grads(x * x, x, 0)
    assert info.value.kind == "value"


def test_higher_order_mixed_partials():
    x = f64([0.5], requires_grad=True)
    y = f64([1.5], requires_grad=True)
    f = x**2 * E.sin(y)
    gx = E.grad(E.sum(f), x, create_graph=True)  # 2x sin y
    gxy = E.grad(E.sum(gx), y, create_graph=True)  # 2x cos y
    gxyy = E.grad(E.sum(gxy), y)  # -2x sin y
    np.testing.assert_allclose(gxy.numpy(), 2 * 0.5 * np.cos([1.5]))
    np.testing.assert_allclose(gxyy.numpy(), -2 * 0.5 * np.sin([1.5]))


# ----- deep chains ------------------------------------------------------------------------------

DEPTH = 100_000


def test_deep_multiplication_chain_backward():
    x = f64(0.5, requires_grad=True)
    y = x
    for _ in range(DEPTH):
        y = y * 1.0000001
    np.testing.assert_allclose(y.item(), 0.5 * 1.0000001**DEPTH, rtol=1e-9)
    y.backward()  # no RecursionError
    np.testing.assert_allclose(x.grad.item(), 1.0000001**DEPTH, rtol=1e-9)
    assert y.grad_fn.freed and y.grad_fn.saved is None


def test_deep_sin_chain_gradient_matches_the_product_of_cosines():
    x = f64(0.5, requires_grad=True)
    y = x
    for _ in range(DEPTH):
        y = E.sin(y)
    g = E.grad(y, x)
    v, d = 0.5, 1.0
    for _ in range(DEPTH):
        d *= math.cos(v)
        v = math.sin(v)
    np.testing.assert_allclose(y.item(), v, rtol=1e-12)
    np.testing.assert_allclose(g.item(), d, rtol=1e-9)


def test_deep_chain_with_create_graph():
    x = f64(0.5, requires_grad=True)
    y = x
    for _ in range(DEPTH // 4):
        y = y * 1.000001
    g = E.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.item(), 1.000001 ** (DEPTH // 4), rtol=1e-9)
    # A constant-coefficient gradient does not require grad: differentiating it
    # is PyTorch's error, while the nth derivative says zero.
    assert not g.requires_grad
    with pytest.raises(AdcliError, match="does not require grad"):
        E.grad(g, x)
    np.testing.assert_array_equal(E.nth_grads(y, x, 2)[-1].numpy(), 0.0)


def test_saved_values_freed_along_a_chain_unless_retained():
    x = f64([0.1, 0.2], requires_grad=True)
    y = x
    for _ in range(50):
        y = E.sin(y) * 1.01
    loss = E.sum(y)
    nodes = []
    stack = [loss.grad_fn]
    seen = set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen or not hasattr(node, "saved"):
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(node.next)
    holding = [n for n in nodes if n.saved is not None or n.out_data is not None]
    assert len(holding) >= 100
    loss.backward(retain_graph=True)
    assert all(not n.freed for n in nodes)
    assert all(n.saved is not None or n.out_data is not None for n in holding)
    loss.backward()
    assert all(n.freed for n in holding)
    assert all(n.saved is None and n.out_data is None for n in holding)
