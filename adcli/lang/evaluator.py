"""The evaluator: statements and expressions of a parsed program, run on the engine.

:class:`Evaluator` is the part of a :class:`~adcli.lang.interpreter.Session`
that walks the AST: statements (blocks, loops, conditionals, in-place
updates), expressions, calls of builtins and user functions. It never prints:
displayed values, prints and warnings go to the session's ``emit`` as
:class:`~adcli.lang.values.Output`. Every error is an :class:`AdcliError`
carrying the span of the code that caused it.

Scopes: a block does not open one; a function call does. ``variables_`` is
the scope names are read from and bound in; inside a function with a body,
names not bound there are read from ``_globals`` (the session's variables at
call time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from adcli import engine as E
from adcli.engine.tensor import STATE, AccumulateGrad, Node, Tensor, check_deadline
from adcli.errors import AdcliError, Span
from adcli.lang import builtins as B
from adcli.lang import library as _library
from adcli.lang import nodes as N
from adcli.lang import scope as S
from adcli.lang import sources
from adcli.lang.compiled import FAST_OPERANDS, TENSOR_OPS, compile_block
from adcli.lang.values import Output, UserFunction, type_name

_type_name = type_name

#: Builtin constants: names like ``sum`` (a variable may shadow them).
CONSTANTS = {"pi": math.pi, "inf": math.inf, "nan": math.nan}


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Return(Exception):
    def __init__(self, value) -> None:
        self.value = value


class Evaluator:
    """Runs statements and evaluates expressions (mixed into ``Session``)."""

    # Where the statement being run is, for its errors: a Span, or the statement's node,
    # whose span is worked out only when read (most statements never need it). The
    # engine's context (``STATE.context``) is the same, handed back on the tape nodes
    # and errors it makes.
    @property
    def _statement_span(self) -> Span | None:
        where = self._statement_at
        return where.span if isinstance(where, N.Node) else where

    @_statement_span.setter
    def _statement_span(self, where: Span | N.Node | None) -> None:
        self._statement_at = where

    # ----- statements -------------------------------------------------------------------------
    def _run_program(self, program: N.Program, base_dir: Path):
        statements = program.statements
        S.check_structure(program, self.limits.max_expr_depth)
        saved_dir = self._base_dir
        self._base_dir = base_dir
        state = STATE
        assign, binary, call, name_node, number = N.Assign, N.Binary, N.Call, N.Name, N.Number
        tensor_ops, fast_operands = _TENSOR_OPS, _FAST_OPERANDS
        # (the limits of a session do not change while it runs a program)
        quick = self.limits.max_expr_depth >= 1
        max_bytes = self.limits.max_bytes
        try:
            last = None
            for stmt in statements:
                # _exec's bookkeeping, then `name = a op b` and `name = f(a)` on
                # variables and numbers as _assign would run them, without the walk.
                self._statement_at = state.context = stmt
                self.last_output = None
                self._calls = 0
                self._steps += 1
                if state.deadline is not None:
                    check_deadline()
                if type(stmt) is not assign:
                    last = self._exec_body(stmt, base_dir)
                    continue
                last = None
                node = stmt.value
                kind = type(node)
                if kind is binary:
                    # :meth:`eval` of ``a op b``, a tensor variable and a variable or
                    # number: straight to the engine (as :meth:`_binary` would).
                    left = node.left
                    value = _MISSING
                    if (
                        type(left) is name_node
                        and quick
                        and not self.detect_anomaly
                        and not self._depth
                    ):
                        variables = self.variables_
                        a = variables.get(left.id, _MISSING)
                        if type(a) is Tensor:
                            right = node.right
                            kind = type(right)
                            if kind is number:
                                b = right.value
                            elif kind is name_node:
                                b = variables.get(right.id, _MISSING)
                            else:
                                b = _MISSING
                            if type(b) in fast_operands:
                                try:
                                    value = tensor_ops[node.op](a, b)
                                except AdcliError as err:
                                    raise err.at(node.op_span) from None
                    if value is _MISSING:
                        value = self.eval(node)
                elif kind is call:
                    value = self._quick_call(node)
                else:
                    value = self.eval(node)
                name = stmt.name
                if (
                    type(value) is Tensor
                    and name not in self.wrt
                    and self._globals is None
                    and not self._call_depth
                ):
                    # _bind_name of a tensor in the session's scope, its bytes counted
                    # as _hold counts them, within the limit (else _bind_name raises)
                    held = self._held
                    size = value._data.nbytes
                    total = self._held_total - held.get(name, 0) + size
                    if size and total <= max_bytes:
                        held[name] = size
                        self._held_total = total
                        if value.name is None and value._grad_fn is None:
                            value.name = name
                        self.variables_[name] = value
                        continue
                self._bind_name(name, value)
            return last
        finally:
            self._base_dir = saved_dir

    def _quick_call(self, node: N.Call):
        """:meth:`eval` of ``f(a, ...)`` at the top of a statement, ``f`` a builtin that
        :meth:`_call` passes its arguments as they are, and these variables or numbers:
        called at once; anything else, the evaluator."""
        func = node.func
        if (
            type(func) is N.Name
            and not node.kwargs
            and self._depth == 0
            and self.limits.max_expr_depth >= 1
        ):
            name = func.id
            target = B.BUILTINS.get(name)
            if (
                target is not None
                and not target.lazy
                and name not in _LIST_INPUTS
                and target is not _TENSOR_BUILTIN
                and name not in self.functions
            ):
                variables = self.variables_
                args = []
                for arg in node.args:
                    kind = type(arg)
                    if kind is N.Name:
                        value = variables.get(arg.id, _MISSING)
                        if value is _MISSING:
                            break
                    elif kind is N.Number:
                        value = arg.value
                    else:
                        break
                    args.append(value)
                else:
                    self._depth = 1  # as eval counts the call (a builtin may call back)
                    try:
                        n = len(args)
                        if self.detect_anomaly or not (
                            target.required <= n and (target.variadic or n <= len(target.params))
                        ):
                            return self.call_value(target, args, {}, node)
                        # call_value's call of a builtin, the arguments being right
                        # (check_call's common case) and anomaly mode off
                        try:
                            return target.fn(self, *args)
                        except AdcliError as err:
                            raise err.at(node.span)
                        except _BUILTIN_ERRORS as exc:
                            raise _builtin_error(target, exc, node) from None
                    finally:
                        self._depth = 0
        return self.eval(node)

    def _exec(self, stmt, base_dir: Path):
        """One top-level statement: its value if it is an expression, else None."""
        self._statement_at = STATE.context = stmt
        self.last_output = None
        self._calls = 0
        self._steps += 1
        if STATE.deadline is not None:
            check_deadline()
        return self._exec_body(stmt, base_dir)

    def _exec_body(self, stmt, base_dir: Path):
        """:meth:`_exec` past the bookkeeping of a statement's start."""
        if type(stmt) is N.Import:
            self._import(stmt, base_dir)
            return None
        value = _EXEC[type(stmt)](self, stmt, True)
        if type(stmt) in _DISPLAYING_BLOCKS and self.last_output is not None:
            return self.last_output.value  # an if/no_grad block's last displayed value
        return value

    def _run_block(self, statements, display: bool) -> None:
        for stmt in statements:
            self._statement_at = STATE.context = stmt
            self._steps += 1
            _EXEC[type(stmt)](self, stmt, display)

    def _run_compiled(self, block: N.Block) -> None:
        """Run a loop's or a function's body, compiled once into closures."""
        entry = self._compiled.get(id(block))
        if entry is None or entry[0] is not block:
            entry = self._compiled[id(block)] = (block, compile_block(self, block))
        for stmt, run in entry[1]:
            self._statement_at = STATE.context = stmt
            self._steps += 1
            run(False)

    def _tick(self, loop) -> None:
        """Each pass of a loop (one step): stop at the loop once a step or time limit is past."""
        self._steps += 1
        if self._steps > self.limits.max_steps:
            raise AdcliError(
                "limit",
                f"the program ran more than {self.limits.max_steps:,} statements",
                _head_span(loop),
                hint="is the loop's condition ever false? Raise the limit with --max-steps",
            )
        if STATE.deadline is not None:
            try:
                check_deadline()
            except AdcliError as err:
                raise err.at(_head_span(loop)) from None

    def _expr_stmt(self, stmt: N.ExprStmt, display: bool):
        value = self.eval(stmt.expr)
        silent = value is None and isinstance(stmt.expr, (N.Call, N.MethodCall))
        if silent:
            return None
        if display:
            self.last_output = Output("value", value, None, stmt.span)
            self._show(self.last_output)
        return value

    def _assign(self, stmt: N.Assign, display: bool):
        self._bind_name(stmt.name, self.eval(stmt.value))

    def _bind_name(self, name: str, value) -> None:
        """Bind ``name`` in the current scope (the session's, or a function's locals)."""
        if self._globals is not None or self._call_depth:
            self.variables_[name] = value
            return
        if name in self.wrt and isinstance(value, Tensor) and value.is_leaf:
            value.requires_grad = True
        self._hold(name, value)
        if type(value) is Tensor and value.name is None and value._grad_fn is None:
            value.name = name
        self.variables_[name] = value

    def _unpack(self, stmt: N.Unpack, display: bool):
        value = self.eval(stmt.value)
        items = self._unpacked(value, len(stmt.names), stmt.value.span)
        for name, item in zip(stmt.names, items):
            self._bind_name(name, item)

    def _unpacked(self, value, n: int, span) -> list:
        if isinstance(value, (tuple, range)):
            items = list(value)
        elif isinstance(value, Tensor):
            if value.ndim == 0:
                raise AdcliError("type", "cannot unpack a 0-d tensor", span)
            items = None
            count = value.shape[0]
        else:
            raise AdcliError("type", f"cannot unpack {_type_name(value)}", span)
        count = len(items) if items is not None else count
        if count < n:
            raise AdcliError(
                "value", f"not enough values to unpack (expected {n}, got {count})", span
            )
        if count > n:
            raise AdcliError("value", f"too many values to unpack (expected {n})", span)
        if items is None:
            items = [E.index(value, i) for i in range(count)]
        return items

    def _funcdef(self, stmt: N.FuncDef, display: bool):
        if B.protected(stmt.name):
            raise AdcliError("name", f"cannot redefine the builtin '{stmt.name}'", stmt.name_span)
        problem = S.function_problem(stmt, set(self.functions), self._all_variables())
        if problem is not None:
            raise problem
        self.functions[stmt.name] = UserFunction(
            stmt.name, stmt.params, stmt.body, dict(self.functions), stmt.span
        )

    def _all_variables(self) -> set:
        names = set(self.variables_)
        if self._globals is not None:
            names |= set(self._globals)
        return names

    def _assert_stmt(self, stmt: N.Assert, display: bool):
        self._assert(stmt)

    def _import_stmt(self, stmt: N.Import, display: bool):
        self._import(stmt, self._base_dir)

    def _for(self, stmt: N.For, display: bool):
        iterable = self.eval(stmt.iterable)
        items = self._iteration(iterable, stmt.iterable.span)
        body = stmt.body
        var = stmt.var
        for item in items:
            self._tick(stmt)
            self._bind_name(var, item)
            try:
                self._run_compiled(body)
            except _Break:
                break
            except _Continue:
                continue
        self._statement_at = stmt

    def _iteration(self, value, span):
        if isinstance(value, (range, tuple)):
            return value
        if isinstance(value, Tensor):
            if value.ndim == 0:
                raise AdcliError("type", "iteration over a 0-d tensor", span)
            return (E.index(value, i) for i in range(value.shape[0]))
        raise AdcliError(
            "type",
            f"cannot loop over {_type_name(value)}",
            span,
            hint="loop over range(n), a tuple, or a tensor (its first dimension)",
        )

    def _while(self, stmt: N.While, display: bool):
        body = stmt.body
        test = stmt.test
        while True:
            self._tick(stmt)
            if not truth(self.eval(test), test.span):
                break
            try:
                self._run_compiled(body)
            except _Break:
                break
            except _Continue:
                continue
        self._statement_at = stmt

    def _if(self, stmt: N.If, display: bool):
        while True:
            if truth(self.eval(stmt.test), stmt.test.span):
                self._run_block(stmt.body.statements, display)
                return
            orelse = stmt.orelse
            if orelse is None:
                return
            if type(orelse) is N.Block:
                self._run_block(orelse.statements, display)
                return
            stmt = orelse
            self._statement_at = stmt

    def _grad_mode(self, stmt: N.GradMode, display: bool):
        with E.enable_grad() if stmt.enabled else E.no_grad():
            self._run_block(stmt.body.statements, display)

    def _break(self, stmt, display: bool):
        raise _Break

    def _continue(self, stmt, display: bool):
        raise _Continue

    def _return(self, stmt: N.Return, display: bool):
        raise _Return(None if stmt.value is None else self.eval(stmt.value))

    def _aug_assign(self, stmt: N.AugAssign, display: bool):
        target = stmt.target
        value = self.eval(stmt.value)
        op = stmt.op
        try:
            if type(target) is N.Name:
                current = self.eval(target)
                if isinstance(current, Tensor):
                    E.update_(current, op, value)
                    if target.id not in self.variables_:
                        self._bind_name(target.id, current)
                else:
                    fake = N.Binary(op, target, stmt.value, stmt.span, stmt.op_span)
                    self._bind_name(target.id, self._operate(fake, current, value))
            elif type(target) is N.Index:
                obj = self.eval(target.obj)
                if not isinstance(obj, Tensor):
                    raise AdcliError(
                        "type", f"{_type_name(obj)} cannot be changed in place", target.obj.span
                    )
                key = self._key(target.items)
                fake = N.Binary(op, target, stmt.value, stmt.span, stmt.op_span)
                new = self._operate(fake, E.index(obj, key), value)
                E.index_put_(obj, key, new)
            else:
                current = self.eval(target)
                if not isinstance(current, Tensor):
                    raise AdcliError(
                        "type",
                        f"{_type_name(current)} cannot be changed in place",
                        target.span,
                    )
                E.update_(current, op, value)
        except AdcliError as err:
            raise err.at(stmt.op_span) from None

    def _set_item(self, stmt: N.SetItem, display: bool):
        obj = self.eval(stmt.obj)
        if isinstance(obj, tuple):
            raise AdcliError("type", "a tuple cannot be changed", stmt.target_span)
        if not isinstance(obj, Tensor):
            raise AdcliError(
                "type", f"{_type_name(obj)} does not support item assignment", stmt.obj.span
            )
        key = self._key(stmt.items)
        value = self.eval(stmt.value)
        if not isinstance(value, (Tensor, int, float)):
            raise AdcliError(
                "type", f"cannot assign {_type_name(value)} to a tensor element", stmt.value.span
            )
        try:
            E.index_put_(obj, key, value)
        except AdcliError as err:
            raise err.at(stmt.target_span) from None

    def _set_attr(self, stmt: N.SetAttr, display: bool):
        obj = self.eval(stmt.obj)
        name = stmt.name
        if not isinstance(obj, Tensor):
            raise AdcliError(
                "type", f"{_type_name(obj)} has no attribute '{name}' to set", stmt.name_span
            )
        if name not in _SETTABLE:
            raise AdcliError(
                "name",
                f"cannot set the attribute '{name}' of a tensor",
                stmt.name_span,
                hint="a program may set .grad, .data and .requires_grad",
            )
        value = self.eval(stmt.value)
        try:
            if name == "grad":
                if value is not None and not isinstance(value, Tensor):
                    raise AdcliError("type", "assigned grad expected to be a tensor or none")
                obj.grad = value
            elif name == "data":
                if not isinstance(value, Tensor):
                    raise AdcliError("type", "assigned data expected to be a tensor")
                obj.data = value
            else:
                obj.requires_grad = _library.as_bool(value, "requires_grad")
        except AdcliError as err:
            raise err.at(stmt.span) from None

    def _assert(self, stmt: N.Assert) -> None:
        value = self.eval(stmt.test)
        if assert_truth(value, stmt.test.span):
            return
        if stmt.message is not None:
            message = stmt.message.value
        else:
            message = "assertion failed: " + self._source_of(stmt.test.span)
        raise AdcliError("assert", message, stmt.span)

    def _source_of(self, span: Span) -> str:
        lines = self.source_lines(span.file)
        if not lines or span.line > len(lines):
            return "expression is false"
        if span.line == span.end_line:
            return lines[span.line - 1][span.column - 1 : span.end_column - 1]
        return lines[span.line - 1][span.column - 1 :] + " ..."

    def _import(self, stmt: N.Import, base_dir: Path) -> None:
        raw = stmt.path
        target = sources.resolve_import(raw, base_dir, stmt.path_span)
        path, key, filename = target.path, target.key, target.filename
        if key in self.import_stack:
            chain = " -> ".join(Path(p).name for p in self.import_stack + [key])
            raise AdcliError("value", f"import cycle: {chain}", stmt.path_span)
        if key in self.imported:
            return
        source = sources.read_source(
            path,
            filename,
            self.limits.max_source_bytes,
            regular_only=True,
            what=f"import {raw!r}",
            span=stmt.path_span,
        )
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
                raise S.too_deep_error(node, self.limits.max_expr_depth)
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
        if self._globals is not None:
            found = self._globals.get(node.id, _MISSING)
            if found is not _MISSING:
                return found
        b = B.BUILTINS.get(node.id)
        if b is not None:
            return b
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise AdcliError("name", f"unknown name '{node.id}'" + self._suggest(node.id), node.span)

    def _suggest(self, name: str, pool=None) -> str:
        if name in S.PYTHON_SPELLINGS:
            return f"; did you mean '{S.PYTHON_SPELLINGS[name]}'?"
        if pool is None:
            pool = set(self.variables_) | set(self.functions) | set(B.BUILTINS) | set(CONSTANTS)
            if self._globals is not None:
                pool |= set(self._globals)
        return B.suggestion(name, pool)

    def _tuple(self, node: N.TupleLit):
        return tuple([self.eval(item) for item in node.items])

    def _logic(self, node: N.Logic):
        left = self.eval(node.left)
        if truth(left, node.left.span) == (node.op == "or"):
            return left
        return self.eval(node.right)

    def _not(self, node: N.Not):
        return not truth(self.eval(node.operand), node.operand.span)

    def _list(self, node: N.ListLit):
        values = self._literal_values(node)
        try:
            if _holds_tensor(values):
                return _library.stack_nested(self, values)
            return E.tensor(values, dtype=self.dtype, device=self.backend)
        except AdcliError as err:
            raise err.at(node.span)

    def _literal_values(self, node):
        """Nested lists of the literal's values (numbers, or tensors to be stacked)."""
        if isinstance(node, N.ListLit):
            return [self._literal_values(item) for item in node.items]
        value = self.eval(node)
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, (int, float, Tensor)):
            return value
        raise AdcliError(
            "type", f"a bracket literal holds numbers, not {_type_name(value)}", node.span
        )

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
        if isinstance(obj, (tuple, range)):
            if len(key) != 1 or not isinstance(key[0], (int, slice)):
                raise AdcliError("type", f"{_type_name(obj)} takes one index", node.span)
            try:
                return obj[key[0]]
            except IndexError:
                what = "a shape of" if _type_name(obj) == "a shape" else f"{_type_name(obj)} of"
                raise AdcliError(
                    "shape",
                    f"index {key[0]} is out of range for {what} {len(obj)} "
                    f"{'dims' if what == 'a shape of' else 'items'}",
                    node.span,
                ) from None
        if not isinstance(obj, Tensor):
            raise AdcliError("type", f"{_type_name(obj)} cannot be indexed", node.obj.span)
        try:
            return E.index(obj, key)
        except AdcliError as err:
            raise err.at(node.span)

    def _key(self, items):
        return tuple([self._index_item(item) for item in items])

    def _index_item(self, item):
        if isinstance(item, N.Slice):
            parts = [
                None if p is None else self._whole(self.eval(p), p.span)
                for p in (item.start, item.stop, item.step)
            ]
            return slice(*parts)
        if type(item) is N.EllipsisIndex:
            return Ellipsis
        value = self.eval(item)
        if value is None:
            return None  # a new axis
        if isinstance(value, tuple):  # a gather: x[(0, 2, 0)]
            return tuple(self._whole(v, item.span) for v in value)
        if isinstance(value, Tensor) and value.dtype in ("int64", "bool"):
            return value  # a gather or a mask
        return self._whole(value, item.span)

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
        position = _LIST_INPUTS.get(name) if isinstance(target, B.Builtin) else None
        if position is not None and len(node.args) > position:
            args = [
                self._list_of_inputs(a) if i == position and type(a) is N.ListLit else self.eval(a)
                for i, a in enumerate(node.args)
            ]
        elif target is _TENSOR_BUILTIN:
            # tensor([...], dtype=...): the literal's numbers reach the dtype at full
            # double precision, not through the session's default dtype first.
            args = [self._exact(a) for a in node.args]
        else:
            args = [self.eval(a) for a in node.args]
        kwargs = {}
        for kw in node.kwargs:
            if kw.name in kwargs:
                raise AdcliError("type", f"keyword argument '{kw.name}' repeated", kw.name_span)
            if kw.name == "inputs" and type(kw.value) is N.ListLit:
                kwargs[kw.name] = self._list_of_inputs(kw.value)
            elif target is _TENSOR_BUILTIN:
                kwargs[kw.name] = self._exact(kw.value)
            else:
                kwargs[kw.name] = self.eval(kw.value)
        return self.call_value(target, args, kwargs, node)

    def _exact(self, node):
        """A bracket literal as nested lists of Python numbers (full precision), else its value."""
        if type(node) is N.ListLit:
            return self._literal_data(node)
        return self.eval(node)

    def _list_of_inputs(self, node: N.ListLit) -> tuple:
        """``[x, w]`` where grad/backward/jacobian/hessian take their inputs: a list, not a stack."""
        return tuple([self.eval(item) for item in node.items])

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
        except _BUILTIN_ERRORS as exc:
            raise _builtin_error(target, exc, node) from None
        finally:
            if self.detect_anomaly:
                STATE.context = self._statement_span

    def _call_user(self, fn: UserFunction, args, kwargs, node):
        problem = S.user_call_problem(fn.name, fn.params, len(args), list(kwargs))
        if problem:
            raise AdcliError("type", problem, node.span)
        bound = dict(zip(fn.params, args))
        bound.update(kwargs)
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
        saved = (self.variables_, self.functions, self._globals, self._statement_span)
        block = type(fn.body) is N.Block
        # A body reads the session's variables as they are now.
        self._globals = self._globals if self._globals is not None else self.variables_
        self.variables_ = bound
        self.functions = fn.functions
        self._call_depth += 1
        try:
            if not block:
                return self.eval(fn.body)
            try:
                self._run_compiled(fn.body)
            except _Return as returned:
                return returned.value
            return None
        except AdcliError as err:
            err.at(self._statement_span)
            if block:
                _called_from(err, fn, span)
            raise
        except (_Break, _Continue):  # the structure check keeps these inside loops
            raise AdcliError("syntax", "'break' outside a loop", self._statement_span) from None
        finally:
            self.variables_, self.functions, self._globals, self._statement_span = saved
            self._call_depth -= 1

    def as_callable(self, fn, span) -> Callable:
        """A Python callable of tensors for a user function or builtin (jacobian, hessian...)."""
        if isinstance(fn, UserFunction):

            def call(*tensors):
                problem = S.user_call_problem(fn.name, fn.params, len(tensors), ())
                if problem:
                    raise AdcliError("type", problem, span)
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
        kwargs = {
            kw.name: self._list_of_inputs(kw.value)
            if kw.name == "inputs" and type(kw.value) is N.ListLit
            else self.eval(kw.value)
            for kw in node.kwargs
        }
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


