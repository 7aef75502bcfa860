"""Tensors as text, the way PyTorch writes them.

:func:`format_array` is the numbers (``tensor([0.1390, 0.5486])``); :func:`tensor_repr`
adds what PyTorch's ``repr``/``print`` adds after them (``device=``, ``dtype=``
when it is not the default, ``grad_fn=<...>`` or ``requires_grad=True``). Both the
language's ``print`` and the command line's display use these, so a tensor reads
the same everywhere. Duck-typed on purpose: this module imports nothing of the
engine (``tensor.py`` uses it for ``Tensor.__repr__``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def format_array(array: Any, prefix: str = "tensor(", suffix: str = ")") -> str:
    """The numbers of ``array`` the way PyTorch prints them, wrapped in ``prefix``/``suffix``.

    Floats get 4 decimals (scientific notation when the magnitudes call for it), or a
    bare ``1.`` when every value is a whole number; big arrays are summarised with
    their first and last three items. Wrapped lines line up under the first one.
    """
    array = np.asarray(array)
    options: dict[str, Any] = {"precision": 4, "floatmode": "fixed", "suppress_small": False}
    if array.dtype.kind == "f":
        finite = np.abs(array[np.isfinite(array)])
        if finite.size == 0 or (np.all(finite == np.floor(finite)) and finite.max() < 1e8):
            # PyTorch's "int mode": whole numbers print as `2.` and never switch to e-notation.
            options = {"precision": 0, "floatmode": "fixed", "suppress_small": True}
    body = np.array2string(
        array,
        separator=", ",
        prefix=prefix,
        suffix=suffix,
        threshold=1000,
        edgeitems=3,
        max_line_width=80,
        **options,
    )
    return f"{prefix}{body}{suffix}"


def tensor_suffix(tensor: Any, default_dtype: str = "float32") -> str:
    """``, device='cuda:0', dtype=torch.float64, requires_grad=True``: PyTorch's extras."""
    parts = []
    if tensor.device != "cpu":
        parts.append(f"device='{tensor.device}'")
    if tensor.dtype != default_dtype and tensor.dtype in ("float32", "float64", "float16"):
        parts.append(f"dtype=torch.{tensor.dtype}")
    grad_fn = tensor.grad_fn
    if grad_fn is not None:
        parts.append(f"grad_fn=<{grad_fn.name()}>")
    elif tensor.requires_grad:
        parts.append("requires_grad=True")
    return "".join(", " + p for p in parts)


def tensor_repr(tensor: Any, default_dtype: str = "float32") -> str:
    """``tensor([1., 2.], requires_grad=True)``, ``tensor(5., grad_fn=<SqrtBackward>)``."""
    return format_array(
        tensor.numpy(), prefix="tensor(", suffix=tensor_suffix(tensor, default_dtype) + ")"
    )
