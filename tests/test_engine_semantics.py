"""One test per autograd semantics rule of the spec ("Autograd semantics — PyTorch's,
exactly"), per error message, and for dtypes, devices and the element limit."""

from __future__ import annotations

import numpy as np
import pytest

import adcli.engine as E
from adcli.backend import Backend
from adcli.engine.tensor import STATE, AccumulateGrad, Tensor
from adcli.errors import AdcliError


def f64(values, requires_grad=False):
    return E.tensor(values, dtype="float64", requires_grad=requires_grad)


@pytest.fixture
def warnings_seen():
    """Collect what the engine reports through STATE.warn."""
    seen = []
    old = STATE.warn
    STATE.warn = seen.append
    try:
        yield seen
    finally:
        STATE.warn = old


@pytest.fixture
def element_limit():
    """Set STATE.max_elements for one test, restored after."""
    old = STATE.max_elements

    def set_limit(n):
        STATE.max_elements = n

    try:
        yield set_limit
    finally:
        STATE.max_elements = old


def raises(kind, *fragments):
    """A context that expects AdcliError of ``kind`` whose message holds every fragment."""

    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(AdcliError)
            self.info = self._ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self._ctx.__exit__(*exc)
            if not handled:  # some other exception: let it through
                return False
            err = self.info.value
            assert err.kind == kind, f"kind {err.kind!r}, expected {kind!r}: {err.message}"
            for fragment in fragments:
                assert fragment in err.message, f"{fragment!r} not in {err.message!r}"
            return handled

    return _Check()


# ----- leaves and .grad ----------------------------------------------------------------------------


def test_grad_starts_as_none():
    x = E.randn(3, requires_grad=True)
    assert x.grad is None
    assert x.is_leaf
    assert x.requires_grad


def test_leaves_accumulate_into_grad():
    x = f64([1.0, 2.0], requires_grad=True)
    E.sum(x * 3.0).backward()
    E.sum(x * x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3 + 2, 3 + 4])


def test_zero_is_in_place():
    x = f64([1.0, 2.0], requires_grad=True)
    E.sum(x * x).backward()
    g = x.grad
    assert g.zero_() is g
    assert x.grad is g
    np.testing.assert_array_equal(g.numpy(), [0, 0])
    E.sum(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1])


def test_zero_of_a_gradient_from_a_broadcast_scalar():
    # sum's gradient is a broadcast scalar: .grad must still own writeable storage
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    E.sum(x).backward()
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0])
    E.sum(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1, 1])


def test_gradients_do_not_share_storage_with_each_other_or_the_seed():
    x = f64([1.0, 2.0], requires_grad=True)
    y = f64([3.0, 4.0], requires_grad=True)
    seed = f64([1.0, 1.0])
    (x + y).backward(seed)
    x.grad.zero_()
    np.testing.assert_array_equal(y.grad.numpy(), [1, 1])
    np.testing.assert_array_equal(seed.numpy(), [1, 1])


