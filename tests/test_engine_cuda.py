"""A representative subset of the engine tests on device "cuda" (CuPy).

Skipped, with the reason, where there is no CUDA GPU or CuPy is not installed.
Gradients on the GPU are compared with finite differences computed on the CPU.
"""

from __future__ import annotations

import engine_cases as C
import numpy as np
import pytest

import adcli.engine as E
from adcli.backend import cuda_available
from adcli.engine.autodiff import hessian, jacobian
from adcli.engine.taylor import nth_grads
from adcli.engine.tensor import STATE
from adcli.errors import AdcliError

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU / CuPy not installed"),
]

SUBSET = [
    "exp[2, 3]",
    "log[3]",
    "sqrt[]",
    "sin[2, 3]",
    "tanh[3]",
    "sigmoid[wide]",
    "relu[2, 3]",
    "abs[3]",
    "add[3, 1]x[1, 4]",
    "sub[4]x[3, 4]",
    "mul[]x[2, 3]",
    "div[2, 1, 3]x[4, 1]",
    "pow_tensor[3, 4]x[4]",
    "x ** 0.5 [2, 3]",
    "2 ** x [2, 3]",
    "3 / x [2, 3]",
    "where[2, 3]:[3],[2, 1]",
    "maximum[3, 1]x[1, 4]",
    "tan",
    "sum(dim=(0, 2), keepdim=True)",
    "mean(dim=1, keepdim=True)",
    "sum_to[2, 3, 4]->[3, 1]",
    "expand[3, 1]->[2, 3, 4]",
    "reshape[2, 3, 4]->[4, -1]",
    "permute(2,0,1)",
    "x.T",
    "x[::2]",
    "x[None, :, 1]",
    "index_backward 2d",
    "mm[2,3]@[3,4]",
    "dot",
    "mv [2,3]@[3]",
    "vm [3]@[3,4]",
    "bmm broadcast [2,1,3,4]@[3,4,2]",
    "cast f64->f32->f64 squared",
    "cast f32->f64 (f32 leaf)",
    "x^2 + xy + y^2",
    "log(x^2 + y^2) + z*x*y mean",
]
CUDA_CASES = [c for c in C.CASES if c.name in SUBSET]


def test_the_subset_names_exist():
    assert len(CUDA_CASES) == len(SUBSET)


@pytest.mark.parametrize("case", CUDA_CASES, ids=repr)
def test_first_derivative_on_cuda(case):
    C.check_first(case, device="cuda")


@pytest.mark.parametrize("case", CUDA_CASES, ids=repr)
def test_hessian_vector_product_on_cuda(case):
    C.check_hvp(case, device="cuda")


def test_results_and_grads_live_on_the_gpu():
    import cupy

    x = E.randn(3, device="cuda", requires_grad=True)
    assert x.device == "cuda:0"
    assert x.dtype == "float32"
    assert isinstance(x.array, cupy.ndarray)
    y = E.sum(E.exp(x))
    assert y.device == "cuda:0"
    y.backward()
    assert x.grad.device == "cuda:0"
    assert isinstance(x.grad.array, cupy.ndarray)
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x.numpy()), rtol=1e-6)
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(3))


def test_tutorial_norm_on_cuda():
    x = E.randn(10, device="cuda", requires_grad=True)
    out = E.sqrt(E.sum(x**2, dim=0))
    out.backward(create_graph=True)
    xv = x.numpy().astype(np.float64)
    np.testing.assert_allclose(x.grad.numpy(), xv / np.linalg.norm(xv), rtol=1e-5, atol=1e-6)
    assert out.grad_fn.name() == "SqrtBackward"


def test_tutorial_second_derivative_on_cuda():
    x = E.randn(2, 2, device="cuda", requires_grad=True)
    y = E.randn(2, 2, device="cuda", requires_grad=True)
    out = x**2 + x * y + y**2
    out.backward(E.ones(2, 2, device="cuda"), create_graph=True)
    x_grad = x.grad
    np.testing.assert_allclose(x_grad.numpy(), 2 * x.numpy() + y.numpy(), rtol=1e-6)
    x.grad.data.zero_()
    x_grad.backward(E.ones(2, 2, device="cuda"))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 2.0))
    d3 = nth_grads(x * y, x, 3)[-1]
    assert d3.device == "cuda:0"
    np.testing.assert_array_equal(d3.numpy(), np.zeros((2, 2)))


def test_mm_rows_on_cuda():
    u = E.tensor([[2, 1]], device="cuda", requires_grad=True)
    y = E.mm(u, E.tensor([[1, 2], [3, 4]], device="cuda"))
    y.backward(E.tensor([[1, 0]], device="cuda"), retain_graph=True)
    np.testing.assert_array_equal(u.grad.numpy(), [[1, 3]])
    u.grad.zero_()
    y.backward(E.tensor([[0, 1]], device="cuda"))
    np.testing.assert_array_equal(u.grad.numpy(), [[2, 4]])


def test_moving_between_devices_is_differentiable():
    x = E.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0"
    assert y.grad_fn.name() == "ToCopyBackward"
    z = E.sum(E.sin(y) * y).cpu()
    assert z.device == "cpu"
    z.backward()
    assert x.grad.device == "cpu"
    xv = np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), np.cos(xv) * xv + np.sin(xv))
    assert E.to(y, "cuda") is y


def test_device_mismatch_names_both_devices():
    with pytest.raises(AdcliError) as info:
        E.ones(2) + E.ones(2, device="cuda")
    assert info.value.kind == "device"
    assert "cpu" in info.value.message and "cuda:0" in info.value.message


def test_second_backward_error_and_freeing_on_cuda():
    x = E.randn(3, device="cuda", requires_grad=True)
    y = E.sum(E.exp(x))
    exp_node = y.grad_fn.next_functions[0][0]
    assert exp_node.out_data is not None
    y.backward()
    assert exp_node.freed and exp_node.out_data is None
    with pytest.raises(AdcliError) as info:
        y.backward()
    assert "backward through the graph a second time" in info.value.message


def test_deep_chain_on_cuda():
    x = E.tensor(0.5, dtype="float64", device="cuda", requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.00001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.00001**10_000, rtol=1e-9)


def test_jacobian_and_hessian_on_cuda():
    xv = np.array([1.0, -2.0, 0.5])
    x = E.tensor(xv, dtype="float64", device="cuda")
    j = jacobian(lambda t: t * t, x)
    assert j.device == "cuda:0"
    np.testing.assert_allclose(j.numpy(), np.diag(2 * xv))
    h = hessian(lambda t: E.sum(t**3), x)
    np.testing.assert_allclose(h.numpy(), np.diag(6 * xv))


def test_mixed_dtypes_on_cuda():
    a = E.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    b = E.tensor([3.0, 4.0], dtype="float64", device="cuda", requires_grad=True)
    out = E.sum(a * b)
    assert out.dtype == "float64"
    out.backward()
    assert a.grad.dtype == "float32" and b.grad.dtype == "float64"


def test_element_limit_on_cuda():
    old = STATE.max_elements
    STATE.max_elements = 10
    try:
        with pytest.raises(AdcliError) as info:
            E.zeros(11, device="cuda")
        assert info.value.kind == "limit"
    finally:
        STATE.max_elements = old
    with pytest.raises(AdcliError) as info:
        E.zeros(10**6, 10**6, device="cuda")
    assert info.value.kind == "limit"


def test_a_missing_gpu_index_is_a_device_error():
    with pytest.raises(AdcliError) as info:
        E.ones(2, device="cuda:99")
    assert info.value.kind == "device"
