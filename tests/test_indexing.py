"""Advanced indexing: int64 tensors, lists and tuples (gathers), bool masks, ``...``,
``none``, mixed with slices; values against NumPy, gradients against closed forms
and finite differences, and ``index_put`` (the engine's index assignment)."""

from __future__ import annotations

import numpy as np
import pytest

import adcli.engine as E
from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError
from adcli.lang.interpreter import Session

RNG = np.random.default_rng(13)
X = RNG.standard_normal((3, 4, 2))
IDX = np.array([2, 0, 2, 1])
MASK = X[..., 0] > 0


def leaf(array=X):
    return E.tensor(array, dtype="float64", requires_grad=True)


def itensor(values):
    return E.tensor(np.asarray(values), dtype="int64")


def btensor(values):
    return E.tensor(np.asarray(values), dtype="bool")


KEYS = [
    ("x[idx]", lambda: itensor(IDX), IDX),
    ("x[list]", lambda: [2, 0, 2], [2, 0, 2]),
    ("x[:, idx]", lambda: (slice(None), itensor([3, 3, 0])), (slice(None), [3, 3, 0])),
    ("x[idx, idx]", lambda: (itensor([0, 2]), itensor([1, 1])), ([0, 2], [1, 1])),
    ("x[2-d idx]", lambda: itensor([[0, 1], [2, 2]]), np.array([[0, 1], [2, 2]])),
    ("x[..., idx]", lambda: (Ellipsis, itensor([1, 1, 0])), (Ellipsis, [1, 1, 0])),
    ("x[None, idx]", lambda: (None, itensor([1, 0])), (None, [1, 0])),
    (
        "x[idx, None, 1:]",
        lambda: (itensor([1, 0]), None, slice(1, None)),
        ([1, 0], None, slice(1, None)),
    ),
    ("x[mask]", lambda: btensor(MASK), MASK),
    ("x[mask, 1]", lambda: (btensor(MASK), 1), (MASK, 1)),
    (
        "x[1:, mask-row]",
        lambda: (slice(1, None), btensor([True, False, True, True])),
        (slice(1, None), np.array([True, False, True, True])),
    ),
    ("x[..., 0]", lambda: (Ellipsis, 0), (Ellipsis, 0)),
    ("x[None]", lambda: None, None),
    ("x[0, ..., None]", lambda: (0, Ellipsis, None), (0, Ellipsis, None)),
    ("x[-1, idx-negative]", lambda: (-1, itensor([-1, 0])), (-1, [-1, 0])),
    ("x[0-d idx]", lambda: itensor(2), np.array(2)),
]


@pytest.mark.parametrize("name, key, numpy_key", KEYS, ids=[k[0] for k in KEYS])
def test_values_match_numpy(name, key, numpy_key):
    got = E.index(leaf(), key())
    want = X[numpy_key if not isinstance(numpy_key, list) else (numpy_key,)]
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("name, key, numpy_key", KEYS, ids=[k[0] for k in KEYS])
def test_gradient_is_the_scatter_of_the_seed(name, key, numpy_key):
    """d sum(w * x[key]) / dx = w scattered back, repeated positions adding up."""
    x = leaf()
    y = E.index(x, key())
    w = RNG.standard_normal(y.shape)
    E.sum(y * E.tensor(w, dtype="float64")).backward()
    want = np.zeros_like(X)
    np.add.at(want, numpy_key if not isinstance(numpy_key, list) else (numpy_key,), w)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12, atol=1e-12)


def test_duplicates_accumulate_against_counts():
    x = E.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    E.sum(x[itensor([0, 0, 0, 2, 0])]).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 0.0, 1.0])


