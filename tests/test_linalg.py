"""einsum, tensordot, det, inverse, solve: values against NumPy, first derivatives and
Hessian-vector products against float64 central differences (more cases, generated
for every op, are in engine_cases.py), errors in PyTorch's words."""

from __future__ import annotations

import numpy as np
import pytest

import adcli.engine as E
from adcli.errors import AdcliError
from adcli.lang.interpreter import Session

RNG = np.random.default_rng(7)


def t(array):
    return E.tensor(np.asarray(array, dtype=np.float64), dtype="float64", requires_grad=True)


def well_conditioned(*shape):
    n = shape[-1]
    return RNG.standard_normal(shape) + 3 * np.eye(n)


def fd_gradient(f, arrays, k, eps=1e-6):
    """Central differences of the scalar f(*arrays) in arrays[k]."""
    out = np.zeros_like(arrays[k])
    for idx in np.ndindex(arrays[k].shape):
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        plus[k][idx] += eps
        minus[k][idx] -= eps
        out[idx] = (f(*plus) - f(*minus)) / (2 * eps)
    return out


# ----- einsum -------------------------------------------------------------------------------------

EQUATIONS = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("ij->ji", [(2, 3)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("i...->...", [(3, 2, 2)]),
    ("ab,cb,ca->", [(2, 3), (4, 3), (4, 2)]),
    ("BiJ,BJ->Bi", [(2, 3, 4), (2, 4)]),
    (" ij , jk -> ik ", [(2, 2), (2, 2)]),
]


@pytest.mark.parametrize("equation, shapes", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_values_and_gradients(equation, shapes):
    arrays = [RNG.standard_normal(s) for s in shapes]
    xs = [t(a) for a in arrays]
    y = E.einsum(equation, *xs)
    want = np.einsum(equation.replace(" ", ""), *arrays)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)
    w = RNG.standard_normal(want.shape)
    E.sum(y * E.tensor(w, dtype="float64")).backward()
    loss = lambda *a: float(np.sum(np.einsum(equation.replace(" ", ""), *a) * w))
    for k, x in enumerate(xs):
        np.testing.assert_allclose(x.grad.numpy(), fd_gradient(loss, arrays, k), atol=1e-7)


def test_einsum_broadcasts_size_one_dims():
    a, b = RNG.standard_normal((1, 3)), RNG.standard_normal((4, 3))
    y = E.einsum("ij,ij->ij", t(a), t(b))
    np.testing.assert_allclose(y.numpy(), a * b)


def test_einsum_takes_a_list_of_operands_and_a_taylor_series():
    a = t(RNG.standard_normal((2, 2)))
    np.testing.assert_allclose(E.einsum("ij,jk", [a, a]).numpy(), a.numpy() @ a.numpy())
    # d^4/dx^4 of sum(einsum(x x x)) for x * ones: order-3 polynomial, 4th derivative zero
    x = t(RNG.standard_normal(3))
    (d3, d4) = E.nth_grads(E.einsum("i,i,i->", x, x, x), x, 4, method="taylor")[2:]
    np.testing.assert_allclose(d3.numpy(), np.full(3, 6.0))
    np.testing.assert_allclose(d4.numpy(), np.zeros(3))


@pytest.mark.parametrize(
    "equation, shapes, message",
    [
        ("ij,jk", [(2, 3)], "fewer operands were provided"),
        ("ij", [(2, 3), (3,)], "more operands were provided"),
        ("ij,jk->ik", [(2, 3), (4, 2)], "subscript j has size 4 for operand 1 which does not"),
        ("ijk", [(2, 3)], "number of subscripts in the equation (3) does not match"),
        ("i1", [(2, 3)], "subscripts must be in [a-zA-Z]"),
        ("ij->k", [(2, 3)], "output subscript k does not appear"),
        ("ij->ii", [(2, 3)], "output subscript i appears more than once"),
        ("ii", [(2, 3)], "subscript i is repeated for operand 0 but the sizes don't match"),
    ],
)
def test_einsum_errors(equation, shapes, message):
    with pytest.raises(AdcliError) as info:
        E.einsum(equation, *(t(np.ones(s)) for s in shapes))
    assert message in info.value.message


# ----- tensordot ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sa, sb, dims",
    [
        ((3, 4), (4, 5), 1),
        ((2, 3, 4), (3, 4, 2), 2),
        ((3,), (2,), 0),
        ((3, 2), (2, 4, 3), ([1, 0], [0, 2])),
    ],
)
def test_tensordot_values_and_gradients(sa, sb, dims):
    a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
    ta, tb = t(a), t(b)
    y = E.tensordot(ta, tb, dims)
    want = np.tensordot(a, b, dims)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12)
    w = RNG.standard_normal(want.shape)
    E.sum(y * E.tensor(w, dtype="float64")).backward()
    loss = lambda p, q: float(np.sum(np.tensordot(p, q, dims) * w))
    np.testing.assert_allclose(ta.grad.numpy(), fd_gradient(loss, [a, b], 0), atol=1e-7)
    np.testing.assert_allclose(tb.grad.numpy(), fd_gradient(loss, [a, b], 1), atol=1e-7)


