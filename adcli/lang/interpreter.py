"""AST → engine: a session that runs ``.ad`` programs.

A :class:`Session` holds variables, user functions and settings (device,
dtype, random generator, limits). It evaluates statements onto the engine and
hands every displayed value, ``print`` and warning to an ``emit`` callback as
an :class:`Output`; it never prints. Every error is an :class:`AdcliError`
carrying the span of the code that caused it.

Safety: user input never reaches ``eval``/``exec``; attributes and methods
come from fixed tables; ``import`` reads only ``.ad`` files.
"""

from __future__ import annotations

import operator
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic

import numpy as np

from adcli import engine as E
from adcli.engine.functional import kind_of
from adcli.engine.tensor import STATE, AccumulateGrad, Node, Tensor, check_deadline
from adcli.errors import AdcliError, Span
from adcli.lang import builtins as B
from adcli.lang import nodes as N

DEFAULT_MAX_ELEMENTS = 50_000_000


@dataclass
class Limits:
    """What one session may use; each is a clear ``limit`` error when exceeded.

    The command line sets them with ``--max-elements``, ``--max-bytes``,
    ``--max-depth`` (which sets ``max_depth`` to N and ``max_expr_depth`` to
    10 N), ``--max-call-depth``, ``--max-calls``, ``--max-order``,
    ``--max-source-bytes`` and ``--timeout``.
    """

    max_elements: int = DEFAULT_MAX_ELEMENTS  # elements in any one tensor
    # Bytes of any one new tensor (checked before allocating), and of all the
    # tensors bound to variables together (checked as each is bound).
    max_bytes: int = 4 * 1024**3
    max_depth: int = 200  # bracket nesting in the source
    max_expr_depth: int = 2_000  # nesting of the expression tree (operators, calls)
    max_call_depth: int = 64  # user function calls inside one another
    max_calls: int = 1_000_000  # user function calls made by one statement
    max_order: int = 64  # derivative order
    max_source_bytes: int = 10 * 1024 * 1024  # one script
    timeout: float | None = None  # seconds one program may run (None: no limit)


@dataclass(frozen=True)
class Output:
    """Something a running program shows: a value, a print, or a warning."""

    kind: str  # "value" | "print" | "warning"
    value: object = None
    text: str | None = None
    span: Span | None = None


@dataclass(frozen=True)
class UserFunction:
    """``name(params) = body``: sees its parameters and the functions defined before it."""

    name: str
    params: tuple
    body: N.Node
    functions: dict = field(repr=False, compare=False)
    span: Span | None = None

    def __repr__(self) -> str:
        return f"<function {self.name}({', '.join(self.params)})>"


