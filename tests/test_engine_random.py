"""randn and rand: drawn in float64 on the host, so a seed gives the same numbers
in every dtype and on every device; a tensor of another dtype is drawn a piece at
a time (no float64 array of its size), with the same numbers as one whole draw."""

from __future__ import annotations

import numpy as np
import pytest

from adcli.engine import functional as F

SHAPES = [(3,), (F._DRAW_PIECE,), (F._DRAW_PIECE + 1,), (2, F._DRAW_PIECE + 7), (5, 0), ()]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("kind", "draw"), [("randn", "standard_normal"), ("rand", "random")])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_numbers_of_one_whole_float64_draw(shape, kind, draw, dtype) -> None:
    expected = getattr(np.random.default_rng(11), draw)(shape, dtype=np.float64).astype(dtype)
    got = F._random(kind, shape, np.random.default_rng(11), dtype, None, False)
    values = got.numpy() if hasattr(got, "numpy") else np.asarray(got.data)
    assert values.shape == expected.shape
    assert values.dtype == expected.dtype
    assert np.array_equal(values, expected)


def test_a_seed_gives_the_same_numbers_whatever_the_dtype() -> None:
    F.manual_seed(3)
    wide = F.randn(F._DRAW_PIECE * 2 + 5, dtype="float64")
    F.manual_seed(3)
    narrow = F.randn(F._DRAW_PIECE * 2 + 5, dtype="float32")
    a = wide.numpy() if hasattr(wide, "numpy") else np.asarray(wide.data)
    b = narrow.numpy() if hasattr(narrow, "numpy") else np.asarray(narrow.data)
    assert np.array_equal(a.astype(np.float32), b)
