"""The autograd engine: tensors on NumPy or CuPy, a table of ops, reverse mode.

Usable on its own from Python; it knows nothing of the ``.ad`` language.
"""

import builtins as _builtins
import gc as _gc

from adcli.engine.autodiff import backward, grad, gradcheck, hessian, hvp, jacobian, jvp, vjp
from adcli.engine.functional import (
    abs,
    add,
    allclose,
    arange,
    cast,
    clone,
    cos,
    detach,
    div,
    dot,
    eq,
    exp,
    expand,
    eye,
    floor_divide,
    full,
    ge,
    gt,
    index,
    index_put,
    index_put_,
    le,
    linspace,
    log,
    lt,
    manual_seed,
    matmul,
    mean,
    mm,
    mul,
    ne,
    neg,
    ones,
    ones_like,
    permute,
    pow,
    rand,
    randn,
    relu,
    remainder,
    reshape,
    sigmoid,
    sign,
    sin,
    sqrt,
    sub,
    sum,
    tanh,
    tensor,
    to,
    transpose,
    update_,
    where,
    zero_,
    zeros,
    zeros_like,
)
from adcli.engine.linalg import det, einsum, inverse, solve, tensordot
from adcli.engine.ops import TABLE, Api, OpDef
from adcli.engine.promotion import get_default_dtype, result_type, set_default_dtype
from adcli.engine.public import PUBLIC
from adcli.engine.taylor import nth_grads
from adcli.engine.tensor import STATE, AccumulateGrad, Node, Tensor, enable_grad, no_grad

# A recorded graph is many small, long-lived objects; with the collector's default
# thresholds (700, 10, 10) the older generations are rescanned again and again while
# it grows: scripts/bench/gc_cost.py measures 4-7 us/op spent in the collector for
# 30,000- to 150,000-op graphs (a third to half the per-op cost), against 0.4-0.9 us/op
# with (100000, 20, 20). Memory does not depend on this: no reference cycle holds an
# array (a leaf holds its AccumulateGrad weakly), so reference counting frees
# tensors at once (tests/test_memory.py checks both settings). Only when the
# process still has the defaults, so an embedding program's choice stands.
if _gc.get_threshold() == (700, 10, 10):
    _gc.set_threshold(100_000, 20, 20)

# Every public op by its name (the registry: table entries and composites). Names that
# are Python builtins (max, min, all, any, round, pow, sum, abs) are attributes here but
# stay out of ``__all__``, so ``from adcli.engine import *`` shadows no builtin.
globals().update({name: p.fn for name, p in PUBLIC.items() if p.api.function and name != "len"})

__all__ = [name for name in dir() if not name.startswith("_") and not hasattr(_builtins, name)]