class Session:
    """An interpreter session: variables, functions, settings; runs programs."""

    def __init__(
        self, *, device="cpu", dtype="float32", seed=None, limits=None, detect_anomaly=False
    ) -> None:
        from adcli.backend import get_backend, resolve_dtype

        self.limits = limits or Limits()
        self.backend = get_backend(device)  # raises a device error early
        self.dtype = resolve_dtype(dtype).name
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.detect_anomaly = bool(detect_anomaly)
        self.variables_: dict[str, object] = {}
        self.functions: dict[str, UserFunction] = {}
        self.sources: dict[str, list[str]] = {}
        self.imported: set[str] = set()
        self.import_stack: list[str] = []
        self.wrt: set[str] = set()
        self._emit: Callable[[Output], None] | None = None
        self._depth = 0
        self._call_depth = 0
        self._calls = 0  # user function calls made by the current statement
        self._held: dict[str, int] = {}  # bytes of the tensor bound to each variable
        self._held_total = 0
        self._statement_span: Span | None = None
        #: what the last statement run displayed (None when it displayed nothing)
        self.last_output: Output | None = None

    # ----- the interface the front end uses ---------------------------------------------------
    @property
    def device(self) -> str:
        return self.backend.name

    def _parse(self, source: str, filename: str) -> N.Program:
        """Parse under this session's limits, keeping the lines for error carets."""
        from adcli.lang.parser import parse

        self.sources[filename] = source.splitlines()
        return parse(
            source,
            filename,
            max_depth=self.limits.max_depth,
            max_source_bytes=self.limits.max_source_bytes,
            timeout=self.limits.timeout,
            cache=True,
        )

    def run(self, source: str, filename: str = "<eval>", emit=None, base_dir=None):
        """Parse and run ``source``; return the last statement's value if it is an expression."""
        program = self._parse(source, filename)
        if base_dir is None:
            base_dir = (
                Path(filename).resolve().parent if not filename.startswith("<") else Path.cwd()
            )
        # A script is on the import stack while it runs: importing it back is a cycle.
        on_stack = not filename.startswith("<")
        if on_stack:
            self.import_stack.append(str(Path(filename).resolve()))
        try:
            return self._with_engine_settings(
                lambda: self._run_program(program, Path(base_dir)), emit
            )
        finally:
            if on_stack:
                self.import_stack.pop()

    def run_file(self, path, emit=None):
        """Run the script at ``path`` (its imports resolve relative to it)."""
        from adcli.lang.parser import read_source

        p = Path(path)
        try:
            source = read_source(p, str(path), self.limits.max_source_bytes)
        except OSError as exc:
            raise AdcliError("value", f"cannot read {path}: {exc.strerror or exc}") from None
        self.imported.add(str(p.resolve()))
        return self.run(source, str(path), emit, base_dir=p.resolve().parent)

    def source_lines(self, filename: str) -> list[str] | None:
        return self.sources.get(filename)

    def bind(self, name: str, value) -> None:
        self._hold(name, value)
        if isinstance(value, Tensor) and value.is_leaf and value.name is None:
            value.name = name
        self.variables_[name] = value

    def _hold(self, name: str, value) -> None:
        """Count what binding ``name`` to ``value`` adds to the bytes variables hold.

        Each variable counts its tensor's own size (views of one storage count
        each time, erring on the safe side); gradients in ``.grad`` and values
        not bound to a variable are not counted.
        """
        size = value._data.nbytes if type(value) is Tensor else 0
        total = self._held_total - self._held.get(name, 0) + size
        if size and total > self.limits.max_bytes:
            raise AdcliError(
                "limit",
                f"binding '{name}' would bring the tensors held in variables to {total:,} "
                f"bytes, over the limit of {self.limits.max_bytes:,}",
                hint="rebind variables you no longer need (say x = 0), or raise the limit "
                "with --max-bytes",
            )
        if size:
            self._held[name] = size
        else:
            self._held.pop(name, None)
        self._held_total = total

    def lookup(self, name: str):
        return self.variables_[name]

    def variables(self) -> dict[str, object]:
        return dict(self.variables_)

    def mark_wrt(self, names) -> None:
        """Names that become leaves requiring grad whenever a program binds them."""
        self.wrt.update(names)

    def make_tensor(self, literal_text: str, requires_grad: bool = False) -> Tensor:
        """A tensor from a number or bracket literal such as ``[1, 2.5, -3]`` (for --at)."""
        from adcli.lang.parser import parse

        program = parse(literal_text, "<--at>")
        statements = program.statements
        if (
            len(statements) != 1
            or not isinstance(statements[0], N.ExprStmt)
            or not _is_literal(statements[0].expr)
        ):
            raise AdcliError(
                "value",
                f"expected a number or a bracket literal such as [1, 2.5, -3], got {literal_text!r}",
            )
        value = self._with_engine_settings(lambda: self.eval(statements[0].expr), None)
        t = self._tensor_of(value, statements[0].expr.span)
        t = E.tensor(t, dtype=self.dtype, device=self.backend)
        if requires_grad:
            t.requires_grad = True
        return t

    def derivatives(self, y, wrt: list[str], order: int, method: str = "auto") -> dict[str, list]:
        """Derivatives of ``y`` of orders 1..order for each name (the spec's nth derivative)."""
        self._check_order(order, None)
        out = {}
        for name in wrt:
            if name not in self.variables_:
                raise AdcliError(
                    "name", f"--wrt {name}: unknown name '{name}'" + self._suggest(name)
                )
            x = self.variables_[name]
            if not isinstance(x, Tensor):
                raise AdcliError("type", f"--wrt {name}: '{name}' is not a tensor")
            if not x.requires_grad:
                raise AdcliError(
                    "value",
                    f"--wrt {name}: '{name}' does not require grad (bind it with --at, or "
                    "create it with requires_grad=true)",
                )
            yt = y if isinstance(y, Tensor) else None
            if yt is None:
                out[name] = [E.zeros_like(x) for _ in range(order)]
                continue
            out[name] = self._with_engine_settings(
                lambda yt=yt, x=x: E.nth_grads(yt, x, order, method=method), None
            )
        return out

    def function_of(self, source: str, name: str, filename: str = "<eval>") -> Callable:
        """``f(t)``: the value of ``source`` run with ``name`` bound to tensor ``t``.

        For finite differences and cost reports, which must re-evaluate the
        program; it runs silently and leaves the session's variables as they were.
        """
        program = self._parse(source, filename)

        def f(t):
            saved = dict(self.variables_), dict(self.functions), self._emit
            held = dict(self._held), self._held_total
            self._emit = None
            try:
                self.variables_[name] = t
                return self._run_program(program, Path.cwd())
            finally:
                self.variables_, self.functions = saved[0], saved[1]
                self._emit = saved[2]
                self._held, self._held_total = held

        return f

    def derivative_checks(self, source: str, wrt: list[str], order: int) -> dict:
        """Per name: Taylor vs nested vs finite differences (Richardson, float64), by order."""
        from adcli.engine import diagnostics

        self._check_order(order, None)
        return {
            name: self._with_engine_settings(
                lambda name=name: diagnostics.check_orders(
                    self.function_of(source, name), self._wrt_tensor(name), order
                ),
                None,
            )
            for name in wrt
        }

    def derivative_costs(self, source: str, wrt: list[str], order: int, methods: list[str]) -> dict:
        """Per name and method: graph nodes, seconds and peak bytes of each order."""
        from adcli.engine import diagnostics

        self._check_order(order, None)
        out = {}
        for name in wrt:
            f = self.function_of(source, name)
            x = self._wrt_tensor(name)
            out[name] = {
                m: self._with_engine_settings(
                    lambda f=f, x=x, m=m: diagnostics.cost_report(f, x, order, m), None
                )
                for m in methods
            }
        return out

    def _wrt_tensor(self, name: str) -> Tensor:
        x = self.variables_.get(name)
        if not isinstance(x, Tensor):
            raise AdcliError(
                "name", f"--wrt {name}: '{name}' is not a tensor variable" + self._suggest(name)
            )
        return x

    def completions(self, prefix: str) -> list[str]:
        """Names, builtins, keywords, and attributes or methods after a dot."""
        if "." in prefix:
            head, _, tail = prefix.rpartition(".")
            pool = sorted(B.ATTRIBUTES | set(B.METHODS))
            return [f"{head}.{p}" for p in pool if p.startswith(tail)]
        pool = (
            set(self.variables_)
            | set(self.functions)
            | set(B.BUILTINS)
            | {"assert", "import", "true", "false", "none"}
        )
        return sorted(p for p in pool if p.startswith(prefix))

    def reset(self) -> None:
        self.variables_.clear()
        self._held.clear()
        self._held_total = 0
        self.functions.clear()
        self.imported.clear()
        self.rng = np.random.default_rng(self.seed)

    def set_device(self, device: str) -> None:
        from adcli.backend import get_backend

        self.backend = get_backend(device)

    # ----- running ----------------------------------------------------------------------------
    def _with_engine_settings(self, thunk, emit):
        """Run ``thunk`` with this session's limits, anomaly mode and warning sink installed.

        The evaluator recurses on the expression tree, so Python's recursion limit
        is raised for the run to what ``max_expr_depth`` and ``max_call_depth``
        need: the evaluator's own, clearer depth errors come first. (Python-to-Python
        calls use no C stack from 3.11 on, so this is safe.)
        """
        saved = (STATE.max_elements, STATE.anomaly, STATE.warn, STATE.context, self._emit)
        saved_time = (STATE.deadline, STATE.time_limit)
        STATE.max_elements = self.limits.max_elements
        STATE.anomaly = self.detect_anomaly
        STATE.warn = self._warn
        timeout = self.limits.timeout
        STATE.deadline = monotonic() + timeout if timeout else None
        STATE.time_limit = timeout
        if emit is not None or self._emit is None:
            self._emit = emit
        recursion_limit = sys.getrecursionlimit()
        needed = 6 * self.limits.max_expr_depth + 12 * self.limits.max_call_depth
        # Past a million frames (limits raised that far), RecursionError stops it instead.
        sys.setrecursionlimit(recursion_limit + min(needed, 1_000_000))
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return thunk()
        except AdcliError as err:
            ctx = getattr(err, "context", None)
            if isinstance(ctx, Span):
                err.span = ctx
            raise err.at(self._statement_span)
        except RecursionError:
            raise AdcliError(
                "limit",
                "expression nested too deeply for the evaluator",
                self._statement_span,
                hint="split it into several statements",
            ) from None
        except MemoryError:
            raise AdcliError(
                "limit",
                "out of memory: the computation needs more memory than is available",
                self._statement_span,
                hint="use smaller tensors",
            ) from None
        finally:
            (STATE.max_elements, STATE.anomaly, STATE.warn, STATE.context, self._emit) = saved
            STATE.deadline, STATE.time_limit = saved_time
            sys.setrecursionlimit(recursion_limit)

    def _warn(self, message: str) -> None:
        if self._emit is not None:
            self._emit(Output("warning", None, message, self._statement_span))

    def _show(self, output: Output) -> None:
        if self._emit is not None:
            self._emit(output)

    def _run_program(self, program: N.Program, base_dir: Path):
        last = None
        for stmt in program.statements:
            last = self._exec(stmt, base_dir)
        return last

    def _exec(self, stmt, base_dir: Path):
        self._statement_span = stmt.span
        STATE.context = stmt.span
        self.last_output = None
        self._calls = 0
        if STATE.deadline is not None:
            check_deadline()
        kind = type(stmt)
        if kind is N.ExprStmt:
            value = self.eval(stmt.expr)
            silent = value is None and isinstance(stmt.expr, (N.Call, N.MethodCall))
            if not silent:
                self.last_output = Output("value", value, None, stmt.span)
                self._show(self.last_output)
            return None if silent else value
        if kind is N.Assign:
            value = self.eval(stmt.value)
            if stmt.name in self.wrt and isinstance(value, Tensor) and value.is_leaf:
                value.requires_grad = True
            self._hold(stmt.name, value)
            if isinstance(value, Tensor) and value.is_leaf and value.name is None:
                value.name = stmt.name
            self.variables_[stmt.name] = value
            return None
        if kind is N.FuncDef:
            if stmt.name in B.BUILTINS:
                raise AdcliError(
                    "name", f"cannot redefine the builtin '{stmt.name}'", stmt.name_span
                )
            self._check_function_body(stmt)
            self.functions[stmt.name] = UserFunction(
                stmt.name, stmt.params, stmt.body, dict(self.functions), stmt.span
            )
            return None
        if kind is N.Assert:
            self._assert(stmt)
            return None
        if kind is N.Import:
            self._import(stmt, base_dir)
            return None
        raise AdcliError("syntax", f"unsupported statement {kind.__name__}", stmt.span)

    def _check_function_body(self, stmt: N.FuncDef) -> None:
        """A body may use its parameters, earlier functions and builtins — nothing else."""
        visible = set(stmt.params) | set(self.functions) | set(B.BUILTINS)
        for node in N.walk(stmt.body):
            if isinstance(node, N.Name) and node.id not in visible:
                if node.id == stmt.name:
                    raise AdcliError(
                        "name",
                        f"'{stmt.name}' cannot call itself: recursion is not allowed",
                        node.span,
                    )
                extra = ""
                if node.id in self.variables_:
                    extra = (
                        f" (a function sees only its parameters and earlier functions; "
                        f"pass '{node.id}' as a parameter)"
                    )
                raise AdcliError(
                    "name",
                    f"unknown name '{node.id}' in the body of '{stmt.name}'{extra}"
                    + self._suggest(node.id, visible),
                    node.span,
                )

    def _assert(self, stmt: N.Assert) -> None:
        value = self.eval(stmt.test)
        if _truth(value, stmt.test.span):
            return
        if stmt.message is not None:
            message = stmt.message.value
        else:
            message = "assertion failed: " + self._source_of(stmt.test.span)
        raise AdcliError("assert", message, stmt.span)

    def _source_of(self, span: Span) -> str:
        lines = self.sources.get(span.file)
        if not lines or span.line > len(lines):
            return "expression is false"
        if span.line == span.end_line:
            return lines[span.line - 1][span.column - 1 : span.end_column - 1]
        return lines[span.line - 1][span.column - 1 :] + " ..."

    def _import(self, stmt: N.Import, base_dir: Path) -> None:
        from adcli.lang.parser import read_source

        raw = stmt.path
        if not raw.endswith(".ad"):
            raise AdcliError("value", f"import takes only .ad files, not {raw!r}", stmt.path_span)
        path = (base_dir / raw).resolve()
        key = str(path)
        if key in self.import_stack:
            chain = " -> ".join(Path(p).name for p in self.import_stack + [key])
            raise AdcliError("value", f"import cycle: {chain}", stmt.path_span)
        if key in self.imported:
            return
        if not path.is_file():
            raise AdcliError(
                "value", f"cannot import {raw!r}: no such file ({path})", stmt.path_span
            )
        filename = os.path.relpath(path) if not os.path.isabs(raw) else str(path)
        try:
            source = read_source(path, filename, self.limits.max_source_bytes)
        except OSError as exc:
            raise AdcliError(
                "value", f"cannot import {raw!r}: {exc.strerror or exc}", stmt.path_span
            ) from None
        program = self._parse(source, filename)
        self.import_stack.append(key)
        saved_span = self._statement_span
        try:
            self._run_program(program, path.parent)
        finally:
            self.import_stack.pop()
            self._statement_span = saved_span
        self.imported.add(key)

    # ----- expressions ------------------------------------------------------------------------
    def eval(self, node):
        """The value of an expression node."""
        kind = type(node)
        if kind is N.Number:
            return node.value
        if kind is N.Name:
            found = self.variables_.get(node.id, _MISSING)
            if found is not _MISSING:
                return found
        self._depth += 1
        try:
            if self._depth > self.limits.max_expr_depth:
                raise AdcliError(
                    "limit",
                    f"expression nested too deeply (limit {self.limits.max_expr_depth})",
                    node.span,
                    hint="split it into several statements, or raise the limit with --max-depth",
                )
            return _EVAL[kind](self, node)
        finally:
            self._depth -= 1

    def _number(self, node: N.Number):
        return node.value

    def _const(self, node):
        return node.value

    def _none(self, node):
        return None

    def _name(self, node: N.Name):
        try:
            return self.variables_[node.id]
        except KeyError:
            pass
        fn = self.functions.get(node.id)
        if fn is not None:
            return fn
        b = B.BUILTINS.get(node.id)
        if b is not None:
            return b
        raise AdcliError("name", f"unknown name '{node.id}'" + self._suggest(node.id), node.span)

    def _suggest(self, name: str, pool=None) -> str:
        if pool is None:
            pool = set(self.variables_) | set(self.functions) | set(B.BUILTINS)
        return B.suggestion(name, pool)

    def _list(self, node: N.ListLit):
        data = self._literal_data(node)
        try:
            return E.tensor(data, dtype=self.dtype, device=self.backend)
        except AdcliError as err:
            raise err.at(node.span)

    def _literal_data(self, node):
        if isinstance(node, N.ListLit):
            return [self._literal_data(item) for item in node.items]
        value = self.eval(node)
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, Tensor):
            if value.numel() == 1:
                return value.item()
            return value.tolist()
        raise AdcliError(
            "type", f"a bracket literal holds numbers, not {_type_name(value)}", node.span
        )

    def _unary(self, node: N.Unary):
        value = self.eval(node.operand)
        if node.op == "+":
            if not _is_numeric(value):
                raise AdcliError("type", f"bad operand for unary +: {_type_name(value)}", node.span)
            return value
        if isinstance(value, Tensor):
            return -value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
        if isinstance(value, bool):
            return -int(value)
        raise AdcliError("type", f"bad operand for unary -: {_type_name(value)}", node.span)

    def _binary(self, node: N.Binary):
        # Left-deep chains (a + b + c + ...) are walked in a loop, not recursively,
        # so a 100,000-term sum needs no deep Python stack.
        spine = []
        left = node
        while type(left) is N.Binary and len(spine) < 1_000_000:
            spine.append(left)
            left = left.left
        value = self.eval(left)
        tensor_ops = None if self.detect_anomaly else _TENSOR_OPS
        for b in reversed(spine):
            right = b.right
            kind = type(right)
            # Literal and variable operands inline: this loop is the interpreter's hot path.
            if kind is N.Number:
                right = right.value
            elif kind is N.Name and right.id in self.variables_:
                right = self.variables_[right.id]
            else:
                right = self.eval(right)
            if tensor_ops is not None and type(value) is Tensor and type(right) in _FAST_OPERANDS:
                try:
                    value = tensor_ops[b.op](value, right)
                except AdcliError as err:
                    raise err.at(b.op_span) from None
            else:
                value = self._operate(b, value, right)
        return value

    def _operate(self, node: N.Binary, a, b):
        if self.detect_anomaly and STATE.context is not node.op_span:
            # A NaN or Inf made here is reported at this operator (see _check_finite).
            outer = STATE.context
            STATE.context = node.op_span
            try:
                return self._operate(node, a, b)
            finally:
                STATE.context = outer
        op = node.op
        try:
            if type(a) is Tensor and type(b) in _FAST_OPERANDS:
                return _TENSOR_OPS[op](a, b)
            if isinstance(a, Tensor) or isinstance(b, Tensor):
                if not _is_numeric(a) or not _is_numeric(b):
                    if op in ("==", "!=") and (isinstance(a, tuple) or isinstance(b, tuple)):
                        return _compare_shapes(op, a, b)
                    raise self._operand_error(node, a, b)
                return _TENSOR_OPS[op](a, b)
            if _is_number(a) and _is_number(b):
                return _number_op(op, a, b, node)
            if op in ("==", "!="):
                if isinstance(a, tuple) or isinstance(b, tuple):
                    return _compare_shapes(op, a, b)
                same = a == b if type(a) is type(b) else False
                return same if op == "==" else not same
            raise self._operand_error(node, a, b)
        except AdcliError as err:
            raise err.at(node.op_span)

    def _operand_error(self, node, a, b) -> AdcliError:
        return AdcliError(
            "type",
            f"unsupported operand types for {node.op}: {_type_name(a)} and {_type_name(b)}",
            node.op_span,
        )

    def _attribute(self, node: N.Attribute):
        obj = self.eval(node.obj)
        name = node.name
        try:
            return _get_attribute(obj, name)
        except AdcliError as err:
            raise err.at(node.name_span)

    def _index(self, node: N.Index):
        obj = self.eval(node.obj)
        # A list, not a generator: generators recurse on the C stack, and indexes nest.
        key = tuple([self._index_item(item) for item in node.items])
        if isinstance(obj, tuple):
            if len(key) != 1 or not isinstance(key[0], (int, slice)):
                raise AdcliError("type", "a shape takes one index", node.span)
            try:
                return obj[key[0]]
            except IndexError:
                raise AdcliError(
                    "shape",
                    f"index {key[0]} is out of range for a shape of {len(obj)} dims",
                    node.span,
                ) from None
        if not isinstance(obj, Tensor):
            raise AdcliError("type", f"{_type_name(obj)} cannot be indexed", node.obj.span)
        try:
            return E.index(obj, key if len(key) != 1 else key[0])
        except AdcliError as err:
            raise err.at(node.span)

    def _index_item(self, item):
        if isinstance(item, N.Slice):
            parts = [
                None if p is None else self._whole(self.eval(p), p.span)
                for p in (item.start, item.stop, item.step)
            ]
            return slice(*parts)
        return self._whole(self.eval(item), item.span)

    def _whole(self, value, span):
        try:
            return _library.whole_number(value, "an index")
        except AdcliError as err:
            raise err.at(span) from None

    def _call(self, node: N.Call):
        if type(node.func) is not N.Name:
            raise AdcliError("type", "only named functions can be called", node.func.span)
        name = node.func.id
        target = self.functions.get(name)
        if target is None:
            target = B.BUILTINS.get(name)
        if target is None and name in self.variables_:
            target = self.variables_[name]
            if not isinstance(target, (UserFunction, B.Builtin)):
                raise AdcliError(
                    "type", f"'{name}' is {_type_name(target)}, not a function", node.func.span
                )
        if target is None:
            raise AdcliError(
                "name", f"unknown function '{name}'" + self._suggest(name), node.func.span
            )
        if isinstance(target, B.Builtin) and target.lazy:
            return self._call_lazy(target, node)
        args = [self.eval(a) for a in node.args]
        kwargs = {}
        for kw in node.kwargs:
            if kw.name in kwargs:
                raise AdcliError("type", f"keyword argument '{kw.name}' repeated", kw.name_span)
            kwargs[kw.name] = self.eval(kw.value)
        return self.call_value(target, args, kwargs, node)

    def call_value(self, target, args, kwargs, node):
        """Call a user function or builtin with evaluated arguments."""
        if isinstance(target, UserFunction):
            return self._call_user(target, args, kwargs, node)
        problem = target.check_call(len(args), kwargs)
        if problem:
            raise AdcliError("type", problem, node.span)
        if self.detect_anomaly:
            STATE.context = node.span
        try:
            return target.fn(self, *args, **kwargs)
        except AdcliError as err:
            raise err.at(node.span)
        except (
            ValueError,
            TypeError,
            IndexError,
            ZeroDivisionError,
            OverflowError,
            FloatingPointError,
        ) as exc:
            raise AdcliError("value", f"{target.name}(): {exc}", node.span) from None
        finally:
            if self.detect_anomaly:
                STATE.context = self._statement_span

    def _call_user(self, fn: UserFunction, args, kwargs, node):
        if kwargs:
            unknown = [k for k in kwargs if k not in fn.params]
            if unknown:
                raise AdcliError(
                    "type",
                    f"{fn.name}() got an unexpected keyword argument '{unknown[0]}'",
                    node.span,
                )
        bound = dict(zip(fn.params, args))
        for k, v in kwargs.items():
            if k in bound:
                raise AdcliError(
                    "type", f"{fn.name}() got multiple values for argument '{k}'", node.span
                )
            bound[k] = v
        if len(args) > len(fn.params) or len(bound) != len(fn.params):
            n = len(fn.params)
            raise AdcliError(
                "type",
                f"{fn.name}() takes {n} argument{'s' * (n != 1)}, but {len(args) + len(kwargs)} "
                f"{'was' if len(args) + len(kwargs) == 1 else 'were'} given",
                node.span,
            )
        return self.invoke(fn, bound, node.span)

    def invoke(self, fn: UserFunction, bound: dict, span):
        """Evaluate ``fn``'s body with its parameters bound (a fresh, closed scope)."""
        if self._call_depth >= self.limits.max_call_depth:
            raise AdcliError(
                "limit",
                f"function calls nested too deeply (limit {self.limits.max_call_depth})",
                span,
                hint="raise the limit with --max-call-depth",
            )
        self._calls += 1
        if self._calls > self.limits.max_calls:
            # Functions calling earlier ones twice make 2^n calls: no loops, yet no end.
            raise AdcliError(
                "limit",
                f"this statement made more than {self.limits.max_calls:,} function calls",
                span,
                hint="raise the limit with --max-calls",
            )
        if STATE.deadline is not None:
            check_deadline()
        saved = (self.variables_, self.functions)
        self.variables_ = bound
        self.functions = fn.functions
        self._call_depth += 1
        try:
            return self.eval(fn.body)
        finally:
            self.variables_, self.functions = saved
            self._call_depth -= 1

    def as_callable(self, fn, span) -> Callable:
        """A Python callable of tensors for a user function or builtin (jacobian, hessian...)."""
        if isinstance(fn, UserFunction):

            def call(*tensors):
                if len(tensors) != len(fn.params):
                    n = len(fn.params)
                    raise AdcliError(
                        "type",
                        f"{fn.name}() takes {n} argument{'s' * (n != 1)}, but "
                        f"{len(tensors)} {'was' if len(tensors) == 1 else 'were'} given",
                        span,
                    )
                return self.invoke(fn, dict(zip(fn.params, tensors)), span)

            return call
        if isinstance(fn, B.Builtin):
            if fn.lazy:  # no_grad takes an expression, not values
                raise AdcliError("type", f"{fn.name}() cannot be passed as a function", span)

            def call_builtin(*tensors):
                problem = fn.check_call(len(tensors), ())
                if problem:
                    raise AdcliError("type", problem, span)
                return fn.fn(self, *tensors)

            return call_builtin
        raise AdcliError("type", f"expected a function, got {_type_name(fn)}", span)

    def _call_lazy(self, target: B.Builtin, node: N.Call):
        problem = target.check_call(len(node.args), [k.name for k in node.kwargs])
        if problem:
            raise AdcliError("type", problem, node.span)
        return target.fn(self, node)

    def _method(self, node: N.MethodCall):
        obj = self.eval(node.obj)
        name = node.name
        if name not in B.METHODS:
            raise AdcliError(
                "name",
                f"unknown method '.{name}()'" + B.suggestion(name, B.METHODS),
                node.name_span,
            )
        args = [self.eval(a) for a in node.args]
        kwargs = {kw.name: self.eval(kw.value) for kw in node.kwargs}
        problem = B.check_method_call(name, len(args), kwargs)
        if problem:
            raise AdcliError("type", problem, node.span)
        if not isinstance(obj, Tensor):
            raise AdcliError("type", f"{_type_name(obj)} has no method '.{name}()'", node.name_span)
        if self.detect_anomaly:
            STATE.context = node.span
        try:
            return _METHOD_IMPLS[name](self, obj, *args, **kwargs)
        except AdcliError as err:
            raise err.at(node.span)
        except (ValueError, TypeError, IndexError) as exc:
            raise AdcliError("value", f".{name}(): {exc}", node.span) from None
        finally:
            if self.detect_anomaly:
                STATE.context = self._statement_span

    # ----- helpers for builtins --------------------------------------------------------------
    def _tensor_of(self, value, span=None) -> Tensor:
        if isinstance(value, Tensor):
            return value
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, (int, float)):
            return E.tensor(value, dtype=self.dtype, device=self.backend)
        raise AdcliError("type", f"expected a tensor or a number, got {_type_name(value)}", span)

    def _check_order(self, order, span) -> None:
        if order > self.limits.max_order:
            raise AdcliError(
                "limit",
                f"derivative order {order} is over the limit of {self.limits.max_order}",
                span,
                hint="raise it with --max-order",
            )


