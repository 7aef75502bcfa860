"""In-place updates with PyTorch's semantics (spec: Autograd semantics, v2):
``+= -= *= /=``, ``a[i] = v``, ``.grad =``, ``.data =``, ``.requires_grad =``,
version counters and the errors PyTorch raises. Gradients are checked against
closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import adcli.engine as E
from adcli.errors import AdcliError
from adcli.lang.interpreter import Session

MODIFIED = (
    "one of the variables needed for gradient computation has been modified by an inplace operation"
)
LEAF = "a leaf Variable that requires grad is being used in an in-place operation."


def variables(source: str) -> dict:
    session = Session()
    session.run(source, "<test>", lambda output: None)
    return session.variables()


def error_of(source: str) -> AdcliError:
    with pytest.raises(AdcliError) as info:
        Session().run(source, "<test>", lambda output: None)
    return info.value


def close(value, expected, tol=1e-6) -> None:
    got = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
    np.testing.assert_allclose(got, np.asarray(expected, dtype=np.float64), rtol=tol, atol=tol)


@pytest.mark.parametrize(
    ("op", "expected"), [("+=", [3, 4]), ("-=", [-1, 0]), ("*=", [2, 4]), ("/=", [0.5, 1])]
)
def test_augmented_assignment_on_a_plain_tensor_keeps_its_identity(op, expected):
    v = variables(f"a = tensor([1., 2.])\nalias = a\na {op} 2")
    close(v["a"], expected)
    assert v["alias"] is v["a"]


def test_in_place_on_a_leaf_that_requires_grad_is_an_error_outside_no_grad():
    err = error_of("w = ones(2, requires_grad=true)\nw -= 1")
    assert err.message == LEAF
    assert (err.span.line, err.span.column) == (2, 3)


@pytest.mark.parametrize("statement", ["w[0] = 5", "w.zero_()", "w *= 2"])
def test_every_in_place_form_refuses_such_a_leaf(statement):
    assert error_of(f"w = ones(2, requires_grad=true)\n{statement}").message == LEAF


def test_inside_no_grad_a_leaf_keeps_identity_requires_grad_and_grad():
    src = """
    w = tensor([1., 2.], requires_grad=true)
    sum(w^2).backward()
    g = w.grad
    same = w
    no_grad { w -= 0.5 * w.grad }
    """
    v = variables(src)
    w = v["w"]
    assert w is v["same"] and w.is_leaf and w.requires_grad
    assert w.grad is v["g"]
    close(w, [0.0, 0.0])  # w - 0.5 * 2w


def test_in_place_on_a_non_leaf_is_recorded():
    src = """
    x = tensor([1., 2.], requires_grad=true)
    y = x * 3
    y += x^2
    name = y.grad_fn
    sum(y).backward()
    """
    v = variables(src)
    assert v["name"].name() == "AddBackward"
    close(v["x"].grad, [3 + 2, 3 + 4])  # d/dx (3x + x^2)


def test_multiplying_in_place_uses_the_old_value_in_the_gradient():
    src = """
    x = tensor([1., 2.], requires_grad=true)
    y = x + 0
    y *= x
    sum(y).backward()
    """
    close(variables(src)["x"].grad, [2, 4])  # d/dx x^2


def test_index_assignment_records_copy_slices():
    src = """
    x = tensor([1., 2., 3.], requires_grad=true)
    y = x * 1
    y[0] = x[2] * 10
    name = y.grad_fn
    sum(y).backward()
    """
    v = variables(src)
    assert v["name"].name() == "CopySlices"
    close(v["y"], [30, 2, 3])
    close(v["x"].grad, [0, 1, 11])  # y = (10 x2, x1, x2)


def test_index_assignment_of_a_plain_tensor_with_slices_and_broadcasting():
    v = variables("a = zeros(2, 3)\na[0] = 1\na[1, 1:] = tensor([5., 6.])")
    close(v["a"], [[1, 1, 1], [0, 5, 6]])


def test_a_saved_tensor_modified_afterwards_fails_backward():
    src = """
    x = tensor([1., 2.], requires_grad=true)
    y = x * 2
    z = y * y
    y += 1
    sum(z).backward()
    """
    err = error_of(src)
    assert err.kind == "value"
    assert err.message.startswith(MODIFIED)
    assert err.span.line == 6


def test_a_saved_output_modified_afterwards_fails_backward():
    src = "x = tensor([1.], requires_grad=true)\ny = exp(x)\ny *= 2\nsum(y).backward()"
    err = error_of(src)
    assert err.message.startswith(MODIFIED) and "ExpBackward" in err.message


def test_a_graph_that_saved_nothing_is_not_affected():
    src = """
    x = tensor([1., 2.], requires_grad=true)
    y = x + 1
    z = y + 1
    no_grad { y += 100 }
    sum(z).backward()
    """
    close(variables(src)["x"].grad, [1, 1])


def test_shape_and_dtype_rules_of_in_place():
    err = error_of("a = ones(3)\na += ones(2, 3)")
    assert err.message == "output with shape [3] doesn't match the broadcast shape [2, 3]"
    v = variables('a = ones(2)\na += tensor([1., 2.], dtype="float64")')
    assert v["a"].dtype == "float32"  # in place keeps the tensor's dtype


def test_setting_grad_data_and_requires_grad():
    src = """
    x = tensor([1., 2.])
    x.requires_grad = true
    sum(x * 3).backward()
    x.grad = none
    sum(x * 5).backward()
    g = x.grad
    x.data = tensor([7., 8.])
    """
    v = variables(src)
    close(v["g"], [5, 5])
    close(v["x"], [7, 8])
    assert v["x"].requires_grad and v["x"].is_leaf


def test_setting_grad_checks_its_shape():
    err = error_of("x = ones(2, requires_grad=true)\nx.grad = ones(3)")
    assert err.kind == "shape"


def test_setting_an_unknown_attribute_is_an_error():
    err = error_of("x = ones(2)\nx.shape = 3")
    assert err.message == "cannot set the attribute 'shape' of a tensor"


def test_tuples_are_immutable():
    assert error_of("t = (1, 2)\nt[0] = 3").message == "a tuple cannot be changed"


def test_numbers_update_by_rebinding():
    v = variables("s = 1\nt = s\ns += 2")
    assert v["s"] == 3 and v["t"] == 1


def test_engine_version_stamps():
    x = E.tensor([1.0, 2.0])
    before = x.version
    E.update_(x, "+", 1.0)
    assert x.version > before
    E.index_put_(x, 0, 5.0)
    close(x, [5, 3])


def test_zeroing_a_non_leaf_in_place_is_recorded():
    # PyTorch: after y.zero_() no gradient flows through y to x
    src = (
        "x = tensor([1., 2.], requires_grad=true)\ny = x * 2\ny.zero_()\nsum(y * 3 + x).backward()"
    )
    close(variables(src)["x"].grad, [1, 1])