def test_non_leaf_grad_is_none_with_the_pytorch_warning(warnings_seen):
    x = f64([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    E.sum(y).backward()
    assert not y.is_leaf
    assert y.grad is None
    assert len(warnings_seen) == 1
    assert "not a leaf Tensor" in warnings_seen[0]
    assert ".retain_grad()" in warnings_seen[0]
    # a leaf's .grad says nothing
    assert x.grad is not None
    assert len(warnings_seen) == 1


def test_retain_grad_populates_a_non_leaf(warnings_seen):
    x = f64([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    y.retain_grad()
    E.sum(y * y).backward()
    np.testing.assert_array_equal(y.grad.numpy(), [4.0, 8.0])
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 16.0])
    assert warnings_seen == []


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = E.randn(3, requires_grad=True)
    with raises("value", "grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()
    with raises("value", "grad can be implicitly created only for scalar outputs"):
        E.grad(x * 2, x)


def test_backward_of_a_one_element_tensor_needs_no_gradient():
    x = f64([[2.0]], requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[4.0]])


def test_second_backward_without_retain_graph_is_an_error():
    x = f64([1.0, 2.0], requires_grad=True)
    y = E.sum(E.exp(x))
    y.backward()
    with raises("value", "backward through the graph a second time", "retain_graph=True"):
        y.backward()


def test_second_backward_with_retain_graph_works_and_accumulates():
    x = f64([1.0, 2.0], requires_grad=True)
    y = E.sum(E.exp(x))
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp([1.0, 2.0]))


def test_create_graph_retains_the_graph_by_default():
    x = f64([1.0, 2.0], requires_grad=True)
    y = E.sum(E.sin(x))
    y.backward(create_graph=True)
    y.backward(create_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos([1.0, 2.0]))


def test_grad_frees_the_graph_too():
    x = f64([1.0, 2.0], requires_grad=True)
    y = E.sum(E.sin(x))
    E.grad(y, x)
    with raises("value", "backward through the graph a second time"):
        E.grad(y, x)


def test_saved_values_are_freed_after_backward_unless_retained():
    x = f64([1.0, 2.0], requires_grad=True)
    y = E.sum(E.sin(x) * x)
    mul_node = y.grad_fn.next_functions[0][0]
    sin_node = mul_node.next_functions[0][0]
    y.backward(retain_graph=True)
    for node in (mul_node, sin_node):
        assert node.saved is not None
        assert not node.freed
    y.backward()
    for node in (mul_node, sin_node):
        assert node.saved is None
        assert node.freed


def test_create_graph_makes_grads_differentiable():
    x = f64([0.5, 1.5], requires_grad=True)
    (g,) = [E.grad(E.sum(x**3), x, create_graph=True)]
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    (h,) = [E.grad(E.sum(g), x)]
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())
    # without create_graph the gradient is a plain tensor
    g2 = E.grad(E.sum(x**3), x)
    assert not g2.requires_grad and g2.grad_fn is None


def test_backward_create_graph_gives_a_differentiable_dot_grad():
    x = f64([0.5, 1.5], requires_grad=True)
    E.sum(x**3).backward(create_graph=True)
    assert x.grad.requires_grad
    h = E.grad(E.sum(x.grad), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())


@pytest.mark.parametrize(
    "sa, sb",
    [((3, 1), (1, 4)), ((4,), (3, 4)), ((), (2, 3)), ((2, 1, 3), (4, 1)), ((1, 1), (2, 2))],
)
def test_broadcasting_is_summed_back_to_each_input_shape(sa, sb):
    a = E.ones(*sa, dtype="float64", requires_grad=True)
    b = E.ones(*sb, dtype="float64", requires_grad=True)
    out = a * b
    E.sum(out).backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    n = out.numel()
    np.testing.assert_array_equal(a.grad.numpy(), np.full(sa, n / max(a.numel(), 1)))
    np.testing.assert_array_equal(b.grad.numpy(), np.full(sb, n / max(b.numel(), 1)))


# ----- grad_fn ---------------------------------------------------------------------------------


def test_grad_fn_chain_of_the_tutorial():
    x = E.randn(4, requires_grad=True)
    out = E.sqrt(E.sum(x**2, dim=0))
    chain = []
    node = out.grad_fn
    while node is not None:
        chain.append(node.name())
        nxt = [n for n, _ in node.next_functions if n is not None]
        node = nxt[0] if nxt else None
        if isinstance(node, AccumulateGrad):
            chain.append(node.name())
            assert node.variable is x
            break
    assert chain == ["SqrtBackward", "SumBackward", "PowBackward", "AccumulateGrad"]


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda x, y: x + y, "AddBackward"),
        (lambda x, y: x - y, "SubBackward"),
        (lambda x, y: x * y, "MulBackward"),
        (lambda x, y: x / y, "DivBackward"),
        (lambda x, y: -x, "NegBackward"),
        (lambda x, y: x**2, "PowBackward"),
        (lambda x, y: x**y, "PowBackward"),
        (lambda x, y: E.sqrt(x), "SqrtBackward"),
        (lambda x, y: E.log(x), "LogBackward"),
        (lambda x, y: E.exp(x), "ExpBackward"),
        (lambda x, y: E.sin(x), "SinBackward"),
        (lambda x, y: E.cos(x), "CosBackward"),
        (lambda x, y: E.tanh(x), "TanhBackward"),
        (lambda x, y: E.sigmoid(x), "SigmoidBackward"),
        (lambda x, y: E.relu(x), "ReluBackward"),
        (lambda x, y: E.abs(x), "AbsBackward"),
        (lambda x, y: E.sum(x), "SumBackward"),
        (lambda x, y: E.sum(x, dim=1), "SumBackward"),
        (lambda x, y: E.mean(x), "MeanBackward"),
        (lambda x, y: E.mm(x, E.transpose(y)), "MmBackward"),
        (lambda x, y: E.reshape(x, 6), "ViewBackward"),
        (lambda x, y: E.permute(x, 1, 0), "PermuteBackward"),
        (lambda x, y: E.transpose(x, 0, 1), "TransposeBackward"),
        (lambda x, y: x[1], "SelectBackward"),
        (lambda x, y: x[0:1], "SliceBackward"),
        (lambda x, y: E.expand(x, 4, 2, 3), "ExpandBackward"),
        (lambda x, y: E.clone(x), "CloneBackward"),
        (lambda x, y: E.cast(x, "float32"), "ToCopyBackward"),
        (lambda x, y: E.where(x > 1.0, x, y), "WhereBackward"),
        (lambda x, y: E.dot(x[0], y[0]), "DotBackward"),
        (lambda x, y: E.matmul(x, y[0]), "MvBackward"),
    ],
)
def test_grad_fn_names_follow_pytorch(make, name):
    x = E.rand(2, 3, dtype="float64", requires_grad=True) + 0.5
    y = E.rand(2, 3, dtype="float64", requires_grad=True)
    out = make(x, y)
    assert out.grad_fn is not None
    assert out.grad_fn.name() == name
    assert name in repr(out.grad_fn)
    assert f"grad_fn=<{name}>" in repr(out)