# ----- values ---------------------------------------------------------------------------------


def _is_literal(node) -> bool:
    """Whether ``node`` is a number or bracket literal (iterative: ``--at x=----1`` nests)."""
    pending = [node]
    while pending:
        node = pending.pop()
        if isinstance(node, N.Unary):
            pending.append(node.operand)
        elif isinstance(node, N.ListLit):
            pending.extend(node.items)
        elif not isinstance(node, N.Number):
            return False
    return True


def _type_name(value) -> str:
    if isinstance(value, (UserFunction, B.Builtin)):
        return "a function"
    return kind_of(value)


def _is_number(v) -> bool:
    return isinstance(v, (int, float))


def _is_numeric(v) -> bool:
    return isinstance(v, (int, float, Tensor))


def _truth(value, span) -> bool:
    if isinstance(value, Tensor):
        arr = value.numpy()
        return bool(np.all(arr))
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, tuple):
        return len(value) > 0
    raise AdcliError(
        "type", f"assert needs a bool, number or tensor, got {_type_name(value)}", span
    )


_INT_LIMIT = 2**63
_MISSING = object()


def _number_op(op, a, b, node):
    """Arithmetic on plain numbers stays plain numbers (as Python scalars in PyTorch)."""
    if isinstance(a, bool):
        a = int(a)
    if isinstance(b, bool):
        b = int(b)
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            if b == 0:
                r = float("nan") if a == 0 else (float("inf") if a > 0 else float("-inf"))
            else:
                r = a / b
        elif op == "^":
            if (
                isinstance(a, int)
                and isinstance(b, int)
                and b >= 0
                and (a in (0, 1, -1) or b * max(abs(a), 2).bit_length() < 63)
            ):
                r = a**b
            else:
                r = float(a) ** b
                if isinstance(r, complex):
                    r = float("nan")
        elif op == "@":
            raise AdcliError("type", "@ needs tensors, not numbers", node.op_span)
        else:
            return _COMPARE[op](a, b)
    except OverflowError:
        r = float("inf")
    except ZeroDivisionError:
        r = float("inf")
    if isinstance(r, int) and abs(r) >= _INT_LIMIT:
        r = float(r)
    return r


_COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

# Tensor's own operators take the engine's fastest path (numbers on either side too).
_TENSOR_OPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": E.pow,
    "@": lambda a, b: E.matmul(a, b),
    "==": E.eq,
    "!=": E.ne,
    "<": E.lt,
    "<=": E.le,
    ">": E.gt,
    ">=": E.ge,
}


_FAST_OPERANDS = frozenset({Tensor, float, int})


def _compare_shapes(op, a, b):
    def as_tuple(v):
        if isinstance(v, tuple):
            return v
        if isinstance(v, Tensor):
            return tuple(int(i) for i in v.numpy().reshape(-1))
        return None

    same = as_tuple(a) == as_tuple(b)
    return same if op == "==" else not same


def _get_attribute(obj, name):
    if isinstance(obj, Tensor):
        if name not in B.TENSOR_ATTRIBUTES:
            raise AdcliError(
                "name",
                f"a tensor has no attribute '{name}'" + B.suggestion(name, B.TENSOR_ATTRIBUTES),
            )
        if name == "T":
            # PyTorch's x.T reverses the dims with a permute (PermuteBackward).
            return obj if obj.ndim < 2 else E.permute(obj, *reversed(range(obj.ndim)))
        if name == "shape":
            return tuple(obj.shape)
        return getattr(obj, name)
    if isinstance(obj, (Node, AccumulateGrad)):
        if name == "name":
            return obj.name()
        if name == "next_functions":
            return tuple(n for n, _ in obj.next_functions)
        if name == "variable" and isinstance(obj, AccumulateGrad):
            return obj.variable
        raise AdcliError(
            "name", f"a grad_fn has no attribute '{name}'" + B.suggestion(name, B.NODE_ATTRIBUTES)
        )
    raise AdcliError("type", f"{_type_name(obj)} has no attribute '{name}'")


_EVAL = {
    N.Number: Session._number,
    N.Bool: Session._const,
    N.String: Session._const,
    N.NoneLit: Session._none,
    N.Name: Session._name,
    N.ListLit: Session._list,
    N.Unary: Session._unary,
    N.Binary: Session._binary,
    N.Call: Session._call,
    N.Attribute: Session._attribute,
    N.MethodCall: Session._method,
    N.Index: Session._index,
}

# The builtins and methods register themselves on import.
from adcli.lang import library as _library

_METHOD_IMPLS = _library.METHOD_IMPLS
