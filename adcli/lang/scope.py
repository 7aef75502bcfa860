"""The static rules of the language, in one place: used by ``adcli check``
(:func:`check_program`, every problem) and by the interpreter
(:func:`check_structure` before a program runs, :func:`function_problem` when
a function is defined), so that the two cannot disagree.

The rules: ``break``/``continue`` only inside a loop and ``return`` only
inside a function body; names must be defined before they are used (blocks
open no scope, a function body does: it sees its parameters, its locals, the
functions defined before it, and the session's variables at call time); no
recursion; calls with the right number of arguments and known keywords; known
attributes and methods; expressions no deeper than the limit; imports of
``.ad`` files only, each once, without cycles.
"""

from __future__ import annotations

from pathlib import Path

from adcli.errors import AdcliError
from adcli.lang import builtins as B
from adcli.lang import nodes as N
from adcli.lang import sources
from adcli.lang.parser import parse

#: Python's spellings of the language's literals (for "did you mean").
PYTHON_SPELLINGS = {"True": "true", "False": "false", "None": "none"}
#: Builtin constants (names, like ``sum``).
CONSTANT_NAMES = frozenset({"pi", "inf", "nan"})

_LOOPS = (N.For, N.While)


def _blocks_of(stmt) -> list:
    """The blocks directly inside a statement (an if's branches, a loop's body)."""
    if isinstance(stmt, (N.For, N.While, N.GradMode)):
        return [stmt.body]
    if isinstance(stmt, N.If):
        out = [stmt.body]
        orelse = stmt.orelse
        while orelse is not None:
            if isinstance(orelse, N.Block):
                out.append(orelse)
                break
            out.append(orelse.body)
            orelse = orelse.orelse
        return out
    if isinstance(stmt, N.FuncDef) and isinstance(stmt.body, N.Block):
        return [stmt.body]
    return []


def structure_problems(program: N.Program, max_expr_depth: int | None = None) -> list[AdcliError]:
    """``break``/``continue`` outside a loop, ``return`` outside a function body, and
    (given ``max_expr_depth``) an expression nested more deeply than that."""
    problems: list[AdcliError] = []
    limit = max_expr_depth
    # (the statements left of a block, inside a loop, inside a function): a block's
    # statements are walked where it stands, so problems come in source order.
    pending = [(iter(program.statements), False, False)]
    while pending:
        statements, in_loop, in_function = pending[-1]
        for stmt in statements:
            kind = type(stmt)
            if limit is not None:
                width = N.span_width(stmt)
                if width is None or width > limit:
                    for root in _expressions_of(stmt):
                        deep = too_deep(root, limit)
                        if deep is not None:
                            problems.append(too_deep_error(deep, limit))
            if kind in _SIMPLE:
                continue
            if (kind is N.Break or kind is N.Continue) and not in_loop:
                word = "break" if kind is N.Break else "continue"
                problems.append(AdcliError("syntax", f"'{word}' outside a loop", stmt.span))
            elif kind is N.Return and not in_function:
                problems.append(
                    AdcliError(
                        "syntax",
                        "'return' outside a function",
                        stmt.span,
                        hint="return ends a function with a body: f(x) { ...; return y }",
                    )
                )
            blocks = _blocks_of(stmt)
            if blocks:
                if kind is N.FuncDef:
                    inner = (False, True)
                elif kind in _LOOPS:
                    inner = (True, in_function)
                else:
                    inner = (in_loop, in_function)
                pending.extend((iter(b.statements), *inner) for b in reversed(blocks))
                break
        else:
            pending.pop()
    return problems


#: Statements with no blocks, no break/continue/return: only their depth is checked.
_SIMPLE = frozenset(
    {N.Assign, N.ExprStmt, N.AugAssign, N.Unpack, N.SetItem, N.SetAttr, N.Assert, N.Import}
)


