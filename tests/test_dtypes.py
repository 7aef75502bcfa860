"""int64 and bool tensors: creation, casts, comparisons, no gradients, display and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

import adcli.engine as E
from adcli.cli.render import format_tensor, tensor_footer, value_json
from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError
from adcli.lang.interpreter import Session

FLOAT_ONLY = "only Tensors of floating point dtype can require gradients"


def ev(source: str):
    return Session().run(source, "<test>", lambda output: None)


def error_of(source: str) -> AdcliError:
    with pytest.raises(AdcliError) as info:
        Session().run(source, "<test>", lambda output: None)
    return info.value


# ----- creation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, dtype, values",
    [
        ('tensor([1, 2, 3], dtype="int64")', "int64", [1, 2, 3]),
        ('tensor([1.7, -2.7], dtype="int64")', "int64", [1, -2]),  # truncated, as PyTorch
        ('tensor([1, 0, 2], dtype="bool")', "bool", [True, False, True]),
        ('zeros(2, dtype="int64")', "int64", [0, 0]),
        ('ones(2, dtype="bool")', "bool", [True, True]),
        ('arange(4, dtype="int64")', "int64", [0, 1, 2, 3]),
        ('full([2], 7, dtype="int64")', "int64", [7, 7]),
        ('eye(2, dtype="bool")', "bool", [[True, False], [False, True]]),
    ],
)
def test_creation_with_an_integer_or_bool_dtype(source, dtype, values):
    t = ev(source)
    assert t.dtype == dtype
    assert t.numpy().tolist() == values


@pytest.mark.parametrize(
    "source",
    [
        'tensor([1, 2], dtype="int64", requires_grad=true)',
        'zeros(2, dtype="bool", requires_grad=true)',
        'x = tensor([1, 2], dtype="int64"); x.requires_grad_()',
    ],
)
def test_only_floating_tensors_can_require_grad(source):
    err = error_of(source)
    assert err.message == FLOAT_ONLY
    assert err.span is not None


def test_engine_refuses_requires_grad_on_integers():
    x = E.tensor([1, 2], dtype="int64")
    with pytest.raises(AdcliError, match="floating point dtype"):
        x.requires_grad = True
    with pytest.raises(AdcliError, match="floating point dtype"):
        E.jacobian(lambda v: v * 2, x)


# ----- casts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, dtype",
    [("long", "int64"), ("bool", "bool"), ("float", "float32"), ("double", "float64")],
)
def test_cast_methods(method, dtype):
    t = ev(f"tensor([0., 1.5, -2.5]).{method}()")
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.array([0.0, 1.5, -2.5], np.float32).astype(dtype))


def test_to_takes_every_dtype():
    assert ev('tensor([1.5]).to("int64")').dtype == "int64"
    assert ev('tensor([1.5]).to("bool")').dtype == "bool"


def test_a_cast_to_an_integer_dtype_carries_no_gradient():
    x = E.randn(3, requires_grad=True)
    i = E.cast(x, "int64")
    assert not i.requires_grad and i.grad_fn is None
    f = E.cast(x, "float64")  # between floats: differentiable, gradient in the source dtype
    E.sum(f * f).backward()
    assert x.grad.dtype == "float32"
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), rtol=1e-6)


# ----- comparisons and flows without gradients ------------------------------------------------------


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparisons_give_bool_tensors(op):
    t = ev(f"tensor([1., 2, 3]) {op} 2")
    assert t.dtype == "bool"
    want = eval(f"np.array([1., 2, 3]) {op} 2")
    np.testing.assert_array_equal(t.numpy(), want)
    assert not t.requires_grad


def test_comparison_of_a_tensor_that_requires_grad_records_nothing():
    t = ev("x = randn(3, requires_grad=true); x > 0")
    assert t.dtype == "bool" and t.grad_fn is None and not t.requires_grad


def test_integer_tensors_flow_through_ops_without_gradients():
    x = E.tensor([1.0, 2.0, 3.0], requires_grad=True)
    i = E.tensor([2, 0, 1], dtype="int64")
    y = x * i  # float32 result, differentiable in x only
    assert y.dtype == "float32" and y.requires_grad
    E.sum(y).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0])
    z = i * i + 1
    assert z.dtype == "int64" and not z.requires_grad
    assert E.sum(i).dtype == "int64"
    assert E.sum(E.tensor([True, True, False], dtype="bool")).item() == 2


def test_mask_arithmetic():
    m = ev("(tensor([1., -1, 2]) > 0).float() * 3")
    assert m.dtype == "float32"
    np.testing.assert_array_equal(m.numpy(), [3.0, 0.0, 3.0])


def test_mean_of_integers_is_pytorchs_error():
    err = error_of('mean(tensor([1, 2], dtype="int64"))')
    assert "mean(): could not infer output dtype" in err.message and "Long" in err.message


def test_float_functions_of_integers_are_floating():
    t = ev('sqrt(tensor([1, 4, 9], dtype="int64"))')
    assert t.dtype == "float32"
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0, 3.0])
    assert ev('abs(tensor([-1, 2], dtype="int64"))').dtype == "int64"


def test_item_of_integers_and_bools_are_python_ints_and_bools():
    assert ev('item(tensor([3], dtype="int64"))') == 3
    assert type(ev('item(tensor([3], dtype="int64"))')) is int
    assert ev("item(tensor(1.) > 0)") is True


def test_bool_negation_and_subtraction_are_pytorchs_errors():
    assert "Negation" in error_of('-tensor([true], dtype="bool")').message
    assert "with two bool tensors" in error_of('a = tensor([true], dtype="bool"); a - a').message
    assert "with a bool tensor" in error_of('tensor([true], dtype="bool") - 1').message
    assert "with a bool tensor" in error_of("ones(2) - true").message


def test_negative_integer_power_is_an_error():
    err = error_of('tensor([2], dtype="int64") ^ -1')
    assert err.message == "Integers to negative integer powers are not allowed."


# ----- display ------------------------------------------------------------------------------------


def test_display_is_pytorchs():
    i = E.tensor([1, 2], dtype="int64")
    b = E.tensor([True, False], dtype="bool")
    assert format_tensor(i) == "tensor([1, 2])"
    assert format_tensor(b) == "tensor([ True, False])"  # PyTorch pads as NumPy does
    assert "dtype=int64" in tensor_footer(i)
    assert "dtype=bool" in tensor_footer(b)


def test_json_values_are_ints_and_bools():
    i = value_json(E.tensor([1, 2], dtype="int64"))
    b = value_json(E.tensor([True, False], dtype="bool"))
    assert i["value"] == [1, 2] and all(type(v) is int for v in i["value"])
    assert b["value"] == [True, False] and all(type(v) is bool for v in b["value"])
    assert json.loads(json.dumps(i))["dtype"] == "int64"
    assert b["dtype"] == "bool"


def test_tensor_class_keeps_integer_arrays():
    t = E.tensor([1, 2], dtype="int64")
    assert isinstance(t, Tensor) and t.numpy().dtype == np.int64
