"""The autograd tutorial's closed forms (shared/reference/pytorch-autograd-tutorial.txt),
run on the engine from Python."""

from __future__ import annotations

import numpy as np

import adcli.engine as E
from adcli.engine.taylor import nth_grads


def f64(values, requires_grad=False):
    return E.tensor(values, dtype="float64", requires_grad=requires_grad)


def test_grad_of_the_norm_is_x_over_norm():
    E.manual_seed(0)
    x = E.randn(10, requires_grad=True)
    assert x.grad is None and x.grad_fn is None
    out = E.sqrt(E.sum(E.pow(x, 2), dim=0))
    out.backward(create_graph=True)
    xv = x.numpy().astype(np.float64)
    np.testing.assert_allclose(x.grad.numpy(), xv / np.linalg.norm(xv), rtol=1e-5, atol=1e-6)
    assert out.grad_fn.name() == "SqrtBackward"
    # zeroing through .data zeroes the gradient in place
    grad = x.grad
    x.grad.data.zero_()
    assert x.grad is grad
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(10))


def test_mean_log_example_matches_closed_form():
    E.manual_seed(1)
    x = E.randn(10, dtype="float64", requires_grad=True)
    y = E.randn(10, dtype="float64", requires_grad=True)
    z = E.randn(10, dtype="float64")
    out = E.mean(E.log(x**2 + y**2) + z * x * y)
    out.backward()
    xv, yv, zv = x.numpy(), y.numpy(), z.numpy()
    n = 10
    np.testing.assert_allclose(x.grad.numpy(), (2 * xv / (xv**2 + yv**2) + zv * yv) / n, rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), (2 * yv / (xv**2 + yv**2) + zv * xv) / n, rtol=1e-12)
    assert z.grad is None


def test_mm_backward_gives_the_rows_of_m_transposed():
    u = E.tensor([[2, 1]], requires_grad=True)
    m = E.tensor([[1, 2], [3, 4]])
    y = E.mm(u, m)
    np.testing.assert_array_equal(y.numpy(), [[5, 8]])
    assert y.grad_fn.name() == "MmBackward"
    y.backward(E.tensor([[1, 0]]), create_graph=True)
    np.testing.assert_array_equal(u.grad.numpy(), [[1, 3]])
    u.grad.data.zero_()
    y.backward(E.tensor([[0, 1]]), create_graph=True)
    np.testing.assert_array_equal(u.grad.numpy(), [[2, 4]])
    u.grad.data.zero_()
    np.testing.assert_array_equal(u.grad.numpy(), [[0, 0]])


def test_mm_without_zeroing_accumulates():
    u = E.tensor([[2, 1]], requires_grad=True)
    y = u @ E.tensor([[1, 2], [3, 4]])
    y.backward(E.tensor([[1, 0]]), retain_graph=True)
    y.backward(E.tensor([[0, 1]]))
    np.testing.assert_array_equal(u.grad.numpy(), [[3, 7]])


def test_second_derivative_through_x_grad_with_shared_storage():
    E.manual_seed(2)
    x = E.randn(2, 2, requires_grad=True)
    y = E.randn(2, 2, requires_grad=True)
    out = x**2 + x * y + y**2
    out.backward(E.ones(2, 2), create_graph=True)
    x_grad = x.grad
    np.testing.assert_allclose(x_grad.numpy(), 2 * x.numpy() + y.numpy(), rtol=1e-6)
    np.testing.assert_allclose(y.grad.numpy(), x.numpy() + 2 * y.numpy(), rtol=1e-6)
    assert x_grad.requires_grad  # create_graph made it differentiable
    x.grad.data.zero_()
    np.testing.assert_array_equal(x_grad.numpy(), np.zeros((2, 2)))  # same storage
    x_grad.backward(E.ones(2, 2))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 2.0))


def test_second_derivative_the_clean_way():
    E.manual_seed(3)
    x = E.randn(2, 2, requires_grad=True)
    y = E.randn(2, 2, requires_grad=True)
    out = x**2 + x * y + y**2
    d1, d2 = nth_grads(out, x, 2)
    np.testing.assert_allclose(d1.numpy(), 2 * x.numpy() + y.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(d2.numpy(), np.full((2, 2), 2.0))
    assert x.grad is None and y.grad is None  # grad() leaves .grad alone


def test_third_derivative_of_xy_wrt_x_is_zeros_of_x_shape():
    x = E.randn(2, 3, dtype="float64", requires_grad=True)
    y = E.randn(2, 3, dtype="float64", requires_grad=True)
    d1, d2, d3 = nth_grads(x * y, x, 3)
    np.testing.assert_array_equal(d1.numpy(), y.numpy())
    np.testing.assert_array_equal(d2.numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(d3.numpy(), np.zeros((2, 3)))
    assert d3.shape == x.shape


def test_nth_grads_of_a_cubic():
    x = f64([0.5, -1.0, 2.0], requires_grad=True)
    d1, d2, d3, d4 = nth_grads(x**3, x, 4)
    xv = x.numpy()
    np.testing.assert_allclose(d1.numpy(), 3 * xv**2)
    np.testing.assert_allclose(d2.numpy(), 6 * xv)
    np.testing.assert_allclose(d3.numpy(), np.full(3, 6.0))
    np.testing.assert_allclose(d4.numpy(), np.zeros(3))


def test_two_backwards_add_up_and_zero_resets():
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    y = E.sum(x * x)
    y.backward(retain_graph=True)
    first = x.grad
    np.testing.assert_array_equal(first.numpy(), [2, 4, 6])
    y.backward()
    assert x.grad is first  # accumulated in place, as in PyTorch
    np.testing.assert_array_equal(x.grad.numpy(), [4, 8, 12])
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0])
    E.sum(x * 3.0).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3, 3])