def test_tensordot_errors():
    with pytest.raises(AdcliError, match="contracted dimensions need to match"):
        E.tensordot(t(np.ones((2, 3))), t(np.ones((2, 3))), 1)


# ----- det, inverse, solve ------------------------------------------------------------------------


def test_det_inverse_solve_values():
    a = well_conditioned(2, 3, 3)
    b = RNG.standard_normal((2, 3, 2))
    np.testing.assert_allclose(E.det(t(a)).numpy(), np.linalg.det(a), rtol=1e-12)
    np.testing.assert_allclose(E.inverse(t(a)).numpy(), np.linalg.inv(a), rtol=1e-12)
    np.testing.assert_allclose(E.solve(t(a), t(b)).numpy(), np.linalg.solve(a, b), rtol=1e-12)
    v = RNG.standard_normal(3)
    np.testing.assert_allclose(E.solve(t(a[0]), t(v)).numpy(), np.linalg.solve(a[0], v), rtol=1e-12)


def test_det_gradient_is_the_cofactor_matrix():
    a = well_conditioned(3, 3)
    x = t(a)
    E.det(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.linalg.det(a) * np.linalg.inv(a).T, rtol=1e-10)


SINGULAR = {
    "rank 1 of 2": np.array([[1.0, 2.0], [2.0, 4.0]]),
    "rank 2 of 3": np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 1.0, 1.0]]),
    "rank 1 of 3": np.outer([1.0, -2.0, 0.5], [3.0, 1.0, 2.0]),
    "zero 3x3": np.zeros((3, 3)),
    "zero 1x1": np.zeros((1, 1)),
    "a batch, one singular": np.stack([np.array([[1.0, 2.0], [2.0, 4.0]]), np.eye(2) * 2]),
}


@pytest.mark.parametrize("name", list(SINGULAR))
def test_det_gradient_at_a_singular_matrix(name):
    # det is a polynomial: its gradient (the cofactors) exists where A^-1 does not.
    a = SINGULAR[name]
    x = t(a)
    E.sum(E.det(x)).backward()
    fd = fd_gradient(lambda m: np.linalg.det(m).sum(), [a], 0)
    np.testing.assert_allclose(x.grad.numpy(), fd, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", ["rank 1 of 2", "rank 2 of 3", "zero 3x3"])
def test_det_second_derivative_at_a_singular_matrix(name):
    # The Hessian-vector product there, against differences of the gradient nearby
    # (where A is invertible and the gradient is det(A) A^-T).
    a = SINGULAR[name]
    v = RNG.standard_normal(a.shape)

    def grad_at(array):
        x = t(array)
        return E.grad(E.det(x), x).numpy()

    x = t(a)
    g = E.grad(E.det(x), x, create_graph=True)
    hv = E.grad(E.sum(g * E.tensor(v, dtype="float64")), x).numpy()
    eps = 1e-5
    fd = (grad_at(a + eps * v) - grad_at(a - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["det", "inverse", "solve"])
def test_hessian_vector_products_match_finite_differences(name):
    a = well_conditioned(3, 3)
    b = RNG.standard_normal(3)
    w = RNG.standard_normal(3)

    def engine_loss(x):
        if name == "det":
            return E.det(x) ** 2
        if name == "inverse":
            return E.sum(E.inverse(x) * E.tensor(np.outer(w, b), dtype="float64"))
        return E.sum(E.solve(x, E.tensor(b, dtype="float64")) * E.tensor(w, dtype="float64"))

    def grad_at(array):
        x = t(array)
        return E.grad(engine_loss(x), x).numpy()

    x = t(a)
    g = E.grad(engine_loss(x), x, create_graph=True)
    v = RNG.standard_normal((3, 3))
    hv = E.grad(E.sum(g * E.tensor(v, dtype="float64")), x).numpy()
    eps = 1e-5
    fd = (grad_at(a + eps * v) - grad_at(a - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-7)


def test_grad_fn_names():
    a = t(well_conditioned(2, 2))
    assert E.det(a).grad_fn.name() == "LinalgDetBackward"
    assert E.inverse(a).grad_fn.name() == "LinalgInvExBackward"
    assert E.solve(a, t(np.ones(2))).grad_fn.name() == "LinalgSolveExBackward"
    assert E.einsum("ij->", a).grad_fn.name() == "EinsumBackward"


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: E.inverse(t(np.ones((2, 2)))),
            "linalg.inv: the inversion could not be completed because the input matrix is singular.",
        ),
        (
            lambda: E.solve(t(np.zeros((2, 2))), t(np.ones(2))),
            "torch.linalg.solve: The solver failed because the input matrix is singular.",
        ),
        (lambda: E.det(t(np.ones((2, 3)))), "A must be batches of square matrices"),
        (lambda: E.det(t(np.ones(3))), "must have at least 2 dimensions"),
        (lambda: E.solve(t(np.eye(2)), t(np.ones(3))), "Incompatible shapes of A and B"),
        (
            lambda: E.det(E.tensor([[1, 2], [3, 4]], dtype="int64")),
            "Expected a floating point tensor",
        ),
        (lambda: E.solve(t(np.eye(2)), E.ones(2)), "same dtype"),
    ],
)
def test_linalg_errors(make, message):
    with pytest.raises(AdcliError) as info:
        make()
    assert message in info.value.message