def test_next_functions_end_at_accumulate_grad_of_the_leaf():
    x = E.randn(2, requires_grad=True)
    c = E.randn(2)  # no grad: appears as None
    y = x * c
    (first, _), (second, _) = y.grad_fn.next_functions
    assert isinstance(first, AccumulateGrad)
    assert first.name() == "AccumulateGrad"
    assert first.variable is x
    assert first.next_functions == ()
    assert second is None
    # the same accumulator each time a leaf is used
    z = x + x
    (a, _), (b, _) = z.grad_fn.next_functions
    assert a is b is first


def test_a_leaf_has_no_grad_fn():
    x = E.randn(3, requires_grad=True)
    assert x.grad_fn is None
    assert E.randn(3).grad_fn is None


# ----- grad() ---------------------------------------------------------------------------------


def test_grad_leaves_dot_grad_alone():
    x = f64([1.0, 2.0], requires_grad=True)
    g = E.grad(E.sum(x * x), x)
    np.testing.assert_array_equal(g.numpy(), [2, 4])
    assert x.grad is None
    x.grad = f64([7.0, 7.0])
    E.grad(E.sum(x * x), x)
    np.testing.assert_array_equal(x.grad.numpy(), [7, 7])


def test_grad_wrt_an_unused_input_is_zeros_of_its_shape():
    x = E.randn(2, 3, dtype="float64", requires_grad=True)
    u = E.randn(4, dtype="float64", requires_grad=True)
    gx, gu = E.grad(E.sum(x * 2.0), [x, u])
    np.testing.assert_array_equal(gx.numpy(), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(gu.numpy(), np.zeros(4))
    assert gu.shape == (4,) and gu.dtype == "float64"
    # an output that does not require grad at all: PyTorch's error, not zeros
    with pytest.raises(AdcliError, match="does not require grad and does not have a grad_fn"):
        E.grad(E.sum(E.ones(3)), x)


def test_grad_with_grad_outputs():
    x = f64([1.0, 2.0, 3.0], requires_grad=True)
    g = E.grad(x * x, x, grad_outputs=f64([1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(g.numpy(), [2, 0, 12])


def test_grad_of_an_input_without_requires_grad_is_an_error():
    x = E.randn(2, requires_grad=True)
    with raises("value", "does not require grad"):
        E.grad(E.sum(x), E.ones(2))


def test_backward_of_a_tensor_without_grad_is_an_error():
    with raises("value", "does not require grad"):
        E.sum(E.ones(2)).backward()


def test_backward_gradient_of_the_wrong_shape_is_an_error():
    x = E.randn(2, 3, requires_grad=True)
    with raises("shape", "[3]", "[2, 3]"):
        (x * 2).backward(E.ones(3))


def test_backward_inputs_restricts_accumulation():
    x = f64([1.0], requires_grad=True)
    y = f64([2.0], requires_grad=True)
    E.sum(x * y).backward(inputs=[x])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0])
    assert y.grad is None


# ----- no_grad, detach, requires_grad -------------------------------------------------------------


def test_no_grad_records_nothing():
    x = E.randn(3, requires_grad=True)
    with E.no_grad():
        y = E.exp(x) * 2 + x
        with E.enable_grad():
            z = x * 2
    assert y.grad_fn is None and not y.requires_grad and y.is_leaf
    assert z.grad_fn is not None
    w = x * 2  # recording is back on
    assert w.grad_fn is not None


def test_detach_shares_storage_and_stops_gradients():
    x = f64([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    y = E.sum(x * d)  # d is a constant: dy/dx = d
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 2])
    d.zero_()
    np.testing.assert_array_equal(x.numpy(), [0, 0])  # same storage, as in PyTorch
    assert not E.detach(x * 2).requires_grad


def test_data_is_detached_and_shares_storage():
    x = f64([1.0, 2.0], requires_grad=True)
    assert not x.data.requires_grad
    x.data.zero_()
    np.testing.assert_array_equal(x.numpy(), [0, 0])


def test_requires_grad_only_on_floating_point_tensors():
    assert E.tensor([1, 2], requires_grad=True).dtype == "float32"
    with raises("type", "floating point"):
        E.tensor([1, 2], dtype=np.int64, requires_grad=True)


def test_requires_grad_of_a_non_leaf_cannot_be_turned_off():
    x = E.randn(2, requires_grad=True)
    y = x * 2
    with raises("value", "leaf"):
        y.requires_grad = False
    z = E.randn(2)
    assert z.requires_grad_() is z and z.requires_grad


def test_assigning_grad_of_the_wrong_shape_is_an_error():
    x = E.randn(2, requires_grad=True)
    with raises("shape", "[3]", "[2]"):
        x.grad = E.ones(3)


# ----- dtypes ---------------------------------------------------------------------------------


def test_float32_by_default_float64_when_asked():
    assert E.randn(2).dtype == "float32"
    assert E.zeros(2).dtype == "float32"
    assert E.tensor([1.0]).dtype == "float32"
    assert E.randn(2, dtype="float64").dtype == "float64"
    assert E.ones(2, dtype="float64").dtype == "float64"
    with raises("value", "int32"):
        E.ones(2, dtype="int32")


def test_mixed_float32_float64_promotes_and_the_float32_grad_stays_float32():
    a = E.tensor([1.0, 2.0], requires_grad=True)
    b = E.tensor([3.0, 4.0], dtype="float64", requires_grad=True)
    out = E.sum(a * b)
    assert out.dtype == "float64"
    out.backward()
    assert a.grad.dtype == "float32" and b.grad.dtype == "float64"
    np.testing.assert_array_equal(a.grad.numpy(), [3, 4])
    np.testing.assert_array_equal(b.grad.numpy(), [1, 2])


def test_mixed_dtypes_keep_grad_dtypes_under_create_graph_too():
    a = E.tensor([1.0, 2.0], requires_grad=True)
    b = E.tensor([3.0, 4.0], dtype="float64", requires_grad=True)
    ga, gb = E.grad(E.sum(a * a * b), [a, b], create_graph=True)
    assert ga.dtype == "float32" and gb.dtype == "float64"
    E.sum(a * a * b).backward(create_graph=True)
    assert a.grad.dtype == "float32" and b.grad.dtype == "float64"


def test_float32_stays_float32_with_python_numbers():
    x = E.randn(3, requires_grad=True)
    assert (x * 2.5 + 1).dtype == "float32"
    assert (2.0**x).dtype == "float32"
    assert E.grad(E.sum(x * 2.5), x).dtype == "float32"


def test_cast_gradient_comes_back_in_the_source_dtype():
    x = E.tensor([1.0, 2.0], requires_grad=True)
    y = E.cast(x, "float64")
    assert y.dtype == "float64"
    E.sum(y * y).backward()
    assert x.grad.dtype == "float32"
    np.testing.assert_array_equal(x.grad.numpy(), [2, 4])


# ----- shape errors -----------------------------------------------------------------------------


def test_broadcast_error_names_both_shapes():
    with raises("shape", "[2]", "[3]"):
        E.ones(2) + E.ones(3)
    with raises("shape", "[2, 3]", "[4, 3]"):
        E.mul(E.ones(2, 3), E.ones(4, 3))


def test_mm_error_names_both_shapes():
    with raises("shape", "[2, 3]", "[2, 3]"):
        E.mm(E.ones(2, 3), E.ones(2, 3))
    with raises("shape", "[2, 3]", "[4]"):
        E.matmul(E.ones(2, 3), E.ones(4))
    with raises("shape", "[3]", "[4]"):
        E.dot(E.ones(3), E.ones(4))
    with raises("shape", "[2]", "[5]"):
        E.matmul(E.ones(2, 3, 4), E.ones(5, 4, 2))


def test_invalid_reshape_is_a_shape_error():
    with raises("shape", "[4, 2]", "6"):
        E.reshape(E.ones(2, 3), 4, 2)
    with raises("shape", "6"):
        E.reshape(E.ones(2, 3), 4, -1)


def test_where_with_shapes_that_do_not_broadcast_is_a_shape_error():
    with raises("shape", "[3]", "[4]"):
        E.where(E.ones(2) > 0, E.ones(3), E.ones(4))


def test_expand_to_fewer_dims_is_a_shape_error():
    with raises("shape", "[2, 3]", "[3]"):
        E.expand(E.ones(2, 3), 3)
    with raises("shape", "[3]", "[2, 4]"):
        E.expand(E.ones(3), 2, 4)


def test_index_errors():
    with raises("shape", "out of bounds"):
        E.ones(3)[5]
    with raises("shape", "too many indices"):
        E.ones(3)[1, 2]
    with raises("value", "Dimension out of range"):
        E.sum(E.ones(2, 3), dim=2)


# ----- devices ---------------------------------------------------------------------------------

FAKE = Backend("cuda:9", np, False, None)


def on_fake(values):
    return Tensor(np.asarray(values, dtype=np.float32), FAKE)


def test_device_mismatch_names_both_devices():
    with raises("device", "cpu", "cuda:9"):
        E.ones(2) + on_fake([1.0, 2.0])
    with raises("device", "cpu", "cuda:9"):
        E.mm(E.ones(2, 2), on_fake([[1.0, 2.0], [3.0, 4.0]]))
    with raises("device", "cpu", "cuda:9"):
        E.where(E.ones(2) > 0, E.ones(2), on_fake([1.0, 2.0]))


def test_moving_to_a_device_lands_there_and_gradients_come_back():
    x = E.tensor([1.0, 2.0], requires_grad=True)
    y = E.to(x, FAKE)
    assert y.device == "cuda:9"
    with raises("device", "cpu", "cuda:9"):
        y + E.ones(2)
    z = E.sum(y * on_fake([3.0, 4.0]))
    assert z.device == "cuda:9"
    z.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [3, 4])
    assert E.to(x, "cpu") is x


def test_asking_for_cuda_without_cupy_says_what_is_missing():
    from adcli.backend import cuda_available

    if cuda_available():
        pytest.skip("a CUDA GPU with CuPy is present here")
    with raises("device", "CuPy", "pip install 'adcli[cuda]'"):
        E.tensor([1.0], device="cuda")
    with raises("device", "CuPy"):
        E.ones(2, device="cuda:0")
    with raises("device", "CuPy"):
        E.ones(2).cuda()


def test_unknown_device_is_a_device_error():
    with raises("device", "gpu"):
        E.ones(2, device="gpu")


# ----- the element limit ---------------------------------------------------------------------------


def test_huge_allocation_is_refused_before_allocating():
    with raises("limit", "1,000,000,000,000"):
        E.zeros(10**6, 10**6)
    with raises("limit"):
        E.randn(10**6, 10**6)
    with raises("limit"):
        E.full([10**6, 10**6], 1.0)
    with raises("limit"):
        E.eye(10**6)
    with raises("limit"):
        E.arange(0, 10**12)


def test_element_limit_applies_to_every_way_of_making_a_tensor(element_limit):
    element_limit(10)
    E.ones(10)  # at the limit: fine
    for make in (
        lambda: E.ones(11),
        lambda: E.zeros(3, 4),
        lambda: E.randn(11),
        lambda: E.rand(11),
        lambda: E.full([11], 2.0),
        lambda: E.eye(4),
        lambda: E.arange(11),
        lambda: E.linspace(0, 1, 11),
        lambda: E.tensor([0.0] * 11),
        lambda: E.ones(1, 3) + E.ones(4, 1),
        lambda: E.ones(4, 1) * E.ones(3),
        lambda: E.expand(E.ones(3), 4, 3),
        lambda: E.mm(E.ones(4, 1), E.ones(1, 3)),
        lambda: E.matmul(E.ones(2, 2, 1), E.ones(1, 3)),
        lambda: E.where(E.ones(4, 1) > 0, E.ones(1, 3), 0.0),
    ):
        with raises("limit", "over the limit of 10"):
            make()


def test_element_limit_is_restored():
    assert STATE.max_elements == 100_000_000


# ----- PyTorch's values at the edges (kinks, zeros, ties) ----------------------------------------


def test_relu_and_abs_have_zero_gradient_at_zero():
    x = f64([0.0, 2.0, -2.0], requires_grad=True)
    np.testing.assert_array_equal(E.grad(E.sum(E.relu(x)), x).numpy(), [0, 1, 0])
    np.testing.assert_array_equal(E.grad(E.sum(E.abs(x)), x).numpy(), [0, 1, -1])


def test_maximum_and_minimum_share_the_gradient_at_ties():
    x = f64([0.0, 1.0, -1.0], requires_grad=True)
    zero = f64([0.0, 0.0, 0.0], requires_grad=True)
    gx, gz = E.grad(E.sum(E.maximum(x, zero)), [x, zero])
    np.testing.assert_array_equal(gx.numpy(), [0.5, 1, 0])
    np.testing.assert_array_equal(gz.numpy(), [0.5, 0, 1])
    gx, gz = E.grad(E.sum(E.minimum(x, zero)), [x, zero])
    np.testing.assert_array_equal(gx.numpy(), [0.5, 0, 1])
    np.testing.assert_array_equal(gz.numpy(), [0.5, 1, 0])
    np.testing.assert_array_equal(E.maximum(x, 0.0).numpy(), [0, 1, 0])
    np.testing.assert_array_equal(E.minimum(x, 0.0).numpy(), [0, 0, -1])


def test_maximum_propagates_nan():
    out = E.maximum(f64([np.nan, 1.0]), f64([0.0, 2.0]))
    assert np.isnan(out.numpy()[0]) and out.numpy()[1] == 2.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_pow_gradients_at_zero_and_negative_bases_follow_pytorch():
    # a tensor exponent of 0 at a zero base: 0, not 0 * 0^-1 = nan
    x = f64([0.0, 1.0], requires_grad=True)
    e = f64([0.0, 0.0], requires_grad=True)
    gx, ge = E.grad(E.sum(x**e), [x, e])
    np.testing.assert_array_equal(gx.numpy(), [0, 0])
    np.testing.assert_array_equal(ge.numpy(), [0, 0])
    # d(a^b)/db at a == 0 is 0 for b >= 0 and -inf for b < 0
    a = f64([0.0, 0.0, 2.0], requires_grad=True)
    b = f64([2.0, -3.0, 1.0], requires_grad=True)
    ga, gb = E.grad(E.sum(a**b), [a, b])
    np.testing.assert_array_equal(ga.numpy(), [0, -np.inf, 1])
    np.testing.assert_allclose(gb.numpy(), [0, -np.inf, 2 * np.log(2)])
    # a Python-number base: 0 -> 0 or -inf; negative -> nan
    y = f64([2.0, -3.0], requires_grad=True)
    np.testing.assert_array_equal(E.grad(E.sum(0.0**y), y).numpy(), [0, -np.inf])
    assert np.isnan(E.grad(E.sum((-2.0) ** y), y).numpy()).all()
    # a constant exponent of 0 anywhere: 0
    np.testing.assert_array_equal(E.grad(E.sum(x**0), x).numpy(), [0, 0])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_sqrt_and_log_at_zero_give_infinite_gradients():
    x = f64([0.0], requires_grad=True)
    assert E.grad(E.sum(E.sqrt(x)), x).numpy()[0] == np.inf
    assert E.grad(E.sum(E.log(x)), x).numpy()[0] == np.inf
