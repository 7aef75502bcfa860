"""Tensors and the tape.

A :class:`Tensor` holds an array of its device's array module. An op applied
to tensors that require grad records a :class:`Node` (the ``grad_fn``): the op
from the table in :mod:`adcli.engine.ops`, what its derivative rules need
saved, and ``next_functions`` pointing at the nodes that made its inputs.
Leaves that require grad are reached through an :class:`AccumulateGrad` node.

:func:`run_backward` walks that graph once, iteratively, in reverse
topological order. The derivative rules run either on raw arrays (plain
backward: fast) or on tensors with recording on (``create_graph=True``: the
gradients are themselves differentiable, to any order).

The engine knows nothing of the language or the terminal; errors are
:class:`AdcliError` without a span, which the caller attaches.
"""

from __future__ import annotations

import warnings
from math import prod
from time import monotonic
from weakref import ref as _weak

import numpy as np

from adcli.backend import CPU, Backend, array_module_of, to_numpy
from adcli.engine.format import tensor_repr
from adcli.errors import AdcliError


class _State:
    """Process-wide engine settings (the interpreter sets them per session)."""

    __slots__ = (
        "anomaly",
        "context",
        "deadline",
        "grad_enabled",
        "keep_inputs",
        "max_elements",
        "mutations",
        "on_accumulate",
        "recorded",
        "time_limit",
        "warn",
    )

    def __init__(self) -> None:
        self.grad_enabled = True
        #: largest number of elements any one new tensor may have
        self.max_elements = 100_000_000
        #: an opaque tag (the interpreter's current source span) stored on new nodes
        self.context = None
        #: check every forward and backward result for NaN/Inf
        self.anomaly = False
        #: how warnings are reported (the interpreter swaps in its own)
        self.warn = _default_warn
        #: ``time.monotonic()`` past which long loops stop (None: no time limit)
        self.deadline = None
        #: the seconds that deadline stands for (for the message)
        self.time_limit = None
        #: graph nodes recorded so far (diagnostics count nodes by its difference)
        self.recorded = 0
        #: in-place operations so far: each stamps the tensor it changed, and a
        #: node remembers the count when it was recorded (see :func:`mark_modified`)
        self.mutations = 0
        #: keep every input of each new node in ``Node.inputs`` (constants too), and what made
        #: each result that records no node (:func:`origin_of`), so the tape can be read back
        #: as an expression; off by default (it holds constants alive)
        self.keep_inputs = False
        #: called as ``on_accumulate(event)`` with an :class:`AccumulationEvent` whenever a
        #: backward adds into a ``.grad`` that already holds a value (None: nobody listens)
        self.on_accumulate = None


def _default_warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


STATE = _State()

NONLEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. "
    "Its .grad attribute won't be populated during backward(). If you indeed want "
    "the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on it."
)

BACKWARD_TWICE = (
    "Trying to backward through the graph a second time (or directly access saved "
    "tensors after they have already been freed). Saved intermediate values of the "
    "graph are freed when you call .backward() or autograd.grad(). Specify "
    "retain_graph=True if you need to backward through the graph a second time or if "
    "you need to access saved tensors after calling backward."
)

MODIFIED_IN_PLACE = (
    "one of the variables needed for gradient computation has been modified by an inplace operation"
)


class no_grad:
    """Context manager: ops inside record nothing."""

    __slots__ = ("_prev",)

    def __enter__(self):
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = False
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self._prev
        return False


class enable_grad(no_grad):
    """Context manager: ops inside record, even within :class:`no_grad`."""

    __slots__ = ()

    def __enter__(self):
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = True
        return self


def check_elements(shape: tuple, what: str = "tensor") -> None:
    """Refuse, before allocating, a tensor larger than the element limit."""
    n = prod(shape)
    if n > STATE.max_elements:
        raise AdcliError(
            "limit",
            f"{what} of shape {format_shape(shape)} would hold {n:,} elements, "
            f"over the limit of {STATE.max_elements:,}",
            details={"limit": "max_elements", "requested": n, "maximum": STATE.max_elements},
        )


