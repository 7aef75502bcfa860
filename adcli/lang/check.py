"""Static checks of a program without running it.

Finds what can be known before running: syntax errors, unknown names (with a
suggestion), use before definition, calls with the wrong number of arguments
or unknown keywords, unknown attributes and methods, recursion, and the same
in every imported file (each once; cycles are an error).
"""

from __future__ import annotations

from pathlib import Path

from adcli.errors import AdcliError
from adcli.lang import builtins as B
from adcli.lang import library as _library  # noqa: F401 - registers the builtins
from adcli.lang import nodes as N
from adcli.lang import sources


def check_source(
    source: str, filename: str, base_dir=None, lines: dict | None = None, limits=None
) -> list[AdcliError]:
    """Every problem found in ``source`` (an empty list when it looks fine).

    With ``lines`` (a dict), the source line under each error's caret is stored there
    as ``lines[(file, line)]``, for imported files too, so that drawing a caret never
    reads a file again.
    """
    from adcli.lang.parser import parse

    options = {}
    if limits is not None:
        options = {"max_depth": limits.max_depth, "max_source_bytes": limits.max_source_bytes}
    checker = _Checker(lines, limits)
    try:
        program = parse(source, filename, **options)
    except AdcliError as err:
        checker.keep_lines(source, filename, [err])
        return [err]
    if base_dir is None:
        base_dir = sources.base_dir_of(filename)
    checker.program(program, Path(base_dir), [sources.identity(filename)])
    checker.keep_lines(source, filename, checker.errors)
    return checker.errors


class _Checker:
    def __init__(self, lines: dict | None = None, limits=None) -> None:
        self.lines = lines
        self.limits = limits
        self.errors: list[AdcliError] = []
        self.variables: set[str] = set()
        self.functions: dict[str, tuple] = {}  # name -> its parameters
        self.seen_files: set[str] = set()
        self.defined_later: set[str] = set()  # names some statement of the file binds

    def keep_lines(self, source: str, filename: str, errors: list[AdcliError]) -> None:
        """Store the source line of each error in ``filename`` (only those lines)."""
        if self.lines is None:
            return
        wanted = {e.span.line for e in errors if e.span is not None and e.span.file == filename}
        for number in wanted:
            if (filename, number) not in self.lines:
                self.lines[(filename, number)] = _line_of(source, number)

    def error(self, kind, message, span) -> None:
        self.errors.append(AdcliError(kind, message, span))

    def program(self, program: N.Program, base_dir: Path, stack: list[str]) -> None:
        self.defined_later = {
            s.name for s in program.statements if isinstance(s, (N.Assign, N.FuncDef))
        }
        for stmt in program.statements:
            self.statement(stmt, base_dir, stack)

    def statement(self, stmt, base_dir: Path, stack: list[str]) -> None:
        if isinstance(stmt, N.Assign):
            self.expr(stmt.value, self.variables, self.functions)
            self.variables.add(stmt.name)
        elif isinstance(stmt, N.FuncDef):
            if stmt.name in B.BUILTINS:
                self.error("name", f"cannot redefine the builtin '{stmt.name}'", stmt.name_span)
            visible_funcs = dict(self.functions)
            params = set(stmt.params)
            for node in N.walk(stmt.body):
                if isinstance(node, N.Name) and node.id == stmt.name and node.id not in params:
                    self.error(
                        "name",
                        f"'{stmt.name}' cannot call itself: recursion is not allowed",
                        node.span,
                    )
                    break
            else:
                self.expr(stmt.body, params, visible_funcs, in_function=stmt.name)
            self.functions[stmt.name] = tuple(stmt.params)
        elif isinstance(stmt, N.ExprStmt):
            self.expr(stmt.expr, self.variables, self.functions)
        elif isinstance(stmt, N.Assert):
            self.expr(stmt.test, self.variables, self.functions)
        elif isinstance(stmt, N.Import):
            self.import_(stmt, base_dir, stack)

    def import_(self, stmt: N.Import, base_dir: Path, stack: list[str]) -> None:
        from adcli.lang.parser import parse

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
        options: dict = {}
        if self.limits is not None:
            options = {"max_depth": self.limits.max_depth}
        first = len(self.errors)
        try:
            source = sources.read_source(
                path,
                filename,
                *([self.limits.max_source_bytes] if self.limits is not None else []),
                regular_only=True,
                what=f"import {stmt.path!r}",
                span=stmt.path_span,
            )
        except AdcliError as err:
            self.errors.append(err)
            return
        try:
            program = parse(source, filename, **options)
        except AdcliError as err:
            self.errors.append(err)
        else:
            self.program(program, path.parent, stack + [key])
        self.keep_lines(source, filename, self.errors[first:])

    def expr(self, root, variables, functions, in_function=None) -> None:
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
        if node.id in variables or node.id in functions or node.id in B.BUILTINS:
            return
        if not in_function and node.id in self.defined_later:
            self.error("name", f"'{node.id}' is used before it is defined", node.span)
            return
        pool = set(variables) | set(functions) | set(B.BUILTINS)
        where = f" in the body of '{in_function}'" if in_function else ""
        extra = ""
        if in_function and node.id in self.variables:
            extra = (
                f" (a function sees only its parameters and earlier functions; "
                f"pass '{node.id}' as a parameter)"
            )
        self.error(
            "name",
            f"unknown name '{node.id}'{where}{extra}" + B.suggestion(node.id, pool),
            node.span,
        )

    def call(self, node: N.Call, variables, functions) -> None:
        if not isinstance(node.func, N.Name):
            self.error("type", "only named functions can be called", node.func.span)
            return
        name = node.func.id
        kwnames = [k.name for k in node.kwargs]
        if name in functions and name not in variables:
            params = functions[name]
            n = len(params)
            given = len(node.args) + len(kwnames)
            for kw in kwnames:
                if kw not in params:
                    problem = f"{name}() got an unexpected keyword argument '{kw}'"
                    break
                if kw in params[: len(node.args)]:
                    problem = f"{name}() got multiple values for argument '{kw}'"
                    break
            else:
                problem = None
            if problem:
                self.error("type", problem, node.span)
            elif given != n:
                self.error(
                    "type",
                    f"{name}() takes {n} argument{'s' * (n != 1)}, but {given} "
                    f"{'was' if given == 1 else 'were'} given",
                    node.span,
                )
            return
        builtin = B.BUILTINS.get(name)
        if builtin is not None and name not in variables:
            problem = builtin.check_call(len(node.args), kwnames)
            if problem:
                self.error("type", problem, node.span)


def _line_of(source: str, number: int) -> str | None:
    """Line ``number`` (1-based) of ``source``, found without splitting the whole text."""
    start = 0
    for _ in range(number - 1):
        start = source.find("\n", start) + 1
        if start == 0:
            return None
    end = source.find("\n", start)
    return source[start:] if end < 0 else source[start:end]