def test_second_derivative_through_a_gather_matches_finite_differences():
    x = leaf(RNG.standard_normal(4))
    key = itensor([1, 1, 3, 0])
    f = lambda v: E.sum(E.index(v, key) ** 3)
    g = E.grad(f(x), x, create_graph=True)
    v = RNG.standard_normal(4)
    hv = E.grad(E.sum(g * E.tensor(v, dtype="float64")), x).numpy()
    eps = 1e-5

    def grad_at(a):
        t = leaf(a)
        return E.grad(f(t), t).numpy()

    fd = (grad_at(x.numpy() + eps * v) - grad_at(x.numpy() - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-8)


def test_grad_fn_names():
    x = leaf()
    assert E.index(x, itensor([0])).grad_fn.name() == "IndexBackward"
    assert E.index(x, btensor(MASK)).grad_fn.name() == "IndexBackward"
    assert E.index(x, 1).grad_fn.name() == "SelectBackward"
    assert E.index(x, slice(0, 2)).grad_fn.name() == "SliceBackward"
    assert E.index(x, None).grad_fn.name() == "UnsqueezeBackward"
    assert E.index(x, Ellipsis).grad_fn.name() == "AliasBackward"


@pytest.mark.parametrize(
    "key, message",
    [
        (lambda: itensor([3]), "index 3 is out of bounds for dimension 0 with size 3"),
        (lambda: itensor([-4]), "index -4 is out of bounds for dimension 0 with size 3"),
        (lambda: (0, itensor([4])), "index 4 is out of bounds for dimension 1 with size 4"),
        (lambda: btensor([True, False]), "The shape of the mask [2] at index 0 does not match"),
        (lambda: E.tensor([0.0, 1.0]), "tensors used as indices must be long, int, byte or bool"),
        (lambda: (Ellipsis, 0, Ellipsis), "an index can only have a single ellipsis"),
        (lambda: (0, 0, 0, 0), "too many indices for a tensor of dimension 3"),
        (lambda: [0.5], "a list or tuple used as an index must hold whole numbers"),
    ],
)
def test_bad_keys_are_errors(key, message):
    with pytest.raises(AdcliError) as info:
        E.index(leaf(), key())
    assert message in info.value.message


# ----- index_put ------------------------------------------------------------------------------------


def test_index_put_values_and_gradients():
    x = leaf(RNG.standard_normal((4, 2)))
    before = x.numpy().copy()
    v = leaf(RNG.standard_normal((2, 2)))
    y = E.index_put(x, (itensor([3, 0]),), v)
    want = x.numpy().copy()
    want[[3, 0]] = v.numpy()
    np.testing.assert_array_equal(y.numpy(), want)
    assert y.grad_fn.name() == "IndexPutBackward"
    w = RNG.standard_normal((4, 2))
    E.sum(y * E.tensor(w, dtype="float64")).backward()
    gx = w.copy()
    gx[[3, 0]] = 0
    np.testing.assert_allclose(x.grad.numpy(), gx)
    np.testing.assert_allclose(v.grad.numpy(), w[[3, 0]])
    np.testing.assert_array_equal(x.numpy(), before)  # out of place: x is untouched


def test_index_put_with_a_mask_and_a_number():
    x = E.tensor([1.0, -2.0, 3.0, -4.0])
    y = E.index_put(x, (x < 0,), 0.0)
    np.testing.assert_array_equal(y.numpy(), [1.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(x.numpy(), [1.0, -2.0, 3.0, -4.0])


def test_index_put_accumulate_adds_repeats():
    x = E.zeros(3, dtype="float64")
    v = leaf(np.array([1.0, 2.0, 3.0]))
    y = E.index_put(x, ([0, 0, 2],), v, accumulate=True)
    np.testing.assert_array_equal(y.numpy(), [3.0, 0.0, 3.0])
    E.sum(y * E.tensor([10.0, 20.0, 30.0], dtype="float64")).backward()
    np.testing.assert_array_equal(v.grad.numpy(), [10.0, 10.0, 30.0])


def test_index_put_broadcasts_and_casts_value():
    x = E.zeros(2, 3)
    y = E.index_put(x, (slice(None), 1), E.tensor([5.0], dtype="float64"))
    assert y.dtype == "float32"
    np.testing.assert_array_equal(y.numpy(), [[0, 5, 0], [0, 5, 0]])
    with pytest.raises(AdcliError, match="cannot be broadcast to indexing result of shape"):
        E.index_put(x, (0,), E.ones(2))


# ----- the language -------------------------------------------------------------------------------


def ev(source):
    return Session().run(source, "<test>", lambda output: None)


def test_language_indexing_forms():
    setup = "x = tensor([[1., 2, 3], [4, 5, 6]], requires_grad=true)\n"
    cases = {
        'x[tensor([1, 1, 0], dtype="int64")]': [[4, 5, 6], [4, 5, 6], [1, 2, 3]],
        "x[x > 3]": [4, 5, 6],
        "x[..., 2]": [3, 6],
        "x[none].shape": None,
        "x[:, none, 0]": [[1], [4]],
        'x[1, tensor([2, 0], dtype="int64")]': [6, 4],
        "x[0, ...]": [1, 2, 3],
    }
    for expr, want in cases.items():
        got = ev(setup + expr)
        if want is None:
            assert got == (1, 2, 3)
        else:
            assert isinstance(got, Tensor)
            np.testing.assert_array_equal(got.numpy(), want)


def test_language_gather_gradient_accumulates():
    g = ev(
        "x = tensor([1., 2, 3], requires_grad=true)\n"
        'sum(x[tensor([2, 2, 0], dtype="int64")] * tensor([1., 10, 100])).backward()\n'
        "x.grad"
    )
    np.testing.assert_array_equal(g.numpy(), [100.0, 0.0, 11.0])


def test_language_index_errors_have_a_caret():
    with pytest.raises(AdcliError) as info:
        ev('x = ones(3)\nx[tensor([5], dtype="int64")]')
    err = info.value
    assert "index 5 is out of bounds" in err.message
    assert err.span is not None and err.span.line == 2


# ----- index_put_ (in place: what the language's `a[i] = v` calls) ---------------------------------


def test_index_put_in_place_on_a_leaf_that_requires_grad_is_pytorchs_error():
    x = leaf(np.ones(3))
    with pytest.raises(AdcliError, match="a leaf Variable that requires grad is being used"):
        E.index_put_(x, 0, 2.0)
    with E.no_grad():  # allowed there, and x stays the same leaf
        assert E.index_put_(x, 0, 2.0) is x
    assert x.is_leaf and x.requires_grad
    np.testing.assert_array_equal(x.numpy(), [2.0, 1.0, 1.0])


def test_index_put_in_place_writes_shared_storage():
    z = E.zeros(3)
    alias = z.data
    E.index_put_(z, btensor([True, False, True]), 7.0)
    np.testing.assert_array_equal(alias.numpy(), [7.0, 0.0, 7.0])


def test_index_put_in_place_is_recorded_in_the_graph():
    x = leaf(np.array([1.0, 2.0, 3.0]))
    v = leaf(np.array(5.0))
    y = x * 2
    same = y
    E.index_put_(y, 1, v)
    assert y is same and y.grad_fn.name() == "CopySlices"  # PyTorch's name for it
    np.testing.assert_array_equal(y.numpy(), [2.0, 5.0, 6.0])
    E.sum(y * y).backward()
    np.testing.assert_array_equal(
        x.grad.numpy(), [8.0, 0.0, 24.0]
    )  # 2 y * 2, zero where overwritten
    np.testing.assert_array_equal(v.grad.numpy(), 10.0)


def test_index_put_in_place_of_a_value_that_requires_grad_into_a_constant():
    z = E.zeros(3, dtype="float64")
    v = leaf(np.array([1.0, 2.0]))
    E.index_put_(z, itensor([0, 2]), v)
    assert z.requires_grad and z.grad_fn.name() == "CopySlices"
    E.sum(z * z).backward()
    np.testing.assert_array_equal(v.grad.numpy(), [2.0, 4.0])
