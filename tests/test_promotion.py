"""Type promotion against PyTorch's documented rules (docs: "Type Promotion").

PyTorch's rules, restricted to the engine's dtypes bool < int64 < float32 < float64:
operands are dimensioned tensors, 0-d tensors and Python numbers; a lower group
decides only when it is of a higher category (bool < integer < floating) than the
groups above it; a Python float is the default dtype (float32).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import adcli.engine as E
from adcli.engine.promotion import (
    get_default_dtype,
    promote_types,
    result_type,
    set_default_dtype,
)
from adcli.errors import AdcliError
from adcli.lang.interpreter import Session

B, I, F, D = np.dtype(bool), np.dtype(np.int64), np.dtype(np.float32), np.dtype(np.float64)


def t(dtype, ndim=1):
    return E.tensor(np.ones((2,) * ndim), dtype=dtype.name)


# PyTorch's torch.promote_types for these four (its table, not NumPy's: int64 + float32 is float32)
PROMOTE = {
    (B, B): B,
    (B, I): I,
    (B, F): F,
    (B, D): D,
    (I, I): I,
    (I, F): F,
    (I, D): D,
    (F, F): F,
    (F, D): D,
    (D, D): D,
}


@pytest.mark.parametrize("a, b", list(itertools.product([B, I, F, D], repeat=2)))
def test_promote_types_is_pytorchs_table(a, b):
    want = PROMOTE.get((a, b)) or PROMOTE[(b, a)]
    assert promote_types(a, b) == want
    # and a dimensioned op of the two gives it
    assert (t(a) * t(b)).dtype == want.name


@pytest.mark.parametrize(
    "operands, want",
    [
        # the documentation's examples, in the engine's dtypes
        ((5.5, 5), F),  # torch.add(5.5, 5): the default dtype
        ((t(I), 5), I),  # int tensor + python int
        ((t(I), t(I, 0)), I),
        ((t(B), t(I)), I),
        ((t(F), t(D)), D),
        ((t(I), t(F)), F),  # long + float: float32, large enough for the float
        # 0-d tensors and numbers do not widen within a category
        ((t(F), t(D, 0)), F),
        ((t(F), 2.5), F),
        ((t(D), 2.5), D),
        ((t(F, 0), t(D, 0)), D),  # both 0-d: the same group
        # ... but a higher category lifts
        ((t(I), 2.5), F),
        ((t(I), t(D, 0)), D),
        ((t(B), 2), I),
        ((t(B), 2.5), F),
        ((t(B), True), B),
        ((t(B, 0), 2), I),
        ((t(I, 0), 2.5), F),
        ((t(F, 0), t(I)), F),
    ],
)
def test_result_type(operands, want):
    assert result_type(*operands) == want


def test_results_follow_result_type():
    f32 = E.ones(3)
    f64_0d = E.tensor(2.0, dtype="float64")
    assert (f32 + f64_0d).dtype == "float32"
    assert (f64_0d + f32).dtype == "float32"
    assert (E.tensor([1, 2], dtype="int64") + 2.5).dtype == "float32"
    assert (2.5 * E.tensor([1, 2], dtype="int64")).dtype == "float32"
    assert (E.tensor([1, 2], dtype="int64") + f64_0d).dtype == "float64"
    b = E.tensor([True, False], dtype="bool")
    assert (b + b).dtype == "bool" and (b + b).numpy().tolist() == [True, False]
    assert (b * b).dtype == "bool"
    assert (b + 1).dtype == "int64"
    assert (b + True).dtype == "bool"  # a Python bool is a bool
    assert (E.tensor([1, 2], dtype="int64") * True).dtype == "int64"
    assert (E.ones(2) * True).dtype == "float32"
    assert (b**2).dtype == "int64"
    assert E.where(b, E.tensor([1, 2], dtype="int64"), E.ones(2)).dtype == "float32"


def test_true_division_of_integers_is_floating():
    i = E.tensor([3, 4], dtype="int64")
    q = i / E.tensor([2, 8], dtype="int64")
    assert q.dtype == "float32"
    np.testing.assert_array_equal(q.numpy(), [1.5, 0.5])
    assert (i / 2).dtype == "float32"
    assert (1 / i).dtype == "float32"
    b = E.tensor([True], dtype="bool")
    assert (b / b).dtype == "float32"


def test_the_default_dtype_sets_what_numbers_become():
    try:
        set_default_dtype(np.float64)
        assert (E.tensor([1, 2], dtype="int64") + 2.5).dtype == "float64"
        assert (E.tensor([1, 2], dtype="int64") / 2).dtype == "float64"
        assert (E.ones(2) + 2.5).dtype == "float32"  # a number never widens a float tensor
    finally:
        set_default_dtype(np.float32)


def test_gradients_flow_back_through_promotion_in_the_inputs_dtype():
    x = E.randn(3, requires_grad=True)  # float32
    s = E.tensor(2.0, dtype="float64", requires_grad=True)  # 0-d float64
    y = E.sum(x * s)
    assert y.dtype == "float32"
    y.backward()
    assert s.grad.dtype == "float64" and x.grad.dtype == "float32"
    np.testing.assert_allclose(s.grad.item(), float(x.numpy().astype(np.float64).sum()), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2.0))


def test_float32_and_float64_tensors_promote_to_float64():
    x = E.randn(2, requires_grad=True)
    w = E.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = x * w
    assert y.dtype == "float64"
    E.sum(y).backward()
    assert x.grad.dtype == "float32"
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0])


def test_promotion_in_the_language():
    run = lambda src: Session().run(src, "<test>", lambda output: None)
    assert run('(tensor([1, 2], dtype="int64") + 2.5).dtype') == "float32"
    assert run('(tensor([1, 2], dtype="int64") * 2).dtype') == "int64"
    assert run('(tensor([1, 2], dtype="int64") / 2).dtype') == "float32"
    assert run('(ones(3) + tensor(1, dtype="float64")).dtype') == "float32"
    assert run('(ones(3, dtype="float64") + ones(3)).dtype') == "float64"


def test_the_session_dtype_is_the_default_floating_dtype():
    src = '(tensor([1, 2], dtype="int64") + 2.5).dtype'
    assert Session(dtype="float64").run(src, "<test>", lambda output: None) == "float64"
    assert Session().run(src, "<test>", lambda output: None) == "float32"
    assert get_default_dtype() == np.float32  # restored after the run


# ----- where PyTorch does not promote --------------------------------------------------------
@pytest.mark.parametrize(
    ("a_shape", "b_shape", "message"),
    [
        ((2, 2), (2, 2), "expected m1 and m2 to have the same dtype, but got: float != double"),
        ((2, 2), (2,), "expected m1 and m2 to have the same dtype, but got: float != double"),
        ((2,), (2,), "expected both vectors to have same dtype, but found Float and Double"),
        ((1, 2, 2), (1, 2, 2), "expected scalar type Float but found Double"),
    ],
)
def test_matrix_products_want_one_dtype(a_shape, b_shape, message):
    # torch.matmul(float32, float64) raises rather than promoting (messages as PyTorch's).
    a = E.tensor(np.ones(a_shape), dtype="float32")
    b = E.tensor(np.ones(b_shape), dtype="float64")
    with pytest.raises(AdcliError) as info:
        E.matmul(a, b)
    assert info.value.kind == "type"
    assert info.value.message.endswith(f": {message}")


def test_mm_and_dot_want_one_dtype_too():
    with pytest.raises(AdcliError, match="float != long int"):
        E.mm(t(F, 2), t(I, 2))
    with pytest.raises(AdcliError, match="found Double and Float"):
        E.dot(t(D), t(F))
    # One dtype, even an integer one, is fine (as torch.matmul on int64).
    assert E.mm(t(I, 2), t(I, 2)).dtype == "int64"


@pytest.mark.parametrize(("dtype", "word"), [(F, "Float"), (D, "Double"), (I, "Long")])
def test_where_wants_a_boolean_condition(dtype, word):
    with pytest.raises(AdcliError) as info:
        E.where(t(dtype), t(F), t(F))
    assert info.value.message == (
        f"where expected condition to be a boolean tensor, but got a tensor with dtype {word}"
    )
    assert E.where(t(B), t(F), t(D)).dtype == "float64"  # the operands still promote


def test_a_dtype_mismatch_names_int64_as_pytorch_does():
    # torch.dot(int64, float32): "... but found Long and Float" (Long, not Int).
    with pytest.raises(AdcliError, match="found Long and Float"):
        E.dot(t(I), t(F))
    with pytest.raises(AdcliError, match="expected scalar type Long but found Float"):
        E.matmul(E.tensor(np.ones((1, 2, 2)), dtype="int64"), E.tensor(np.ones((1, 2, 2))))