def is_literal(node) -> bool:
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


def _is_number(v) -> bool:
    return isinstance(v, (int, float))


def _is_numeric(v) -> bool:
    return isinstance(v, (int, float, Tensor))


def assert_truth(value, span) -> bool:
    """``assert``'s truth (v1): every element of a tensor must be true."""
    if isinstance(value, Tensor):
        arr = value.numpy()
        return bool(np.all(arr))
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, (tuple, range)):
        return len(value) > 0
    raise AdcliError(
        "type", f"assert needs a bool, number or tensor, got {_type_name(value)}", span
    )


def truth(value, span) -> bool:
    """The truth of ``if``, ``while``, ``and``, ``or``, ``not``: PyTorch's ``bool(x)``."""
    kind = type(value)
    if kind is bool:
        return value
    if kind is Tensor:
        n = value._data.size
        if n == 1:
            return bool(value._data.reshape(()) != 0) if n else False
        what = "more than one value" if n else "no values"
        raise AdcliError(
            "value",
            f"Boolean value of Tensor with {what} is ambiguous",
            span,
            hint="use all(x) or any(x) to test every element",
        )
    if kind is int or kind is float:
        return value != 0
    if value is None:
        return False
    if isinstance(value, (tuple, range, str)):
        return len(value) > 0
    if isinstance(value, (bool, int, float)):
        return bool(value)
    raise AdcliError("type", f"{_type_name(value)} has no truth value", span)


