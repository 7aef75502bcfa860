"""dtypes and type promotion, as PyTorch does it (one place: :func:`result_type`).

The engine's dtypes are ``bool``, ``int64``, ``float32`` and ``float64``, in
three categories: bool < integer < floating. Two dtypes promote to the larger
of ``bool < int64 < float32 < float64`` (PyTorch's table: int64 with float32
is float32, not NumPy's float64).

Operands come in three priority groups, and a lower group only matters when it
is of a higher *category* than the groups above it:

1. tensors with at least one dimension,
2. 0-d tensors,
3. Python numbers: a bool is ``bool``, an int is ``int64``, a float is the
   default floating dtype (:func:`get_default_dtype`, float32 unless changed).

So ``float32[3] + float64 0-d`` is float32 (same category: the 0-d tensor does
not widen), ``int64[3] + 2.5`` is float32 (a float number lifts an integer
tensor to the default dtype), ``int64[3] + float64 0-d`` is float64, and
``float32 0-d + float64 0-d`` is float64 (same group). True division of
integers or bools gives the default floating dtype; ``//`` and ``%`` keep them.
"""

from __future__ import annotations

import numpy as np

BOOL = np.dtype(np.bool_)
INT64 = np.dtype(np.int64)
FLOAT32 = np.dtype(np.float32)
FLOAT64 = np.dtype(np.float64)

#: position in the promotion lattice (a total order for these four)
_RANK = {BOOL: 0, INT64: 1, FLOAT32: 2, FLOAT64: 3}
_BY_RANK = (BOOL, INT64, FLOAT32, FLOAT64)

_default = [FLOAT32]


def get_default_dtype() -> np.dtype:
    """The floating dtype Python floats (and true division of integers) turn into."""
    return _default[0]


def set_default_dtype(dtype) -> None:
    """Set the default floating dtype (``torch.set_default_dtype``): float32 or float64."""
    dtype = np.dtype(dtype)
    if dtype not in (FLOAT32, FLOAT64):
        raise ValueError("the default dtype must be a floating dtype (float32 or float64)")
    _default[0] = dtype


def is_floating(dtype) -> bool:
    return dtype.kind == "f"


def category(dtype) -> int:
    """0 for bool, 1 for integers, 2 for floating dtypes."""
    kind = dtype.kind
    return 2 if kind == "f" else (0 if kind == "b" else 1)


def promote_types(a, b) -> np.dtype:
    """The smallest dtype both ``a`` and ``b`` fit (PyTorch's ``promote_types``)."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    ra = _RANK.get(a)
    rb = _RANK.get(b)
    if ra is None or rb is None:  # a dtype from outside the engine: NumPy decides
        return np.promote_types(a, b)
    return _BY_RANK[max(ra, rb)]


def _number_dtype(x) -> np.dtype:
    if isinstance(x, bool):
        return BOOL
    if isinstance(x, (int, np.integer)):
        return INT64
    return _default[0]


def _combine(higher, lower):
    """PyTorch's ``combine_categories``: ``lower`` counts only if of a higher category."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> np.dtype:
    """The dtype of an elementwise op on ``operands`` (tensors, arrays or Python numbers).

    Anything with a ``dtype`` and ``ndim`` counts as a tensor. The rules are the
    module's docstring: dimensioned tensors first, then 0-d tensors, then numbers,
    each lower group counting only when it is of a higher category.
    """
    dims = zero = numbers = None
    for x in operands:
        dtype = getattr(x, "dtype", None)
        if dtype is None:
            numbers = promote_types(numbers, _number_dtype(x))
        elif x.ndim:
            dims = promote_types(dims, np.dtype(dtype))
        else:  # a 0-d tensor (or a NumPy scalar)
            zero = promote_types(zero, np.dtype(dtype))
    return _combine(dims, _combine(zero, numbers))


def true_divide_type(dtype) -> np.dtype:
    """The dtype of ``a / b`` given ``result_type(a, b)``: integers divide into floats."""
    return dtype if dtype.kind == "f" else _default[0]
