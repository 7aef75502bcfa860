"""jvp, vjp, hvp (torch.autograd.functional) and jacobian/hessian of several inputs,
with create_graph; checked against float64 central differences and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import adcli.engine as E
from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError
from adcli.lang.interpreter import Session

RNG = np.random.default_rng(3)
X = RNG.standard_normal(3)
W = RNG.standard_normal((2, 3))
EPS = 1e-6


def t(a, requires_grad=False):
    return E.tensor(np.asarray(a, dtype=np.float64), dtype="float64", requires_grad=requires_grad)


def f_engine(x, w):
    return E.tanh(w @ x) * E.sum(x * x)


def f_numpy(x, w):
    return np.tanh(w @ x) * np.sum(x * x)


def scalar_engine(x, w):
    return E.sum(E.sin(w @ x) ** 2) + E.sum(x**3)


def scalar_numpy(x, w):
    return np.sum(np.sin(w @ x) ** 2) + np.sum(x**3)


def fd_jacobian(f, arrays, k):
    base = np.asarray(f(*arrays))
    out = np.zeros(base.shape + arrays[k].shape)
    for idx in np.ndindex(arrays[k].shape):
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        plus[k][idx] += EPS
        minus[k][idx] -= EPS
        out[(Ellipsis, *idx)] = (np.asarray(f(*plus)) - np.asarray(f(*minus))) / (2 * EPS)
    return out


def fd_grad_numpy(f, arrays, k):
    return fd_jacobian(f, arrays, k)


def test_jacobian_of_several_inputs():
    jx, jw = E.jacobian(f_engine, (t(X), t(W)))
    assert jx.shape == (2, 3) and jw.shape == (2, 2, 3)
    np.testing.assert_allclose(jx.numpy(), fd_jacobian(f_numpy, [X, W], 0), atol=1e-8)
    np.testing.assert_allclose(jw.numpy(), fd_jacobian(f_numpy, [X, W], 1), atol=1e-8)


def test_jacobian_of_one_input_is_a_tensor_and_a_list_is_a_tuple():
    assert isinstance(E.jacobian(lambda x: x * 2, t(X)), Tensor)
    (j,) = E.jacobian(lambda x: x * 2, [t(X)])
    np.testing.assert_allclose(j.numpy(), 2 * np.eye(3))


def test_jacobian_with_an_unused_input_is_zeros():
    _jx, jw = E.jacobian(lambda x, w: x * 2, (t(X), t(W)))
    np.testing.assert_array_equal(jw.numpy(), np.zeros((3, 2, 3)))


def test_hessian_of_several_inputs():
    h = E.hessian(scalar_engine, (t(X), t(W)))
    assert [[b.shape for b in row] for row in h] == [
        [(3, 3), (3, 2, 3)],
        [(2, 3, 3), (2, 3, 2, 3)],
    ]

    def grad_numpy(k):
        return lambda x, w: fd_grad_numpy(scalar_numpy, [x, w], k)

    for a in range(2):
        for b in range(2):
            # d/d(input b) of the analytic gradient in input a
            def ga(x, w, a=a):
                xs = [t(x, True), t(w, True)]
                return E.grad(scalar_engine(*xs), xs[a]).numpy()

            np.testing.assert_allclose(h[a][b].numpy(), fd_jacobian(ga, [X, W], b), atol=1e-6)
    # symmetric: H[0][1] is H[1][0] transposed
    np.testing.assert_allclose(
        h[0][1].numpy(), np.transpose(h[1][0].numpy(), (2, 0, 1)), rtol=1e-10, atol=1e-12
    )


def test_jacobian_create_graph_differentiates_again():
    x = t(X, requires_grad=True)
    j = E.jacobian(lambda v: v**3, x, create_graph=True)
    assert j.requires_grad
    E.sum(j).backward()  # d/dx of sum(diag(3 x^2)) = 6 x
    np.testing.assert_allclose(x.grad.numpy(), 6 * X, rtol=1e-12)


def test_jacobian_without_create_graph_is_detached():
    x = t(X, requires_grad=True)
    j = E.jacobian(lambda v: v**3, x)
    assert not j.requires_grad and j.grad_fn is None


def test_hessian_create_graph():
    x = t(X, requires_grad=True)
    h = E.hessian(lambda v: E.sum(v**4), x, create_graph=True)  # diag(12 x^2)
    E.sum(h).backward()
    np.testing.assert_allclose(x.grad.numpy(), 24 * X, rtol=1e-12)


def test_vjp():
    u = RNG.standard_normal(2)
    out, (gx, gw) = E.vjp(f_engine, (t(X), t(W)), t(u))
    np.testing.assert_allclose(out.numpy(), f_numpy(X, W), rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), u @ fd_jacobian(f_numpy, [X, W], 0), atol=1e-8)
    np.testing.assert_allclose(
        gw.numpy(), np.einsum("i,ijk->jk", u, fd_jacobian(f_numpy, [X, W], 1)), atol=1e-8
    )
    out, g = E.vjp(lambda x: E.sum(x * x), t(X))  # v may be left out for a scalar
    np.testing.assert_allclose(g.numpy(), 2 * X)
    assert not out.requires_grad and not g.requires_grad


def test_jvp():
    vx, vw = RNG.standard_normal(3), RNG.standard_normal((2, 3))
    out, jv = E.jvp(f_engine, (t(X), t(W)), (t(vx), t(vw)))
    want = fd_jacobian(f_numpy, [X, W], 0) @ vx + np.einsum(
        "ijk,jk->i", fd_jacobian(f_numpy, [X, W], 1), vw
    )
    np.testing.assert_allclose(jv.numpy(), want, atol=1e-8)
    np.testing.assert_allclose(out.numpy(), f_numpy(X, W), rtol=1e-12)


def test_jvp_of_a_linear_function_and_of_a_constant():
    a = RNG.standard_normal((2, 3))
    _out, jv = E.jvp(lambda x: t(a) @ x, t(X), t(np.ones(3)))
    np.testing.assert_allclose(jv.numpy(), a.sum(1), rtol=1e-12)
    _out, jv = E.jvp(lambda x: t(a), t(X), t(np.ones(3)))
    np.testing.assert_array_equal(jv.numpy(), np.zeros((2, 3)))


def test_hvp():
    v = RNG.standard_normal(3)
    out, hv = E.hvp(lambda x: scalar_engine(x, t(W)), t(X), t(v))

    def gx(x):
        xs = t(x, True)
        return E.grad(scalar_engine(xs, t(W)), xs).numpy()

    fd = (gx(X + EPS * v) - gx(X - EPS * v)) / (2 * EPS)
    np.testing.assert_allclose(hv.numpy(), fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(out.item(), scalar_numpy(X, W), rtol=1e-12)


def test_hvp_of_several_inputs_and_create_graph():
    vx, vw = RNG.standard_normal(3), RNG.standard_normal((2, 3))
    _out, (hx, hw) = E.hvp(scalar_engine, (t(X), t(W)), (t(vx), t(vw)))
    h = E.hessian(scalar_engine, (t(X), t(W)))
    want_x = h[0][0].numpy() @ vx + np.einsum("ijk,jk->i", h[0][1].numpy(), vw)
    want_w = np.einsum("jki,i->jk", h[1][0].numpy(), vx) + np.einsum(
        "jklm,lm->jk", h[1][1].numpy(), vw
    )
    np.testing.assert_allclose(hx.numpy(), want_x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hw.numpy(), want_w, rtol=1e-10, atol=1e-12)
    # create_graph: x^4 has H v = 12 x^2 v, whose sum has gradient 24 x v
    x = t(X, requires_grad=True)
    _, hv = E.hvp(lambda z: E.sum(z**4), x, t(np.ones(3)), create_graph=True)
    E.sum(hv).backward()
    np.testing.assert_allclose(x.grad.numpy(), 24 * X, rtol=1e-12)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: E.vjp(lambda x: x * 2, t(X)), "v can only be left out"),
        (lambda: E.vjp(lambda x: x * 2, t(X), t(np.ones(2))), "v has shape [2]"),
        (lambda: E.hvp(lambda x: x * 2, t(X), t(X)), "f must return a tensor with one element"),
        (lambda: E.jvp(lambda x, w: x, (t(X), t(W)), t(X)), "tuple of 2 tensors"),
        (lambda: E.jacobian(lambda x: 3, t(X)), "the function must return a tensor"),
        (lambda: E.jacobian(lambda x: x, ()), "the inputs must be a tensor or a tuple"),
    ],
)
def test_errors(make, message):
    with pytest.raises(AdcliError) as info:
        make()
    assert message in info.value.message


def test_language_transforms():
    run = lambda src: Session().run(src, "<test>", lambda output: None)
    setup = 'f(x) = sum(x^3)\nx = tensor([1., 2], dtype="float64")\n'
    out, jv = run(setup + "jvp(f, x, x)")
    assert out.item() == 9.0 and jv.item() == 27.0
    out, hv = run(setup + "hvp(f, x, x)")
    np.testing.assert_array_equal(hv.numpy(), [6.0, 24.0])
    out, g = run(setup + "vjp(f, x)")
    np.testing.assert_array_equal(g.numpy(), [3.0, 12.0])
    j = run(
        setup
        + "h(x) = x^3\nz = tensor([1., 2], requires_grad=true)\n"
        + "j = jacobian(h, z, create_graph=true)\nsum(j).backward()\nz.grad"
    )
    np.testing.assert_array_equal(j.numpy(), [6.0, 12.0])  # d/dz sum(diag(3 z^2))


def test_transforms_of_a_constant_function_are_zeros():
    c = t(np.ones(2))
    np.testing.assert_array_equal(E.hessian(lambda x: E.sum(c), t(X)).numpy(), np.zeros((3, 3)))
    np.testing.assert_array_equal(E.jacobian(lambda x: c, t(X)).numpy(), np.zeros((2, 3)))
    _, g = E.vjp(lambda x: E.sum(c), t(X))
    np.testing.assert_array_equal(g.numpy(), np.zeros(3))
    _, hv = E.hvp(lambda x: E.sum(c), t(X), t(X))
    np.testing.assert_array_equal(hv.numpy(), np.zeros(3))
