"""Numbers for strict JSON: what ``--json`` writes for numbers and arrays (shared by
the renderer and the plot command, which must not import each other)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["array_json", "json_number"]


def json_number(x: float) -> float | str:
    """A number for strict JSON: NaN and infinities become ``"nan"``, ``"inf"``, ``"-inf"``."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def array_json(array: Any) -> Any:
    """An array as nested lists (a number for 0-d), strict-JSON safe.

    float32 values are written with the shortest decimal that reads back as the
    same float32 (``0.1``, not ``0.10000000149011612``).
    """
    import numpy as np

    if array.dtype.kind != "f":
        return array.tolist()
    if array.dtype == np.float32:
        flat = [json_number(float(str(v))) for v in array.ravel()]
    else:
        flat = [json_number(v) for v in array.ravel().tolist()]
    if array.ndim == 0:
        return flat[0]
    nested = np.empty(len(flat), dtype=object)
    nested[:] = flat
    return nested.reshape(array.shape).tolist()