def check_deadline() -> None:
    """Stop with a ``limit`` error once :attr:`_State.deadline` has passed."""
    if STATE.deadline is not None and monotonic() > STATE.deadline:
        raise AdcliError(
            "limit",
            f"the computation ran past the time limit of {STATE.time_limit:g} s",
            details={"limit": "timeout", "maximum": STATE.time_limit},
        )


def format_shape(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


class Tensor:
    """An array on a device, with what autograd needs to know about it."""

    __slots__ = (
        "__weakref__",
        "_accum",
        "_backend",
        "_data",
        "_grad",
        "_grad_fn",
        "_made_by",
        "_origin",
        "_requires_grad",
        "_retains_grad",
        "_version",
        "name",
    )

    # ``_origin`` is set only on gradients made without a graph (``"grad"`` or
    # ``"backward"``), to say why such a tensor cannot be differentiated; it is
    # left unset everywhere else (read it with :func:`origin`).

    # Arithmetic with NumPy arrays on the left must come to us, not to NumPy.
    __array_priority__ = 1000
    __array_ufunc__ = None

    def __init__(self, data, backend: Backend = CPU, requires_grad: bool = False) -> None:
        self._data = data
        self._backend = backend
        self._requires_grad = requires_grad
        self._grad_fn = None
        self._grad = None
        self._accum = None
        self._retains_grad = False
        self._version = 0
        self.name = None

    # ----- what autograd knows -----------------------------------------------------------
    @property
    def data(self) -> Tensor:
        """The same storage, detached from the graph (``x.data.zero_()`` zeroes ``x``)."""
        return Tensor(self._data, self._backend)

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data if isinstance(value, Tensor) else value

    @property
    def grad(self):
        if self._grad_fn is not None and not self._retains_grad:
            STATE.warn(NONLEAF_GRAD_WARNING)
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None and not isinstance(value, Tensor):
            raise AdcliError("type", "a gradient must be a tensor or none")
        if value is not None and value.shape != self.shape:
            raise AdcliError(
                "shape",
                f"assigned grad has shape {format_shape(value.shape)}, "
                f"but the tensor has shape {format_shape(self.shape)}",
            )
        self._grad = value

    @property
    def grad_fn(self):
        return self._grad_fn

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self._grad_fn is not None and not value:
            raise AdcliError(
                "value",
                "you can only change requires_grad flags of leaf variables; "
                "use detach() to get a tensor that does not require grad",
            )
        if value and self._data.dtype.kind != "f":
            raise AdcliError("type", "only Tensors of floating point dtype can require gradients")
        self._requires_grad = bool(value)

    def requires_grad_(self, value: bool = True) -> Tensor:
        self.requires_grad = value
        return self

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    def retain_grad(self) -> None:
        """Populate ``.grad`` of this non-leaf during backward."""
        if self._grad_fn is None:
            return
        self._retains_grad = True
        # Weakly, as PyTorch's retain_grad hook: the tensor owns its node, not back.
        self._grad_fn.retained = _weak(self)

    # ----- what the array is ---------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    @property
    def dtype(self) -> str:
        return self._data.dtype.name

    @property
    def device(self) -> str:
        return self._backend.name

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def array(self):
        """The underlying array of the device's array module (shared, not copied)."""
        return self._data

    def numpy(self) -> np.ndarray:
        """The values as a host NumPy array."""
        return np.array(to_numpy(self._data))

    def tolist(self):
        return to_numpy(self._data).tolist()

    def item(self):
        if self._data.size != 1:
            raise AdcliError(
                "value",
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar",
            )
        return to_numpy(self._data).reshape(()).item()

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise AdcliError("type", "len() of a 0-d tensor")
        return self._data.shape[0]

    def __repr__(self) -> str:
        return tensor_repr(self)

    # ----- in place and detaching ------------------------------------------------------------
    def zero_(self) -> Tensor:
        """Set every element to zero, in place (shared storage sees it too)."""
        self._check_in_place()
        mark_modified(self)
        data = self._data
        if isinstance(data, np.generic) or not _writeable(data):
            # Immutable NumPy scalars and broadcast views cannot be written: own a copy.
            self._data = self._backend.xp.zeros(data.shape, data.dtype)
        else:
            data[...] = 0
        return self

    def fill_(self, value) -> Tensor:
        self._check_in_place()
        mark_modified(self)
        data = self._data
        if isinstance(data, np.generic) or not _writeable(data):
            self._data = self._backend.xp.full(data.shape, value, data.dtype)
        else:
            data[...] = value
        return self

    def _check_in_place(self) -> None:
        if self._requires_grad and self._grad_fn is None and STATE.grad_enabled:
            raise AdcliError(
                "value",
                "a leaf Variable that requires grad is being used in an in-place operation.",
                hint="zero its .data instead (x.data.zero_()), or do it inside no_grad(...)",
            )

    def detach(self) -> Tensor:
        return Tensor(self._data, self._backend)

    @property
    def version(self) -> int:
        """The in-place stamp: 0 until an in-place op changes this tensor."""
        return self._version

    # Operators are attached by adcli.engine.functional (they are table ops), and
    # backward() by adcli.engine.autodiff, where the backward pass lives.


def mark_modified(t: Tensor) -> None:
    """Record that ``t`` is about to change in place (PyTorch's version counter).

    The tensor is stamped with a new mutation count; a node recorded before
    that stamp that saved ``t`` refuses to run backward. A node whose saved
    *output* is ``t`` (``exp``, ``tanh``...) is marked stale directly.
    """
    STATE.mutations += 1
    t._version = STATE.mutations
    node = t._grad_fn
    if node is not None and node.out_data is not None:
        node.stamp = -1


def writeable(array) -> bool:
    """Whether ``array`` can be written in place (not a NumPy scalar or broadcast view)."""
    if isinstance(array, np.generic):
        return False
    return _writeable(array)


def _writeable(array) -> bool:
    flags = getattr(array, "flags", None)
    if flags is None:
        return True
    if hasattr(flags, "writeable"):
        return bool(flags.writeable)
    return True


class Meta:
    """Shape and dtype of an input whose values a derivative rule does not need."""

    __slots__ = ("dtype", "shape")

    def __init__(self, shape, dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


class Node:
    """A recorded op: the ``grad_fn`` of the tensor it produced.

    Made only by :func:`_record` on the per-op hot path, which sets the slots
    directly (no ``__init__`` call). ``seq`` numbers the nodes in the order they are
    made, as PyTorch's sequence numbers do: a node's inputs are always older, so
    the newest first is an order of the graph that backward can run in, and the
    one PyTorch's engine runs in (which decides the order gradients are summed in).
    """

    __slots__ = (
        "__weakref__",
        "backend",
        "context",
        "freed",
        "in_meta",
        "inputs",
        "next",
        "op",
        "out_data",
        "out_shape",
        "params",
        "retained",
        "saved",
        "seq",
        "stamp",
    )

    def name(self) -> str:
        return self.op.grad_fn_name(self.params)

    @property
    def next_functions(self) -> tuple:
        return tuple((n, 0) for n in self.next)

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class AccumulationEvent:
    """A backward added ``added`` into a ``.grad`` that held ``before``: now ``after``.

    The arrays are host NumPy copies, taken only when someone listens
    (:attr:`_State.on_accumulate`).
    """

    __slots__ = ("added", "after", "before", "variable")

    def __init__(self, variable: Tensor, before, added, after) -> None:
        self.variable = variable
        self.before = before
        self.added = added
        self.after = after


class AccumulateGrad:
    """The node for a leaf: gradients arriving here go into ``variable.grad``."""

    __slots__ = ("__weakref__", "context", "seq", "variable")

    next = ()
    freed = False

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable
        self.context = None
        # After every node made so far, before the next (which may be its first
        # consumer): see Node.seq.
        self.seq = STATE.recorded + 0.5

    def name(self) -> str:
        return "AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return "<AccumulateGrad>"


def grad_node(t: Tensor):
    """The node gradients for ``t`` flow into (its grad_fn, or its leaf accumulator)."""
    node = t._grad_fn
    if node is not None:
        return node
    if not t._requires_grad:
        return None
    return accumulator(t)


def accumulator(t: Tensor) -> AccumulateGrad:
    """The leaf ``t``'s :class:`AccumulateGrad`, made on first use.

    The tensor holds it weakly, as PyTorch does: the graph nodes that lead to
    it keep it (and so the leaf) alive, while a leaf no graph uses is freed by
    reference counting alone, with no cycle for the collector to find.
    """
    held = t._accum
    if held is not None:
        node = held()
        if node is not None:
            return node
    node = AccumulateGrad(t)
    t._accum = _weak(node)
    return node


def origin(t: Tensor) -> str | None:
    """``"grad"`` or ``"backward"`` for a gradient computed without a graph, else None."""
    return getattr(t, "_origin", None)


def no_grad_fn_error(y) -> AdcliError:
    """PyTorch's error for differentiating a tensor that does not require grad.

    ``details["origin"]`` says whether ``y`` is itself a gradient computed
    without a graph (the usual cause: a forgotten ``create_graph``).
    """
    return AdcliError(
        "value",
        "element 0 of tensors does not require grad and does not have a grad_fn",
        details={
            "reason": "does_not_require_grad",
            "origin": origin(y) if isinstance(y, Tensor) else None,
        },
    )


def check_differentiable(x) -> None:
    """An input of grad(): a tensor that requires grad (PyTorch's error otherwise)."""
    if not isinstance(x, Tensor):
        raise AdcliError("type", "grad() inputs must be tensors")
    if not x._requires_grad:
        raise AdcliError(
            "value",
            "One of the differentiated Tensors does not require grad",
            details={"reason": "input_does_not_require_grad"},
        )


def make_result(data, backend: Backend) -> Tensor:
    """A new tensor that requires no grad (used on hot paths: skips __init__)."""
    t = Tensor.__new__(Tensor)
    t._data = data
    t._backend = backend
    t._requires_grad = False
    t._grad_fn = None
    t._grad = None
    t._accum = None
    t._retains_grad = False
    t._version = 0
    t.name = None
    return t


def device_mismatch(op_name: str, a: Backend, b: Backend) -> AdcliError:
    return AdcliError(
        "device",
        f"Expected all tensors to be on the same device, but found at least two devices, "
        f"{a.name} and {b.name}! (in {op_name})",
        hint="move one with .to(device), .cuda() or .cpu()",
    )


def apply(op, args: tuple, params: dict | None = None) -> Tensor:
    """Run ``op`` forward on ``args`` (tensors or Python numbers) and record it if needed.

    This is the general path; :func:`apply_unary` and :func:`apply_binary` are
    the same thing unrolled for the common arities (the per-op hot path).
    """
    n = len(args)
    if n == 1 and type(args[0]) is Tensor:
        return apply_unary(op, args[0], params)
    if n == 2 and type(args[0]) is Tensor and params is None:
        return apply_binary(op, args[0], args[1])
    backend = None
    requires = False
    arrays = []
    for a in args:
        if type(a) is Tensor:
            b = a._backend
            if backend is None:
                backend = b
            elif b is not backend:
                raise device_mismatch(op.name, backend, b)
            if a._requires_grad:
                requires = True
            arrays.append(a._data)
        else:
            arrays.append(a)
    if backend is None:
        backend = CPU
    if params:
        out = op.forward(backend.xp, *arrays, **params)
    else:
        out = op.forward(backend.xp, *arrays)
    if op.out_backend is not None:
        backend = op.out_backend(params)
    return _result(op, args, params, out, backend, requires)


def apply_unary(op, a: Tensor, params: dict | None = None, direct=None) -> Tensor:
    """:func:`apply` for one tensor argument.

    ``direct``: the NumPy function ``op.forward`` calls on CPU arrays when it is exactly
    ``xp.<name>(a)`` (see :func:`direct_forward`), called without the extra frame.
    """
    backend = a._backend
    data = a._data
    if params:
        out = op.forward(backend.xp, data, **params)
    elif direct is not None and backend is CPU:
        out = direct(data)
    else:
        out = op.forward(backend.xp, data)
    if op.out_backend is not None:
        backend = op.out_backend(params)
    state = STATE
    if state.anomaly:
        check_finite(out, op, "forward")
    # _result and _record unrolled for one input (the per-op hot path).
    t = _new_tensor(Tensor)
    t._data = out
    t._backend = backend
    t._grad = None
    t._accum = None
    t._retains_grad = False
    t._version = 0
    t.name = None
    if a._requires_grad and op.differentiable and state.grad_enabled:
        t._requires_grad = True
        edge = a._grad_fn
        if edge is None:
            held = a._accum
            edge = held() if held is not None else None
            if edge is None:
                edge = AccumulateGrad(a)
                a._accum = _weak(edge)
        node = _new_node(Node)
        node.op = op
        node.params = params
        save = op.save
        # (as _record: a save set of one index keeps the input, whichever index it names)
        node.saved = ((a,) if len(save) == 1 or 0 in save else (None,)) if save else None
        node.out_data = out if op.save_output else None
        node.in_meta = (data.shape,)
        node.out_shape = out.shape
        node.next = (edge,)
        node.backend = backend
        node.freed = False
        node.context = state.context
        node.retained = None
        node.stamp = state.mutations
        node.inputs = (a,) if state.keep_inputs else None
        node.seq = state.recorded = state.recorded + 1
        t._grad_fn = node
    else:
        t._requires_grad = False
        t._grad_fn = None
        if state.keep_inputs:
            t._made_by = (op, (a,), params)
    return t


def apply_binary(op, a: Tensor, b) -> Tensor:
    """:func:`apply` for a tensor and a tensor or Python number, without params."""
    backend = a._backend
    if type(b) is Tensor:
        if b._backend is not backend:
            raise device_mismatch(op.name, backend, b._backend)
        out = op.forward(backend.xp, a._data, b._data)
        requires = a._requires_grad or b._requires_grad
    else:
        return apply_number(op, None, a, b)
    return _result(op, (a, b), None, out, backend, requires)


_ONE = (1,)
_ONE_AND_NUMBER = (_ONE, None)
_ndarray = np.ndarray
_empty = np.empty


def apply_number(op, arith, a: Tensor, b) -> Tensor:
    """:func:`apply_binary` for a tensor ``a`` and a Python number ``b`` (the per-op hot path).

    ``arith``: None, or Python's operator for what ``op.forward`` does (``a + b``...)
    when the caller knows ``b`` is a float and ``a`` float64. Then, for a ``(1,)``
    NumPy array, the result is computed on the Python float instead of through
    NumPy's scalar machinery: the same IEEE double operation, so the same bits, in
    the same fresh ``(1,)`` float64 array. Only results well inside the normal range
    take that path, so anything NumPy would warn about (overflow, invalid, underflow)
    still goes through NumPy.
    """
    data = a._data
    backend = a._backend
    shape = None
    if arith is not None and type(data) is _ndarray and data.shape == _ONE:
        v = arith(data.item(), b)
        if 1e-300 < v < 1e300 or -1e300 < v < -1e-300:
            out = _empty(_ONE)
            out[0] = v
            shape = _ONE  # (shared: shapes are only ever compared)
    if shape is None:
        out = op.forward(backend.xp, data, b)
    # _result and _record unrolled for a tensor and a number.
    state = STATE
    if state.anomaly:
        check_finite(out, op, "forward")
    t = _new_tensor(Tensor)
    t._data = out
    t._backend = backend
    t._grad = None
    t._accum = None
    t._retains_grad = False
    t._version = 0
    t.name = None
    if a._requires_grad and op.differentiable and state.grad_enabled:
        t._requires_grad = True
        edge = a._grad_fn
        if edge is None:
            held = a._accum
            edge = held() if held is not None else None
            if edge is None:
                edge = AccumulateGrad(a)
                a._accum = _weak(edge)
        node = _new_node(Node)
        node.op = op
        node.params = None
        save = op.save
        if save:
            node.saved = (
                (a, b) if len(save) == 2 else (a if 0 in save else None, b if 1 in save else None)
            )
        else:
            node.saved = None
        node.out_data = out if op.save_output else None
        if shape is None:
            node.in_meta = (data.shape, None)
            node.out_shape = out.shape
        else:
            node.in_meta = _ONE_AND_NUMBER
            node.out_shape = _ONE
        node.next = (edge, None)
        node.backend = backend
        node.freed = False
        node.context = state.context
        node.retained = None
        node.stamp = state.mutations
        node.inputs = (a, b) if state.keep_inputs else None
        node.seq = state.recorded = state.recorded + 1
        t._grad_fn = node
    else:
        t._requires_grad = False
        t._grad_fn = None
        if state.keep_inputs:
            t._made_by = (op, (a, b), None)
    return t


def _result(op, args, params, out, backend, requires) -> Tensor:
    if STATE.anomaly:
        check_finite(out, op, "forward")
    t = _new_tensor(Tensor)
    t._data = out
    t._backend = backend
    t._grad = None
    t._accum = None
    t._retains_grad = False
    t._version = 0
    t.name = None
    if requires and op.differentiable and STATE.grad_enabled:
        t._requires_grad = True
        t._grad_fn = _record(op, args, params, out, backend)
    else:
        t._requires_grad = False
        t._grad_fn = None
        if STATE.keep_inputs:  # no node, but the expression can still be read back
            t._made_by = (op, args, params)
    return t


def origin_of(t: Tensor):
    """``(op, inputs, params)`` of a result that recorded no node, when inputs were kept.

    With :attr:`_State.keep_inputs`, an op whose result needs no grad (its inputs are
    constants, or it is not differentiable, or grad mode is off) still remembers what
    made it, so the expression can be read back; otherwise None.
    """
    return getattr(t, "_made_by", None)


_new_tensor = Tensor.__new__
_new_node = object.__new__


def _edge(a):
    """Where gradients for argument ``a`` go: a node, or None for constants."""
    if type(a) is Tensor and a._requires_grad:
        node = a._grad_fn
        if node is None:
            held = a._accum
            node = held() if held is not None else None
            if node is None:
                node = AccumulateGrad(a)
                a._accum = _weak(node)
        return node
    return None


def _record(op, args, params, out, backend) -> Node:
    """Make the grad_fn node: what the rules need saved, and where gradients go next."""
    # Tuples, not lists: fewer objects for the cyclic GC to track on this hot path.
    n = len(args)
    if n == 1:
        a = args[0]
        next_ = (_edge(a),)
        metas = (a._data.shape,)
    elif n == 2:
        a, b = args
        next_ = (_edge(a), _edge(b))
        metas = (
            a._data.shape if type(a) is Tensor else None,
            b._data.shape if type(b) is Tensor else None,
        )
    else:
        next_ = tuple([_edge(a) for a in args])
        metas = tuple([a._data.shape if type(a) is Tensor else None for a in args])
    save = op.save
    node = _new_node(Node)
    node.op = op
    node.params = params
    if save:
        node.saved = (
            args
            if len(save) == len(args)
            else tuple([a if i in save else None for i, a in enumerate(args)])
        )
    else:
        node.saved = None
    node.out_data = out if op.save_output else None
    node.in_meta = metas
    node.out_shape = out.shape
    node.next = next_
    node.backend = backend
    node.freed = False
    node.context = STATE.context
    node.retained = None
    node.stamp = STATE.mutations
    node.inputs = args if STATE.keep_inputs else None
    node.seq = STATE.recorded = STATE.recorded + 1
    return node


def check_finite(array, op, phase: str, node=None) -> None:
    if array.dtype.kind not in "fc":
        return
    if isinstance(array, (np.ndarray, np.generic)):
        ok = bool(np.isfinite(array).all())
    else:  # a device array: ask its own module, through the backend that made it
        ok = bool(to_numpy(array_module_of(array).isfinite(array).all()))
    if not ok:
        name = (
            op.grad_fn_name(node.params if node is not None else None)
            if phase == "backward"
            else op.name
        )
        err = AdcliError(
            "value",
            f"anomaly: {phase} of '{op.name}' ({name}) produced NaN or Inf",
            hint="this is where the NaN/Inf first appeared; check the inputs of this operation",
        )
        err.context = node.context if node is not None else STATE.context  # type: ignore[attr-defined]
        raise err
