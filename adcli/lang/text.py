"""Values of the language as text: what ``print`` writes, how a bare expression's
non-tensor value displays, and how a function reads.

``print`` writes each value the way PyTorch's ``print`` does: tensors through
:func:`adcli.engine.format.tensor_repr` (``tensor([1., 2.], requires_grad=True)``),
``None``, ``True``/``False``, numbers as Python writes them, strings bare. A
builtin reads as its signature, ``<builtin sum(x, dim=None, keepdim=False)>``,
never as a Python object; the command line's display uses the same text.
"""

from __future__ import annotations

import inspect

from adcli.engine.format import tensor_repr
from adcli.engine.tensor import Tensor
from adcli.lang.builtins import Builtin


def print_text(value, default_dtype: str = "float32") -> str:
    """One value as PyTorch's ``print`` writes it (``default_dtype``: the session's)."""
    if isinstance(value, Tensor):
        return tensor_repr(value, default_dtype)
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return _tuple_text(value, lambda v: print_text(v, default_dtype))
    return function_text(value) or str(value)


def _tuple_text(value: tuple, text) -> str:
    """A shape (all whole numbers) as footers and messages write it, ``[2, 3]``; a
    tuple of values (v2) as Python writes one, ``(a, b)`` and ``(a,)``."""
    if all(type(v) is int for v in value):
        return "[" + ", ".join(str(v) for v in value) + "]"
    items = [tensor_repr(v) if isinstance(v, Tensor) else text(v) for v in value]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def display_text(value) -> str:
    """A non-tensor value as a bare expression displays it (v1's words: ``true``,
    ``None``, strings quoted); tensors are displayed with their footer instead."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return _tuple_text(value, display_text)
    if isinstance(value, float):
        return repr(value)
    return function_text(value) or str(value)


def function_text(value) -> str | None:
    """``<builtin sum(x, dim=None, keepdim=False)>`` for a builtin, ``<function f(x)>``
    for a user function (its own ``repr``); None for other values."""
    if isinstance(value, Builtin):
        return f"<builtin {value.name}({', '.join(_parameters(value))})>"
    if hasattr(value, "params") and hasattr(value, "body"):  # a UserFunction
        return repr(value)
    return None


#: defaults of keywords whose implementations take them as ``**kw``
_KEYWORD_DEFAULTS = {"requires_grad": "False"}


def _parameters(b: Builtin) -> list[str]:
    defaults = _defaults(b.fn)
    out = []
    for i, name in enumerate(b.params):
        if b.variadic and i == len(b.params) - 1:
            out.append(f"*{name}")
        elif i < b.required:
            out.append(name)
        else:
            out.append(f"{name}={defaults.get(name, 'None')}")
    if not b.params and b.variadic:
        out.append("*values")
    keywords = sorted(b.keywords)
    if keywords and not (out and out[-1].startswith("*")):
        out.append("*")
    for name in keywords:
        out.append(f"{name}={defaults.get(name) or _KEYWORD_DEFAULTS.get(name, 'None')}")
    return out


def _defaults(fn) -> dict[str, str]:
    """Each parameter's default as the language writes it (``None``, ``False``, ``1e-05``)."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    out = {}
    for name, p in parameters.items():
        if p.default is not inspect.Parameter.empty:
            out[name] = _literal(p.default)
    return out


def _literal(value) -> str:
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