def _holds_tensor(values) -> bool:
    pending = [values]
    while pending:
        v = pending.pop()
        if type(v) is list:
            pending.extend(v)
        elif isinstance(v, Tensor):
            return True
    return False


def _head_span(stmt) -> Span:
    """The first line of a statement (a loop's header), for errors about the loop."""
    span = stmt.span
    body = getattr(stmt, "body", None)
    if isinstance(body, N.Block):
        return Span(span.file, span.line, span.column, body.span.line, body.span.column + 1)
    return span


def _called_from(err: AdcliError, fn: UserFunction, span) -> None:
    """Name the call site of the innermost function body an error came from."""
    if span is None or err.kind == "limit" or getattr(err, "call_site", None):
        return
    err.call_site = span  # type: ignore[attr-defined]
    err.message = f"{err.message} (in {fn.name}(), called at {span.file}:{span.line}:{span.column})"


#: What a builtin's failure may raise besides AdcliError: a value error at the call.
_BUILTIN_ERRORS = (
    ValueError,
    TypeError,
    IndexError,
    ZeroDivisionError,
    OverflowError,
    FloatingPointError,
)


def _builtin_error(target: B.Builtin, exc: Exception, node) -> AdcliError:
    return AdcliError("value", f"{target.name}(): {exc}", node.span)


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
        elif op == "%":
            if b == 0:
                r = float("nan")
            else:
                r = a % b
        elif op == "//":
            if b == 0:
                r = float("nan") if a == 0 else (float("inf") if a > 0 else float("-inf"))
            else:
                r = a // b
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