def check_structure(program: N.Program, max_expr_depth: int | None = None) -> None:
    """Raise the first :func:`structure_problems` error (the interpreter, before running)."""
    problems = structure_problems(program, max_expr_depth)
    if problems:
        raise problems[0]


def _expressions_of(stmt):
    """The expressions directly in a statement (not those of the blocks inside it)."""
    if isinstance(stmt, N.If):
        branch = stmt
        while isinstance(branch, N.If):
            yield branch.test
            branch = branch.orelse
        return
    for child in N.iter_children(stmt):
        if not isinstance(child, N.Block):
            yield child


#: Nodes the evaluator evaluates without counting a level (a number is its value).
_UNCOUNTED = (N.Number,)


def too_deep(root, limit: int):
    """The first node, in evaluation order, at which evaluating ``root`` goes more than
    ``limit`` levels deep (the evaluator's count: a node per level, a left-deep chain of
    binary operators as one), or None.

    Every level has a token of its own, so an expression no wider than ``limit``
    characters is within it: most statements are not walked at all."""
    width = N.span_width(root) if isinstance(root, N.Node) else None
    if width is not None and width <= limit:
        return None
    pending = [(root, 0)]
    while pending:
        node, above = pending.pop()
        if isinstance(node, _UNCOUNTED):
            continue
        counted = isinstance(node, N.Node) and type(node) in _COUNTED
        depth = above + 1 if counted else above
        if depth > limit:
            return node
        if type(node) is N.Binary:
            # The chain a + b + c ... is one level: its operands are all one below it.
            spine = []
            left = node
            while type(left) is N.Binary:
                spine.append(left.right)
                left = left.left
            children = [left, *reversed(spine)]
        else:
            children = list(N.iter_children(node))
        pending.extend((child, depth) for child in reversed(children))
    return None


def too_deep_error(node, limit: int) -> AdcliError:
    """The depth limit's error at ``node`` (the static pass's and the evaluator's)."""
    return AdcliError(
        "limit",
        f"expression nested too deeply (limit {limit})",
        node.span,
        hint="split it into several statements, or raise the limit with --max-depth",
    )


#: The expression nodes the evaluator counts as a level (all it evaluates but numbers).
_COUNTED = frozenset(
    {
        N.Bool,
        N.String,
        N.NoneLit,
        N.Name,
        N.ListLit,
        N.Unary,
        N.Binary,
        N.Call,
        N.Attribute,
        N.MethodCall,
        N.Index,
        N.TupleLit,
        N.Logic,
        N.Not,
    }
)


def bound_names(statements) -> set[str]:
    """Every name the statements bind, blocks included (not function bodies)."""
    names: set[str] = set()
    pending = list(statements)
    while pending:
        stmt = pending.pop()
        if isinstance(stmt, N.Assign):
            names.add(stmt.name)
        elif isinstance(stmt, N.Unpack):
            names.update(stmt.names)
        elif isinstance(stmt, N.For):
            names.add(stmt.var)
        elif isinstance(stmt, N.AugAssign) and isinstance(stmt.target, N.Name):
            names.add(stmt.target.id)
        elif isinstance(stmt, N.FuncDef):
            names.add(stmt.name)
            continue
        for block in _blocks_of(stmt):
            pending.extend(block.statements)
    return names


def _calls_itself(stmt: N.FuncDef) -> N.Name | None:
    params = set(stmt.params)
    roots = [stmt.body] if not isinstance(stmt.body, N.Block) else list(stmt.body.statements)
    for root in roots:
        for node in N.walk(root):
            if isinstance(node, N.Name) and node.id == stmt.name and node.id not in params:
                return node
            if isinstance(node, N.FuncDef):
                break
    return None


def suggest(name: str, pool) -> str:
    if name in PYTHON_SPELLINGS:
        return f"; did you mean '{PYTHON_SPELLINGS[name]}'?"
    return B.suggestion(name, pool)


