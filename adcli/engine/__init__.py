"""The autograd engine: tensors on NumPy or CuPy, a table of ops, reverse mode.

Usable on its own from Python; it knows nothing of the ``.ad`` language.
"""

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
    maximum,
    mean,
    minimum,
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
    reshape,
    sigmoid,
    sign,
    sin,
    sqrt,
    sub,
    sum,
    tan,
    tanh,
    tensor,
    to,
    transpose,
    where,
    zeros,
    zeros_like,
)
from adcli.engine.linalg import det, einsum, inverse, solve, tensordot
from adcli.engine.ops import TABLE, OpDef
from adcli.engine.promotion import get_default_dtype, result_type, set_default_dtype
from adcli.engine.taylor import nth_grads
from adcli.engine.tensor import STATE, AccumulateGrad, Node, Tensor, enable_grad, no_grad

# A recorded graph is many small, long-lived objects; with the collector's default
# thresholds (700, 10, 10) the older generations are rescanned so often that the
# per-op cost nearly doubles. Collect older generations less often (only when
# the process still has the defaults, so an embedding program's choice stands).
if _gc.get_threshold() == (700, 10, 10):
    _gc.set_threshold(100_000, 20, 20)

__all__ = [name for name in dir() if not name.startswith("_")]