_TENSOR_OPS = TENSOR_OPS
_FAST_OPERANDS = FAST_OPERANDS


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
    N.Number: Evaluator._number,
    N.Bool: Evaluator._const,
    N.String: Evaluator._const,
    N.NoneLit: Evaluator._none,
    N.Name: Evaluator._name,
    N.ListLit: Evaluator._list,
    N.Unary: Evaluator._unary,
    N.Binary: Evaluator._binary,
    N.Call: Evaluator._call,
    N.Attribute: Evaluator._attribute,
    N.MethodCall: Evaluator._method,
    N.Index: Evaluator._index,
    N.TupleLit: Evaluator._tuple,
    N.Logic: Evaluator._logic,
    N.Not: Evaluator._not,
}

_EXEC = {
    N.ExprStmt: Evaluator._expr_stmt,
    N.Assign: Evaluator._assign,
    N.Unpack: Evaluator._unpack,
    N.SetItem: Evaluator._set_item,
    N.SetAttr: Evaluator._set_attr,
    N.AugAssign: Evaluator._aug_assign,
    N.FuncDef: Evaluator._funcdef,
    N.Assert: Evaluator._assert_stmt,
    N.Import: Evaluator._import_stmt,
    N.For: Evaluator._for,
    N.While: Evaluator._while,
    N.If: Evaluator._if,
    N.GradMode: Evaluator._grad_mode,
    N.Break: Evaluator._break,
    N.Continue: Evaluator._continue,
    N.Return: Evaluator._return,
}

Evaluator.EXEC = _EXEC
_DISPLAYING_BLOCKS = frozenset({N.If, N.GradMode})
_SETTABLE = frozenset({"grad", "data", "requires_grad"})
#: Builtins whose inputs argument (at this position) reads a bracket list as a list.
_LIST_INPUTS = {"grad": 1, "jacobian": 1, "hessian": 1, "jvp": 1, "vjp": 1, "hvp": 1}
_METHOD_IMPLS = _library.METHOD_IMPLS

_TENSOR_BUILTIN = B.BUILTINS["tensor"]