def function_problem(stmt: N.FuncDef, functions, variables) -> AdcliError | None:
    """What is wrong with defining ``stmt`` now, or None.

    A body (one expression or in braces) may call only the functions defined
    before it, builtins and its own parameters or locals, and may not call
    itself. The names it reads are its parameters, its locals and the
    session's variables as they are at call time, so those are not checked
    here (``adcli check`` looks at them against every name the file binds).
    ``variables`` is kept for the callers' sake: what they see now.
    """
    itself = _calls_itself(stmt)
    if itself is not None:
        return AdcliError(
            "name", f"'{stmt.name}' cannot call itself: recursion is not allowed", itself.span
        )
    if isinstance(stmt.body, N.Block):
        return None
    visible = set(stmt.params) | set(functions) | set(B.BUILTINS)
    for node in N.walk(stmt.body):
        if isinstance(node, N.Call) and isinstance(node.func, N.Name):
            name = node.func.id
            if name not in visible:
                return AdcliError(
                    "name",
                    f"unknown name '{name}' in the body of '{stmt.name}'" + suggest(name, visible),
                    node.func.span,
                )
    return None


def user_call_problem(name: str, params: tuple, n_args: int, keyword_names) -> str | None:
    """Why calling the user function ``name(params)`` so is wrong, or None."""
    for kw in keyword_names:
        if kw not in params:
            return f"{name}() got an unexpected keyword argument '{kw}'"
        if kw in params[:n_args]:
            return f"{name}() got multiple values for argument '{kw}'"
    given = n_args + len(keyword_names)
    if n_args > len(params) or given != len(params):
        return B.arity_message(f"{name}()", f"{len(params)}", len(params) != 1, given)
    return None


# ----------------------------------------------------------------------- checker


