"""The autograd engine: tensors on NumPy or CuPy, a table of ops, reverse mode.

Usable on its own from Python; it knows nothing of the ``.ad`` language.
"""

import builtins as _builtins
import gc as _gc

from adcli.engine.autodiff import backward, grad, gradcheck, hessian, jacobian
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
    where,
    zeros,
    zeros_like,
)
from adcli.engine.ops import TABLE, Api, OpDef
from adcli.engine.public import PUBLIC
from adcli.engine.taylor import nth_grads
from adcli.engine.tensor import STATE, AccumulateGrad, Node, Tensor, enable_grad, no_grad

# A recorded graph is many small, long-lived objects; with the collector's default
# thresholds (700, 10, 10) the older generations are rescanned so often that the
# per-op cost nearly doubles. Collect older generations less often (only when
# the process still has the defaults, so an embedding program's choice stands).
if _gc.get_threshold() == (700, 10, 10):
    _gc.set_threshold(100_000, 20, 20)

# Every public op by its name (the registry: table entries and composites). Names that
# are Python builtins (max, min, all, any, round, pow, sum, abs) are attributes here but
# stay out of ``__all__``, so ``from adcli.engine import *`` shadows no builtin.
globals().update({name: p.fn for name, p in PUBLIC.items() if p.api.function and name != "len"})

__all__ = [name for name in dir() if not name.startswith("_") and not hasattr(_builtins, name)]