# ----- the language -------------------------------------------------------------------------------


def test_language_builtins_and_methods():
    out = Session().run(
        'A = tensor([[2., 1], [1, 3]], dtype="float64", requires_grad=true)\n'
        'b = tensor([1., 2], dtype="float64")\n'
        "x = solve(A, b)\n"
        "assert allclose(A @ x, b)\n"
        "assert allclose(det(A), 5)\nassert allclose(A.det(), 5)\n"
        'assert allclose(inverse(A) @ A, eye(2, dtype="float64"))\n'
        "assert allclose(A.inverse(), inverse(A))\n"
        'assert allclose(einsum("ij,j->i", A, b), A @ b)\n'
        'assert allclose(einsum("ii", A), 5)\n'
        "assert allclose(tensordot(A, A, 2), sum(A * A))\n"
        "sum(x).backward()\n"
        "A.grad",
        "<test>",
        lambda output: None,
    )
    a = np.array([[2.0, 1], [1, 3]])
    xs = np.linalg.solve(a, [1.0, 2])
    gb = np.linalg.solve(a.T, np.ones(2))
    np.testing.assert_allclose(out.numpy(), -np.outer(gb, xs), rtol=1e-12)


def _leibniz_det(entries):
    """det of a square matrix of numpy Polynomials by the Leibniz formula (a closed form)."""
    import itertools

    n = len(entries)
    total = np.polynomial.Polynomial([0.0])
    for perm in itertools.permutations(range(n)):
        inversions = sum(perm[i] > perm[j] for i in range(n) for j in range(i + 1, n))
        term = np.polynomial.Polynomial([(-1.0) ** inversions])
        for i in range(n):
            term = term * entries[i][perm[i]]
        total = total + term
    return total


@pytest.mark.parametrize(
    ("coefficients", "at"),
    [
        # det [[x, 1], [1, x]] = x^2 - 1: singular at x = 1
        ([[[0, 1], [1]], [[1], [0, 1]]], 1.0),
        # rows 2 and 3 equal at x = 1: singular there
        ([[[0, 1], [0, 2], [0, 0, 1]], [[0, 0, 0, 1], [0, 1], [1]], [[0, 1], [0, 1], [0, 1]]], 1.0),
        # the zero matrix at x = 0
        ([[[0, 1], [0, 0, 1]], [[0, 0, 0, 1], [0, 2]]], 0.0),
    ],
)
def test_det_taylor_rule_at_a_singular_matrix(coefficients, at):
    # nth derivatives of det(A(x)) by Taylor mode, where A(at) has no inverse,
    # against the closed form from the Leibniz formula.
    from adcli.engine import taylor as TM

    polys = [[np.polynomial.Polynomial(c) for c in row] for row in coefficients]
    n = len(polys)
    x = E.tensor(at, dtype="float64", requires_grad=True)
    one = E.tensor(1.0, dtype="float64")
    cells = []
    for row in coefficients:
        for c in row:
            cell = one * 0.0
            for power, value in enumerate(c):
                if value:
                    cell = cell + float(value) * x**power
            cells.append(cell)
    matrix = E.reshape(E.stack(cells), n, n)
    y = E.det(matrix)
    exact = _leibniz_det(polys)
    orders = 6
    got = [d.item() for d in TM.taylor_grads(y, x, orders)]
    want = [exact.deriv(k)(at) for k in range(1, orders + 1)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