class Checker:
    """Every static problem of a program and the files it imports."""

    def __init__(self, limits=None, lines: dict | None = None) -> None:
        self.limits = limits
        self.lines = lines
        self.errors: list[AdcliError] = []
        self.variables: set[str] = set()
        self.functions: dict[str, tuple] = {}  # name -> its parameters
        self.seen_files: set[str] = set()
        self.defined_later: set[str] = set()  # names some statement of the file binds
        self.all_bound: set[str] = set()  # every name the file binds at top level
        self.locals: set[str] | None = None  # a function body's parameters and locals

    def error(self, kind, message, span, hint=None) -> None:
        self.errors.append(AdcliError(kind, message, span, hint))

    def program(self, program: N.Program, base_dir: Path, stack: list[str]) -> None:
        depth = None if self.limits is None else self.limits.max_expr_depth
        self.errors.extend(structure_problems(program, depth))
        self.defined_later = bound_names(program.statements)
        self.all_bound |= self.defined_later
        self.block(program.statements, base_dir, stack, None)

    def block(self, statements, base_dir, stack, function) -> None:
        for stmt in statements:
            self.statement(stmt, base_dir, stack, function)

    def scope(self, function):
        """(variables, functions) visible where ``function`` (None: top level) runs."""
        if function is None:
            return self.variables, self.functions
        return function, self.functions

    def statement(self, stmt, base_dir: Path, stack: list[str], function) -> None:
        variables, functions = self.scope(function)
        if isinstance(stmt, N.Assign):
            self.expr(stmt.value, variables, functions)
            variables.add(stmt.name)
        elif isinstance(stmt, N.Unpack):
            self.expr(stmt.value, variables, functions)
            variables.update(stmt.names)
        elif isinstance(stmt, (N.SetItem, N.SetAttr)):
            self.expr(stmt.obj, variables, functions)
            if isinstance(stmt, N.SetItem):
                for item in stmt.items:
                    self.expr(item, variables, functions)
            elif stmt.name not in ("grad", "data", "requires_grad"):
                self.error(
                    "name",
                    f"cannot set the attribute '{stmt.name}' of a tensor",
                    stmt.name_span,
                    "a program may set .grad, .data and .requires_grad",
                )
            self.expr(stmt.value, variables, functions)
        elif isinstance(stmt, N.AugAssign):
            self.expr(stmt.target, variables, functions)
            self.expr(stmt.value, variables, functions)
        elif isinstance(stmt, N.FuncDef):
            self.function(stmt)
        elif isinstance(stmt, N.ExprStmt):
            self.expr(stmt.expr, variables, functions)
        elif isinstance(stmt, N.Assert):
            self.expr(stmt.test, variables, functions)
        elif isinstance(stmt, N.Import):
            if function is None:
                self.import_(stmt, base_dir, stack)
        elif isinstance(stmt, N.For):
            self.expr(stmt.iterable, variables, functions)
            variables.add(stmt.var)
            # A loop's later statements bind names its earlier ones read next time round.
            variables.update(bound_names(stmt.body.statements))
            self.block(stmt.body.statements, base_dir, stack, function)
        elif isinstance(stmt, N.While):
            variables.update(bound_names(stmt.body.statements))
            self.expr(stmt.test, variables, functions)
            self.block(stmt.body.statements, base_dir, stack, function)
        elif isinstance(stmt, N.If):
            branch = stmt
            while branch is not None:
                if isinstance(branch, N.Block):
                    self.block(branch.statements, base_dir, stack, function)
                    break
                self.expr(branch.test, variables, functions)
                self.block(branch.body.statements, base_dir, stack, function)
                branch = branch.orelse
        elif isinstance(stmt, N.GradMode):
            self.block(stmt.body.statements, base_dir, stack, function)
        elif isinstance(stmt, N.Return) and stmt.value is not None:
            self.expr(stmt.value, variables, functions)

    def function(self, stmt: N.FuncDef) -> None:
        if B.protected(stmt.name):
            self.error("name", f"cannot redefine the builtin '{stmt.name}'", stmt.name_span)
        problem = function_problem(stmt, self.functions, self.variables)
        if problem is not None:
            self.errors.append(problem)
        else:
            # Parameters, locals, and the session's variables (any the file binds:
            # the function may be called after they are).
            block = isinstance(stmt.body, N.Block)
            local = set(stmt.params)
            if block:
                local |= bound_names(stmt.body.statements)
            visible = local | self.variables | self.all_bound
            saved = self.functions, self.locals
            self.functions = dict(saved[0])
            self.locals = local
            try:
                if block:
                    self.block(stmt.body.statements, Path.cwd(), [], visible)
                else:
                    self.expr(stmt.body, visible, self.functions)
            finally:
                self.functions, self.locals = saved
        self.functions[stmt.name] = tuple(stmt.params)

    def import_(self, stmt: N.Import, base_dir: Path, stack: list[str]) -> None:
        try:
            target = sources.resolve_import(stmt.path, base_dir, stmt.path_span)
        except AdcliError as err:
            self.errors.append(err)
            return
        path, key, filename = target.path, target.key, target.filename
        if key in stack:
            chain = " -> ".join(Path(p).name for p in stack + [key])
            self.error("value", f"import cycle: {chain}", stmt.path_span)
            return
        if key in self.seen_files:
            return
        self.seen_files.add(key)
        first = len(self.errors)
        try:
            source = sources.read_source(
                path,
                filename,
                *self._source_limit(),
                regular_only=True,
                what=f"import {stmt.path!r}",
                span=stmt.path_span,
            )
        except AdcliError as err:
            self.errors.append(err)
            return
        try:
            program = parse(source, filename, **self.parse_limits())
        except AdcliError as err:
            self.errors.append(err)
        else:
            saved = self.defined_later
            self.program(program, path.parent, stack + [key])
            self.defined_later = saved
        self.keep_lines(source, filename, self.errors[first:])

    def keep_lines(self, source: str, filename: str, errors: list) -> None:
        """Store the source line of each error in ``filename`` (only those lines), so that
        drawing a caret never reads a file again."""
        if self.lines is None:
            return
        wanted = {e.span.line for e in errors if e.span is not None and e.span.file == filename}
        for number in wanted:
            if (filename, number) not in self.lines:
                self.lines[(filename, number)] = _line_of(source, number)

    def _source_limit(self) -> tuple:
        return () if self.limits is None else (self.limits.max_source_bytes,)

    def parse_limits(self) -> dict:
        if self.limits is None:
            return {}
        return {
            "max_depth": self.limits.max_depth,
            "max_source_bytes": self.limits.max_source_bytes,
        }

    def expr(self, root, variables, functions) -> None:
        in_function = None
        for node in N.walk(root):
            if isinstance(node, N.Name):
                self.name(node, variables, functions, in_function)
            elif isinstance(node, N.Call):
                self.call(node, variables, functions)
            elif isinstance(node, N.MethodCall):
                if node.name not in B.METHODS:
                    self.error(
                        "name",
                        f"unknown method '.{node.name}()'" + B.suggestion(node.name, B.METHODS),
                        node.name_span,
                    )
                else:
                    problem = B.check_method_call(
                        node.name, len(node.args), [k.name for k in node.kwargs]
                    )
                    if problem:
                        self.error("type", problem, node.span)
            elif isinstance(node, N.Attribute) and node.name not in B.ATTRIBUTES:
                self.error(
                    "name",
                    f"unknown attribute '{node.name}'" + B.suggestion(node.name, B.ATTRIBUTES),
                    node.name_span,
                )

    def name(self, node: N.Name, variables, functions, in_function) -> None:
        if (
            node.id in variables
            or node.id in functions
            or node.id in B.BUILTINS
            or node.id in CONSTANT_NAMES
        ):
            return
        top = variables is self.variables
        if top and node.id in self.defined_later:
            self.error("name", f"'{node.id}' is used before it is defined", node.span)
            return
        pool = set(variables) | set(functions) | set(B.BUILTINS) | CONSTANT_NAMES
        where = "" if top else " in a function body"
        self.error(
            "name",
            f"unknown name '{node.id}'{where}" + suggest(node.id, pool),
            node.span,
        )

    def call(self, node: N.Call, variables, functions) -> None:
        if not isinstance(node.func, N.Name):
            self.error("type", "only named functions can be called", node.func.span)
            return
        name = node.func.id
        kwnames = [k.name for k in node.kwargs]
        if name in functions and name not in variables:
            problem = user_call_problem(name, functions[name], len(node.args), kwnames)
            if problem:
                self.error("type", problem, node.span)
            return
        builtin = B.BUILTINS.get(name)
        if builtin is not None and name not in variables:
            problem = builtin.check_call(len(node.args), kwnames)
            if problem:
                self.error("type", problem, node.span)
        elif (
            builtin is None
            and self.locals is not None
            and name not in self.locals
            and name not in functions
        ):
            # In a body, a call finds the functions defined before it, the builtins
            # and its locals; not the session's variables nor later functions.
            pool = set(functions) | set(B.BUILTINS) | self.locals
            self.error("name", f"unknown function '{name}'" + suggest(name, pool), node.func.span)


def check_program(
    program: N.Program, filename: str, base_dir=None, limits=None, lines: dict | None = None
) -> list:
    """Every static problem of a parsed program (an empty list when it looks fine).

    With ``lines`` (a dict), the source line under each error's caret in an imported
    file is stored there as ``lines[(file, line)]``.
    """
    if base_dir is None:
        base_dir = sources.base_dir_of(filename)
    checker = Checker(limits, lines)
    checker.program(program, Path(base_dir), [sources.identity(filename)])
    return checker.errors


def _line_of(source: str, number: int) -> str | None:
    """Line ``number`` (1-based) of ``source``, found without splitting the whole text."""
    start = 0
    for _ in range(number - 1):
        start = source.find("\n", start) + 1
        if start == 0:
            return None
    end = source.find("\n", start)
    return source[start:] if end < 0 else source[start:end]
