"""Everything adcli shows: values, gradients, grad_fn chains and errors, as Rich text or JSON.

This is the only module that writes to standard output and standard error; the
commands in :mod:`adcli.cli.app` and :mod:`adcli.cli.repl` decide *what* to show and
call in here. Numbers reach this module only through ``Tensor.numpy()``.

Rich, NumPy, ``json`` and the tree and table renderables are imported when first
needed, because ``adcli eval "1+1"`` has a start-up budget; text that Rich would
print without any styling (off a terminal, or with ``NO_COLOR``) is written
without it (see :func:`prints_unstyled`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from adcli.cli.numbers import array_json, json_number
from adcli.cli.plot import plot_json, plot_text
from adcli.errors import AdcliError, Span

#: Where the source text of a file can be found, for the line under an error's caret.
SourceLines = Callable[[str], "list[str] | None"]

#: How many grad_fn nodes a tree shows before it says how many it left out.
TREE_NODE_LIMIT = 200
#: Columns of a source line shown under an error (the rest is cut around the caret).
SNIPPET_WIDTH = 100
#: Longest name or word of a message shown whole; longest message shown whole.
NAME_WIDTH = 80
MESSAGE_WIDTH = 2000


# ---------------------------------------------------------------------------------------------
# What a value is
# ---------------------------------------------------------------------------------------------
def is_tensor(value: object) -> bool:
    """Whether ``value`` is an engine tensor."""
    from adcli.engine import Tensor

    return isinstance(value, Tensor)


def is_node(value: object) -> bool:
    """Whether ``value`` is a grad_fn node (including a leaf's ``AccumulateGrad``)."""
    return hasattr(value, "next_functions") and callable(getattr(value, "name", None))


def is_plot(value: object) -> bool:
    """Whether ``value`` is what ``plot(...)`` returns (sampled curves)."""
    return hasattr(value, "series") and hasattr(value, "x") and hasattr(value, "wrt")


def node_label(node: Any) -> str:
    """``SqrtBackward``, or ``AccumulateGrad (x)`` for a leaf with a variable name."""
    name = node.name()
    variable = getattr(node, "variable", None)
    if variable is None:
        return name
    if variable.name:
        return f"{name} ({variable.name})"
    return f"{name} (leaf {format_shape(variable.shape)})"


def format_shape(shape: Iterable[int]) -> str:
    """A shape as the engine's messages write it: ``[2, 3]``, ``[]`` for a scalar."""
    return "[" + ", ".join(str(s) for s in shape) + "]"


# ---------------------------------------------------------------------------------------------
# Numbers as text
# ---------------------------------------------------------------------------------------------
def format_array(array: Any, prefix: str = "tensor(", suffix: str = ")") -> str:
    """The numbers of ``array`` as PyTorch prints them (the engine's :mod:`~adcli.engine.format`,
    imported when first needed: ``adcli --help`` must not wait for NumPy)."""
    from adcli.engine.format import format_array as engine_format_array

    return engine_format_array(array, prefix=prefix, suffix=suffix)


def format_tensor(tensor: Any, prefix: str = "tensor(") -> str:
    """A tensor's numbers, PyTorch style (``tensor([0.1390, 0.5486])``)."""
    return format_array(tensor.numpy(), prefix=prefix)


def function_text(value: object) -> str | None:
    """``<builtin sum(x, dim=None, keepdim=False)>`` for a builtin (the language's text)."""
    from adcli.lang.text import function_text as lang_function_text

    return lang_function_text(value)


def tensor_footer(tensor: Any) -> str:
    """``shape=[10] dtype=float32 device=cpu grad_fn=<SqrtBackward>`` for a tensor."""
    parts = [
        f"shape={format_shape(tensor.shape)}",
        f"dtype={tensor.dtype}",
        f"device={tensor.device}",
    ]
    if tensor.grad_fn is not None:
        parts.append(f"grad_fn=<{tensor.grad_fn.name()}>")
    elif tensor.requires_grad:
        parts.append("requires_grad=True")
    return " ".join(parts)


def format_plain(value: object) -> str:
    """A non-tensor value as displayed: ``None``, ``true``, ``2.5``, ``"s"``, ``[2, 3]``,
    ``<builtin sum(x, dim=None, keepdim=False)>`` (the language's :func:`display_text`)."""
    from adcli.lang.text import display_text

    return display_text(value)


def summary(value: object) -> str:
    """A one-line description of a value (the REPL's ``:vars``)."""
    if is_tensor(value):
        return f"tensor {tensor_footer(value)}"
    if is_node(value):
        return f"<{value.name()}>"
    text = format_plain(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------
# Rich renderables
# ---------------------------------------------------------------------------------------------
def value_renderable(value: object, ascii_only: bool = False) -> Any:
    """What the display of a value looks like: numbers and footer, a tree, or plain text."""
    from rich.console import Group
    from rich.text import Text

    if is_tensor(value):
        return Group(Text(format_tensor(value)), Text(tensor_footer(value), style="dim"))
    if is_node(value):
        return graph_tree(value, ascii_only=ascii_only)
    if is_plot(value):
        return Text(plot_text(value))
    return Text(format_plain(value))


def value_lines(value: object) -> list[str] | None:
    """The lines of :func:`value_renderable` without their styles (None for a tree)."""
    if is_tensor(value):
        return [format_tensor(value), tensor_footer(value)]
    if is_node(value):
        return None
    if is_plot(value):
        return [plot_text(value)]
    return [format_plain(value)]


def graph_tree(root: Any, limit: int = TREE_NODE_LIMIT, ascii_only: bool = False) -> Any:
    """The grad_fn chain below ``root`` as a Rich Tree, down to ``AccumulateGrad`` leaves.

    A node reached a second time (the graph is a DAG) is shown once in full and
    afterwards by name with a mark, so shared subgraphs do not repeat. The walk is
    iterative: long chains do not hit Python's recursion limit.
    """
    from rich.text import Text
    from rich.tree import Tree

    tree = Tree(Text(node_label(root), style="bold cyan"), guide_style="dim")
    expanded: set[int] = set()
    stack = [(root, tree)]
    shown = 1
    while stack:
        node, branch = stack.pop()
        if id(node) in expanded:
            mark = "^" if ascii_only else "↑"
            branch.label = Text(f"{node_label(node)} {mark} (shown above)", style="dim")
            continue
        expanded.add(id(node))
        children = []
        for child, _ in node.next_functions:
            if child is None:
                continue
            if shown >= limit:
                more = "..." if ascii_only else "…"
                branch.add(Text(f"{more} (more nodes not shown)", style="dim"))
                return tree
            shown += 1
            style = "green" if getattr(child, "variable", None) is not None else "cyan"
            children.append((child, branch.add(Text(node_label(child), style=style))))
        stack.extend(reversed(children))
    return tree


def derivatives_renderable(derivatives: dict[str, list[Any]], partial: str = "∂") -> Any:
    """Gradients labelled by variable (``∂/∂x = ...``), or a table by order beyond the first."""
    from rich.console import Group
    from rich.text import Text

    order = max((len(ds) for ds in derivatives.values()), default=0)
    if order <= 1:
        lines = []
        for name, ds in derivatives.items():
            label = f"{partial}/{partial}{name} = "
            lines.append(Text(format_tensor(ds[0], prefix=label + "tensor(")))
        return Group(*lines)

    from rich.table import Table

    sup = "ⁿ" if partial == "∂" else "^n"
    table = Table(title="derivatives by order", title_justify="left")
    table.add_column("order", justify="right")
    for name in derivatives:
        table.add_column(f"{partial}{sup}/{partial}{name}{sup}")
    for n in range(order):
        cells = [str(n + 1)]
        for ds in derivatives.values():
            cells.append(format_tensor(ds[n]) if n < len(ds) else "")
        table.add_row(*cells)
    return table


#: the command-line option that sets each limit the engine reports (``details["limit"]``)
LIMIT_OPTIONS = {"max_elements": "--max-elements", "timeout": "--timeout"}


def hint_of(err: AdcliError) -> str | None:
    """The hint to show for ``err``: its own, or, for a limit the engine hit, the option.

    The engine reports which limit it hit (``details``) without naming flags;
    the command line is where ``--max-elements`` is a word.
    """
    if err.hint is not None:
        return err.hint
    d = err.details
    if not d:
        return None
    if d.get("unavailable_device"):
        return "run on a machine with a GPU, or use --device cpu"
    option = LIMIT_OPTIONS.get(d.get("limit"))
    if option is None:
        return None
    advice = d.get("advice", "make it smaller")
    return f"{advice}, or raise the limit with {option}"


def error_text(
    err: AdcliError,
    source_lines: SourceLines | None = None,
    *,
    explain: bool = False,
    highlight: bool = False,
) -> Any:
    """``file:line:column: error: message``, the source line, a caret, and the hint.

    With ``explain``, an error of the program (one with a place) also names its code:
    ``(see: adcli explain E004)`` after the hint, or on a line of its own.
    """
    from rich.text import Text

    text = Text()
    span = err.span
    if span is not None:
        text.append(f"{shown_file(span.file)}:{span.line}:{span.column}: ", style="bold")
    text.append("error:", style="bold red")
    text.append(f" {bounded_message(err.message)}")
    if span is not None:
        lines = source_lines(span.file) if source_lines is not None else None
        if lines and 1 <= span.line <= len(lines):
            source, caret = caret_lines(lines[span.line - 1], span)
            text.append("\n")
            if highlight:  # on a colour terminal: the source line through the .ad lexer
                from adcli.cli.lexer import highlight_line

                for piece, style in highlight_line(source):
                    text.append(piece, style=style or None)
            else:
                text.append(source)
            text.append("\n" + caret, style="bold red")
    see = f"adcli explain {err.code}" if explain and span is not None else None
    hint = hint_of(err)
    if hint:
        text.append("\n")
        text.append("hint:", style="bold cyan")
        text.append(f" {bounded_message(hint)}")
        if see:
            text.append(f" (see: {see})", style="dim")
    elif see:
        text.append(f"\nsee: {see}", style="dim")
    return text


def shown_file(name: str) -> str:
    """A file name as messages show it: escaped, and cut when absurdly long."""
    return clip(printable(name), 200)


def explanation_text(entry: Any) -> Any:
    """An :class:`adcli.cli.explain.Explanation` for people: meaning, fix, and an example."""
    from textwrap import fill

    from rich.text import Text

    text = Text()
    text.append(f"{entry.code}", style="bold red")
    text.append(f" ({entry.kind}): {entry.title}\n\n", style="bold")
    for heading, body in (("What it means", entry.meaning), ("How to fix it", entry.fix)):
        text.append(f"{heading}\n", style="bold")
        text.append(fill(body, width=78, initial_indent="  ", subsequent_indent="  ") + "\n\n")
    text.append(f"Example (fails with {entry.code})\n", style="bold")
    text.append("".join(f"  {line}\n" for line in entry.example.splitlines()))
    text.append("\nFixed\n", style="bold")
    text.append("".join(f"  {line}\n" for line in entry.fixed.splitlines()), style="green")
    text.rstrip()
    return text


def explanation_json(entry: Any) -> dict[str, Any]:
    """An explanation as a JSON object: its fields by name."""
    return {
        "code": entry.code,
        "kind": entry.kind,
        "title": entry.title,
        "meaning": entry.meaning,
        "fix": entry.fix,
        "example": entry.example,
        "fixed": entry.fixed,
    }


def caret_lines(source: str, span: Span, width: int = SNIPPET_WIDTH) -> tuple[str, str]:
    """The source line and the line under it: spaces, then ``^`` or ``^~~~`` under the span.

    The line is shown safely: control characters are escaped (``\\x1b``), and a long
    line is cut to about ``width`` columns around the caret, with ``...`` where it was
    cut. Wide (CJK) characters take two columns, so the caret lands under the culprit.
    """
    source = source.rstrip("\r\n")
    start = min(max(span.column, 1), len(source) + 1)
    if span.end_line == span.line:
        length = span.end_column - span.column
    else:
        length = len(source) - start + 1
    length = max(1, min(length, len(source) - start + 1))
    # Cut first (by characters), so a 10 MB line costs no more than a short one.
    lo = max(0, start - 1 - width // 2)
    hi = min(len(source), max(start - 1 + min(length, width // 2), lo + width))
    lo = max(0, min(lo, hi - width))
    before, culprit, after = (
        source[lo : start - 1],
        source[start - 1 : min(start - 1 + length, hi)],
        source[start - 1 + len(source[start - 1 : min(start - 1 + length, hi)]) : hi],
    )
    head = "..." if lo > 0 else ""
    tail = "..." if hi < len(source) else ""
    shown_before = head + printable(before, keep_tabs=True)
    shown_culprit = printable(culprit, keep_tabs=True) or " "
    line = (
        shown_before + printable(culprit, keep_tabs=True) + printable(after, keep_tabs=True) + tail
    )
    # Keep tabs as tabs so the caret lands under the culprit whatever the tab width.
    pad = "".join("\t" if ch == "\t" else " " * _columns(ch) for ch in shown_before)
    marks = max(1, sum(_columns(ch) for ch in shown_culprit))
    return line, pad + "^" + "~" * (marks - 1)


def _columns(ch: str) -> int:
    """How many terminal columns a character takes: 2 for wide (CJK), 0 for combining."""
    import unicodedata

    if ch.isascii():
        return 1
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def printable(text: str, *, keep_tabs: bool = False, keep_newlines: bool = False) -> str:
    """``text`` with terminal control characters escaped (``\\x1b``, ``\\x07``, ``\\u202e``).

    Source and names reach the terminal only through here, so a program cannot set the
    window title, clear the screen or reorder text from inside an error message.
    """
    if text.isprintable():
        return text
    import unicodedata

    out = []
    for ch in text:
        if (
            (ch == "\t" and keep_tabs)
            or (ch == "\n" and keep_newlines)
            or ch.isprintable()
            or ch == " "
        ):
            out.append(ch)
        elif unicodedata.category(ch) in ("Zs",):
            out.append(" ")
        else:
            code = ord(ch)
            if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
                code -= 0xDC00
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def clip(text: str, width: int = NAME_WIDTH) -> str:
    """``text`` whole when short, else its start and end around ``...`` (names in messages)."""
    if len(text) <= width:
        return text
    keep = max(1, (width - 3) // 2)
    return text[:keep] + "..." + text[-keep:]


def bounded_message(text: str | None) -> str | None:
    """A message as it is shown: control characters escaped, every word longer than
    ``NAME_WIDTH`` cut around ``...``, and at most ``MESSAGE_WIDTH`` characters."""
    if text is None:
        return None
    if len(text) > MESSAGE_WIDTH * 4:  # a pathological message: cut before splitting
        text = text[: MESSAGE_WIDTH * 2] + " ... " + text[-MESSAGE_WIDTH:]
    words = text.split(" ")
    if any(len(w) > NAME_WIDTH for w in words):
        text = " ".join(clip(w) for w in words)
    text = printable(text, keep_newlines=True)
    return clip(text, MESSAGE_WIDTH)


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------
def brief_array(array: Any, limit: int = 6) -> str:
    """A short form of some numbers: ``3``, ``[1, 2.5]``, or ``[...] (shape [100])``."""
    import numpy as np

    a = np.asarray(array)
    if a.ndim == 0:
        return f"{float(a):.4g}" if a.dtype.kind == "f" else str(a.item())
    if a.size > limit:
        return f"[...] (shape {format_shape(a.shape)})"
    return np.array2string(
        a, separator=", ", formatter={"float_kind": lambda v: f"{v:.4g}"}
    ).replace("\n", "")


def value_json(value: object) -> dict[str, Any]:
    """The JSON object for a displayed value (see ``man adcli``: ``--json``).

    Tensors give their numbers, shape, dtype, device and grad_fn; other values give
    ``shape: []`` and null dtype and device. ``type`` says which kind of value it is.
    """
    base: dict[str, Any] = {"shape": [], "dtype": None, "device": None, "grad_fn": None}
    if is_tensor(value):
        grad_fn = value.grad_fn
        return {
            "type": "tensor",
            "value": array_json(value.numpy()),
            "shape": list(value.shape),
            "dtype": value.dtype,
            "device": value.device,
            "grad_fn": grad_fn.name() if grad_fn is not None else None,
            "requires_grad": bool(value.requires_grad),
        }
    if is_node(value):
        return {"type": "grad_fn", "value": value.name(), **base, "graph": graph_json(value)}
    if is_plot(value):
        return {"type": "plot", **plot_json(value), **base}
    return {**_plain_json(value), **base}


def _plain_json(value: object) -> dict[str, Any]:
    if value is None:
        return {"type": "none", "value": None}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int | float):
        return {"type": "number", "value": json_number(value)}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    if isinstance(value, tuple | list):
        return {"type": "tuple", "value": [_plain_json(v)["value"] for v in value]}
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a NumPy scalar
        return _plain_json(value.item())
    text = function_text(value)
    if text is not None:
        return {"type": "builtin" if text.startswith("<builtin") else "function", "value": text}
    return {"type": type(value).__name__.lower(), "value": str(value)}


def graph_json(root: Any) -> list[dict[str, Any]]:
    """The grad_fn graph below ``root`` as a flat node list, breadth first from ``root``.

    Each node is ``{"id", "name", "next", "variable"}``: ``id`` 0 is ``root``; ``next``
    holds the ids of its inputs' nodes in argument order (inputs that need no grad
    are left out); ``variable`` is the leaf's variable name for ``AccumulateGrad``.
    A node shared by several paths appears once.
    """
    if root is None:
        return []
    ids = {id(root): 0}
    order = [root]
    entries = []
    for node in order:  # grows as the walk finds new nodes
        nexts = []
        for child, _ in node.next_functions:
            if child is None:
                continue
            if id(child) not in ids:
                ids[id(child)] = len(order)
                order.append(child)
            nexts.append(ids[id(child)])
        variable = getattr(node, "variable", None)
        entries.append(
            {
                "id": ids[id(node)],
                "name": node.name(),
                "next": nexts,
                "variable": variable.name if variable is not None else None,
            }
        )
    return entries


def error_json(err: AdcliError) -> dict[str, Any]:
    """``{"kind", "message", "line", "column", "code", "file", "hint"}`` for an error."""
    span = err.span
    return {
        "kind": err.kind,
        "message": bounded_message(err.message),
        "line": span.line if span else None,
        "column": span.column if span else None,
        "code": err.code,
        "file": span.file if span else None,
        "hint": bounded_message(hint_of(err)),
    }


def internal_error_json(exc: BaseException) -> dict[str, Any]:
    """The error object for an exception that is a bug in adcli, not the user's doing."""
    return {
        "kind": "internal",
        "message": bounded_message(f"internal error: {type(exc).__name__}: {exc}"),
        "line": None,
        "column": None,
        "code": None,
        "file": None,
        "hint": "this is a bug in adcli; --debug shows the traceback",
    }


def failure_json(exc: BaseException) -> dict[str, Any]:
    """The JSON error object for any failure: an AdcliError, or a bug."""
    return error_json(exc) if isinstance(exc, AdcliError) else internal_error_json(exc)


def accumulation_message(acc: Any) -> str:
    """``x.grad: 3 + 6 -> 9 (accumulated; zero it with x.grad.zero_() or use grad(...))``."""
    return (
        f"{acc.name}.grad: {brief_array(acc.before)} + {brief_array(acc.added)} -> "
        f"{brief_array(acc.after)} (accumulated; zero it with {acc.name}.grad.zero_() "
        "or use grad(...))"
    )


def output_json(output: Any) -> dict[str, Any]:
    """One displayed output (value, print, warning or accumulation) as a JSON object."""
    if output.kind == "value":
        return value_json(output.value)
    if output.kind == "accumulation":
        acc = output.value
        span = output.span
        return {
            "type": "accumulation",
            "variable": acc.name,
            "accumulated": True,
            "before": array_json(acc.before),
            "added": array_json(acc.added),
            "grad": array_json(acc.after),
            "line": span.line if span else None,
            "column": span.column if span else None,
        }
    entry: dict[str, Any] = {"type": output.kind, "text": output.text}
    if output.kind == "warning":
        span = output.span
        entry["line"] = span.line if span else None
        entry["column"] = span.column if span else None
    return entry


def dumps(obj: object) -> str:
    """Strict JSON on one line (``allow_nan=False`` proves no NaN slipped through)."""
    import json

    return json.dumps(obj, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# JUnit XML
# ---------------------------------------------------------------------------------------------
def junit_xml(results: list[tuple], not_run: list[str]) -> bytes:
    """A JUnit report: one ``<testcase>`` per script, ending in a newline.

    ``results`` holds ``(file, seconds, error)`` or ``(file, seconds, error, text)``:
    error is None, an AdcliError, another exception, or an error's JSON object
    (:func:`failure_json`); ``text`` is the full error as shown (source line and
    caret), the failure's text. A failure carries ``file:line:column: message`` as
    its message. Scripts in ``not_run`` (after ``--fail-fast`` stopped) are skipped.
    """
    import xml.etree.ElementTree as ET

    failures = sum(1 for result in results if result[2] is not None)
    suite = ET.Element(
        "testsuite",
        name="adcli",
        tests=str(len(results) + len(not_run)),
        failures=str(failures),
        errors="0",
        skipped=str(len(not_run)),
        time=f"{sum(result[1] for result in results):.3f}",
    )

    def safe(text: str) -> str:  # XML 1.0 has no control characters, not even escaped
        return printable(text, keep_tabs=True, keep_newlines=True)

    for file, seconds, error, *rest in results:
        case = ET.SubElement(
            suite, "testcase", classname="adcli", name=safe(file), time=f"{seconds:.3f}"
        )
        if error is None:
            continue
        info = error if isinstance(error, dict) else failure_json(error)
        where = ""
        if info["line"] is not None:
            where = f"{info['file']}:{info['line']}:{info['column']}: "
        failure = ET.SubElement(
            case, "failure", message=safe(f"{where}{info['message']}"), type=info["kind"]
        )
        if info["line"] is not None:
            failure.set("line", str(info["line"]))
        text = rest[0] if rest and rest[0] else None
        if text is None:
            text = error_text(error).plain if isinstance(error, AdcliError) else info["message"]
        failure.text = safe(text)
    for file in not_run:
        case = ET.SubElement(suite, "testcase", classname="adcli", name=safe(file), time="0.000")
        ET.SubElement(case, "skipped", message="not run: --fail-fast stopped at a failure")
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"


def github_annotation(info: dict[str, Any]) -> str:
    """A GitHub Actions workflow command for an error object: ``::error file=F,line=L,col=C::msg``."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    fields = []
    if info.get("file") and not str(info["file"]).startswith("<"):
        fields.append(f"file={prop(str(info['file']))}")
    if info.get("line") is not None:
        fields.append(f"line={info['line']}")
    if info.get("column") is not None:
        fields.append(f"col={info['column']}")
    message = info["message"]
    return f"::error {','.join(fields)}::{data(message)}" if fields else f"::error::{data(message)}"


# ---------------------------------------------------------------------------------------------
# The one writer
# ---------------------------------------------------------------------------------------------
class OutputLost(BaseException):
    """Standard output cannot be written (a closed pipe, a full disk, a closed descriptor).

    A BaseException, so that no ``except Exception`` between the writer and
    :func:`adcli.cli.app.main` mistakes it for an error of the program.
    """

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.errno = error.errno
        self.reason = error.strerror or str(error)


#: The narrowest a terminal is assumed to be (``COLUMNS=10`` must not cut values).
MIN_TERMINAL_WIDTH = 60
#: The width used off a terminal: wide enough that nothing is ever wrapped or cut.
UNBOUNDED_WIDTH = 100_000


def output_width(file: Any) -> int:
    """Columns to lay tables and trees out in: a terminal's width (at least
    ``MIN_TERMINAL_WIDTH``), or off a terminal so wide that values are shown whole."""
    try:
        terminal = file.isatty()
    except (AttributeError, ValueError, OSError):
        terminal = False
    if not terminal:
        return UNBOUNDED_WIDTH
    columns = 0
    given = os.environ.get("COLUMNS", "")
    if given.isdigit():
        columns = int(given)
    if columns <= 0:
        try:
            columns = os.get_terminal_size(file.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 80
    return max(columns, MIN_TERMINAL_WIDTH)


def is_unicode(file: Any) -> bool:
    """Whether ``file`` takes any character (its encoding is a UTF)."""
    encoding = (getattr(file, "encoding", None) or "utf-8").lower().replace("-", "")
    return encoding.startswith("utf")


#: What Rich changes in the text of a ``Text`` it prints: the control codes it strips
#: (``rich.control.strip_control_codes``) and the tabs it expands.
RICH_REWRITES = frozenset("\t\r\x07\x08\x0b\x0c")


def prints_unstyled(file: Any) -> bool:
    """Whether a console of :func:`make_console` on ``file`` prints no styling at all.

    Off a terminal (and with ``NO_COLOR``) Rich has no colour system and drops every
    style, which is when :meth:`Renderer.value` and friends can write plain text
    themselves and skip importing Rich (a good part of the start-up). This follows
    Rich's own tests (``Console.is_terminal``, ``_detect_color_system``); anything
    unusual (Windows, Jupyter, a proxied file) says False and Rich does the printing.
    """
    if sys.platform == "win32" or "IPython" in sys.modules:
        return False
    if hasattr(file, "rich_proxied_file"):
        return False
    environ = os.environ
    if environ.get("NO_COLOR", "") != "":
        return True
    tty_compatible = environ.get("TTY_COMPATIBLE", "")
    force_color = environ.get("FORCE_COLOR")
    if tty_compatible in ("0", "1"):
        terminal = tty_compatible == "1"
    elif force_color is not None:
        terminal = force_color != ""
    else:
        try:
            terminal = file.isatty()
        except (AttributeError, ValueError):
            terminal = False  # as Rich's test says
        except OSError:
            return False
    return not terminal or environ.get("TERM", "").lower() in ("dumb", "unknown")


def make_console(stderr: bool = False, file: Any = None) -> Any:
    """A Rich console on stdout or stderr: colour only on a terminal, never with NO_COLOR.

    Rich drops colour off a terminal by itself; with ``NO_COLOR`` it would still emit
    bold and dim, so there we turn styling off entirely. The width never comes from
    a nonsensical ``COLUMNS`` (0, 10): see :func:`output_width`.
    """
    from rich.console import Console

    if file is None:
        file = sys.stderr if stderr else sys.stdout
    options: dict[str, Any] = {"width": output_width(file)}
    if os.environ.get("NO_COLOR", "") != "":
        options["color_system"] = None
    return Console(file=file, stderr=stderr, highlight=False, markup=False, emoji=False, **options)


class Renderer:
    """Shows what a command produces, either for people (Rich) or as JSON lines.

    Create one per command run (the consoles follow ``sys.stdout``/``sys.stderr`` as
    they are then, unless ``out_file``/``err_file`` are given). In JSON mode, displayed
    outputs are collected in ``outputs`` for the command to put into its JSON object;
    nothing but JSON reaches stdout.

    A failure to write standard output raises :class:`OutputLost`; standard error is
    written on a best-effort basis (a warning that cannot be shown never costs a value).
    """

    def __init__(
        self,
        *,
        json_mode: bool = False,
        debug: bool = False,
        quiet: bool = False,
        out_file: Any = None,
        err_file: Any = None,
    ):
        self.json_mode = json_mode
        self.debug = debug
        self.quiet = quiet
        self.outputs: list[dict[str, Any]] = []
        self._out_file = out_file
        self._err_file = err_file
        self._out = None
        self._err = None
        self._stdout: Any = None  # where stdout output goes, fixed by the first of it
        self._unstyled: bool | None = None

    @property
    def out_file(self) -> Any:
        return self._out_file if self._out_file is not None else sys.stdout

    @property
    def err_file(self) -> Any:
        return self._err_file if self._err_file is not None else sys.stderr

    @property
    def out(self) -> Any:
        """The stdout console."""
        if self._out is None:
            self._out = make_console(file=self._stdout_file())
        return self._out

    def _stdout_file(self) -> Any:
        """``out_file`` as it was at the first output (as the console keeps it)."""
        if self._stdout is None:
            self._stdout = self.out_file
        return self._stdout

    @property
    def err(self) -> Any:
        """The stderr console."""
        if self._err is None:
            self._err = make_console(stderr=True, file=self.err_file)
        return self._err

    @property
    def ascii_only(self) -> bool:
        """Whether stdout takes only ASCII (``PYTHONIOENCODING=ascii``, ``LC_ALL=C``)."""
        return not is_unicode(self.out_file)

    def _print_out(self, renderable: Any, **options: Any) -> None:
        try:
            self.out.print(renderable, **options)
        except OSError as exc:
            raise OutputLost(exc) from None
        except ValueError as exc:  # a closed file object
            raise OutputLost(OSError(9, str(exc))) from None

    def _print_plain_out(self, lines: Callable[[], list[str] | None]) -> bool:
        """Write the text ``lines()`` gives, one line each, as the stdout console would
        print them as unstyled ``Text`` with ``soft_wrap``, without Rich; or say False
        (the console must print them: it styles, or the text has what Rich rewrites)."""
        if self._unstyled is None:
            self._unstyled = prints_unstyled(self._stdout_file())
        if not self._unstyled:
            return False
        shown = lines()
        if shown is None:
            return False
        text = "\n".join(shown)
        if not RICH_REWRITES.isdisjoint(text):
            return False
        file = self._stdout_file()
        try:
            file.write(text + "\n")
            file.flush()
        except (BrokenPipeError, UnicodeEncodeError):
            return False  # Rich's own handling of these follows: it meets them again
        except OSError as exc:
            raise OutputLost(exc) from None
        except ValueError as exc:  # a closed file object
            raise OutputLost(OSError(9, str(exc))) from None
        return True

    def _print_err(self, renderable: Any, **options: Any) -> None:
        try:
            self.err.print(renderable, **options)
        except (OSError, ValueError):
            pass  # stderr is full or gone: there is nowhere left to say so

    def write_out(self, text: str) -> None:
        """Plain text on stdout, as it is (JSON lines, replayed output of a worker)."""
        try:
            self.out_file.write(text)
            self.out_file.flush()
        except OSError as exc:
            raise OutputLost(exc) from None
        except (ValueError, AttributeError) as exc:
            raise OutputLost(OSError(9, str(exc))) from None

    def write_err(self, text: str) -> None:
        """Plain text on stderr, best effort."""
        try:
            self.err_file.write(text)
            self.err_file.flush()
        except (OSError, ValueError, AttributeError):
            pass

    @property
    def partial(self) -> str:
        """``∂`` where the output can encode it, else ``d``."""
        return "d" if self.ascii_only else "∂"

    # -- what a program displays while it runs --------------------------------------------
    def emit(self, output: Any) -> None:
        """Show one output of a running program (the interpreter's ``emit`` callback)."""
        if self.json_mode:
            if not self.quiet:
                self.outputs.append(output_json(output))
        elif self.quiet:
            return
        elif output.kind == "value":
            self.value(output.value)
        elif output.kind == "print":
            self.print_text(output.text or "")
        elif output.kind == "accumulation":
            self.accumulation(output.value, output.span)
        else:
            self.warning(output.text or "", output.span)

    def value(self, value: object) -> None:
        """Display one value."""
        if not self._print_plain_out(lambda: value_lines(value)):
            self._print_out(value_renderable(value, self.ascii_only), soft_wrap=True)

    def print_text(self, text: str) -> None:
        """What a program's ``print(...)`` wrote."""
        if self._print_plain_out(lambda: [text]):
            return
        from rich.text import Text

        self._print_out(Text(text), soft_wrap=True)

    def accumulation(self, acc: Any, span: Span | None = None) -> None:
        """``x.grad: 3 + 6 -> 9 (accumulated; ...)`` on stderr, once per leaf and statement."""
        from rich.text import Text

        text = Text()
        if span is not None:
            text.append(f"{span.file}:{span.line}:{span.column}: ", style="bold")
        text.append("note:", style="bold cyan")
        text.append(f" {accumulation_message(acc)}")
        self.err.print(text, soft_wrap=True)

    def warning(self, message: str, span: Span | None = None) -> None:
        """A warning line on stderr: ``file:line:column: warning: message``."""
        from rich.text import Text

        text = Text()
        if span is not None:
            text.append(f"{span.file}:{span.line}:{span.column}: ", style="bold")
        text.append("warning:", style="bold yellow")
        text.append(f" {message}")
        self._print_err(text, soft_wrap=True)

    def notice(self, message: str) -> None:
        """A short message for people on stderr (not shown in JSON mode)."""
        from rich.text import Text

        if not self.json_mode:
            self._print_err(Text(message, style="dim"), soft_wrap=True)

    def derivative_checks(self, checks: dict[str, dict]) -> None:
        """Largest disagreements between Taylor mode, nesting and finite differences."""
        from rich.table import Table

        def cell(d):
            return "-" if d is None else f"{d:.2e}"

        for name, report in checks.items():
            table = Table(
                title=f"check of d/d{name} ({report['dtype']}): largest relative disagreement "
                f"{cell(report['max_disagreement'])}",
                title_justify="left",
            )
            for column in ("order", "taylor vs nested", "taylor vs fd", "nested vs fd"):
                table.add_column(column, justify="right")
            for row in report["orders"]:
                table.add_row(
                    str(row["order"]),
                    cell(row["taylor_vs_nested"]),
                    cell(row["taylor_vs_fd"]),
                    cell(row["nested_vs_fd"]),
                )
            self._print_out(table)

    def derivative_costs(self, costs: dict[str, dict[str, list]]) -> None:
        """Graph nodes, time and peak memory per order, for each method that ran."""
        from rich.table import Table

        for name, by_method in costs.items():
            for method, rows in by_method.items():
                table = Table(title=f"cost of d/d{name} by {method}", title_justify="left")
                for column in ("order", "graph nodes", "time", "peak memory"):
                    table.add_column(column, justify="right")
                for row in rows:
                    table.add_row(
                        str(row["order"]),
                        f"{row['nodes']:,}",
                        f"{row['seconds'] * 1e3:.2f} ms",
                        f"{row['peak_bytes'] / 1024:.1f} KiB",
                    )
                self._print_out(table)

    def formulas(self, formulas: dict[str, list[str]], latex: bool = False) -> None:
        """Derivatives as programs of the language (``eval --symbolic``), or as LaTeX."""
        from rich.text import Text

        for name, programs in formulas.items():
            for k, text in enumerate(programs, start=1):
                head = f"d/d{name}" if k == 1 else f"d{k}/d{name}{k}"
                if latex:
                    head = "latex " + head
                # A program with statements reads better after a colon than an equals sign.
                line = Text(f"{head}: " if ";" in text else f"{head} = ", style="bold")
                line.append(text)
                self.out.print(line, soft_wrap=True)

    def derivatives(self, derivatives: dict[str, list[Any]]) -> None:
        """Gradients, or all orders of derivatives as a table."""
        self._print_out(derivatives_renderable(derivatives, self.partial), soft_wrap=True)

    def graph(self, value: object) -> None:
        """The grad_fn chain of a value (a tensor or a node)."""
        from rich.text import Text

        root = value if is_node(value) else getattr(value, "grad_fn", None)
        if root is None:
            self._print_out(Text("grad_fn: None (a leaf or a constant)"), soft_wrap=True)
        else:
            self._print_out(graph_tree(root, ascii_only=self.ascii_only))

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        """A small table of text (the REPL's ``:vars``)."""
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        self._print_out(table)

    def explain(self, entries: list[Any]) -> None:
        """``adcli explain``: one explanation in full, or (several) a list of the codes."""
        if self.json_mode:
            self.json(
                explanation_json(entries[0])
                if len(entries) == 1
                else {"codes": [explanation_json(e) for e in entries]}
            )
            return
        if len(entries) == 1:
            self._print_out(explanation_text(entries[0]))
            return
        from rich.text import Text

        text = Text()
        for e in entries:
            text.append(f"{e.code}", style="bold")
            text.append(f"  {e.kind:<7} {e.title}\n")
        text.append("\n'adcli explain CODE' (or the kind, say 'adcli explain shape') tells more.")
        self._print_out(text, soft_wrap=True)

    def raw(self, text: str) -> None:
        """Text exactly as given on stdout (DOT, SVG): no wrapping, no styling."""
        sys.stdout.write(text)
        sys.stdout.flush()

    def line(self, text: str) -> None:
        """A plain line of text on stdout."""
        if self._print_plain_out(lambda: [text]):
            return
        from rich.text import Text

        self._print_out(Text(text), soft_wrap=True)

    # -- what the commands return ------------------------------------------------------------
    def eval_result(self, result: Any) -> None:
        """``adcli eval``: one JSON object, or the value, derivatives, graph, checks, costs."""
        value = result.value
        if self.json_mode:
            obj = value_json(value)
            obj["outputs"] = result.outputs
            if result.derivatives is not None:
                obj["grads"] = {
                    n: array_json(ds[0].numpy()) for n, ds in result.derivatives.items()
                }
                obj["derivatives"] = {
                    n: [array_json(d.numpy()) for d in ds] for n, ds in result.derivatives.items()
                }
            if result.graph:
                obj["graph"] = graph_json(
                    value if is_node(value) else getattr(value, "grad_fn", None)
                )
            if result.checks is not None:
                obj["check"] = result.checks
            if result.symbolic is not None:
                obj["symbolic"] = result.symbolic
            if result.latex is not None:
                obj["latex"] = result.latex
            if result.costs is not None:
                obj["cost"] = result.costs
            self.json(obj)
            return
        if value is not None or result.displays_none:
            self.value(value)
        if result.derivatives is not None:
            self.derivatives(result.derivatives)
        if result.graph and not is_node(value):  # a grad_fn value is already shown as its chain
            self.graph(value)
        if result.symbolic is not None:
            self.formulas(result.symbolic)
        if result.latex is not None:
            self.formulas(result.latex, latex=True)
        if result.checks is not None:
            self.derivative_checks(result.checks)
        if result.costs is not None:
            self.derivative_costs(result.costs)

    def file_header(self, name: str) -> None:
        """Before a file's output when ``run`` has several: ``==> a.ad <==``."""
        if not self.json_mode and not self.quiet:
            self.line(f"==> {printable(name)} <==")

    def file_result(self, result: Any, annotate: bool = False) -> None:
        """The end of one file of ``run``: its JSON line, and its GitHub annotation."""
        if self.json_mode:
            self.json(
                {
                    "file": result.name,
                    "ok": result.ok,
                    "outputs": result.outputs,
                    "error": result.error,
                }
            )
        if annotate and result.error is not None:
            self.annotation(result.error)

    def annotation(self, info: dict[str, Any]) -> None:
        """A GitHub Actions annotation: on stdout, or on stderr where stdout is JSON."""
        line = github_annotation(info) + "\n"
        if self.json_mode:
            self.write_err(line)
        else:
            self.write_out(line)

    def run_summary(self, run: Any) -> None:
        """``3 files: 2 passed, 1 failed in 0.41 s`` (human output of several files)."""
        if self.json_mode:
            return
        count = len(run.files) + len(run.not_run)
        parts = [f"{run.passed} passed", f"{run.failed} failed"]
        if run.not_run:
            parts.append(f"{len(run.not_run)} not run")
        self.line(f"{count} files: {', '.join(parts)} in {run.seconds:.2f} s")

    def check_result(self, result: Any, annotate: bool = False) -> None:
        """``adcli check`` of one file: its JSON line, or each error with its caret, or ok."""
        if self.json_mode:
            self.json(
                {
                    "file": result.name,
                    "ok": not result.errors,
                    "errors": [failure_json(e) for e in result.errors],
                }
            )
        else:
            for err in result.errors:
                self.report(err, result.source_lines)
            if not result.errors:
                self.line(f"{printable(result.name)}: ok")
        if annotate:
            for err in result.errors:
                self.annotation(failure_json(err))

    # -- failures -----------------------------------------------------------------------------
    def error(self, err: AdcliError, source_lines: SourceLines | None = None) -> None:
        """Report an error on stderr (human mode; JSON mode puts it in the command's object)."""
        if self.debug:
            self._traceback(err)
        if not self.json_mode:
            colour = bool(self.err.is_terminal and self.err.color_system is not None)
            self._print_err(
                error_text(err, source_lines, explain=True, highlight=colour), soft_wrap=True
            )

    def report(self, exc: BaseException, source_lines: SourceLines | None = None) -> None:
        """Report any failure: an AdcliError as such, anything else as an internal error."""
        if isinstance(exc, AdcliError):
            self.error(exc, source_lines)
        else:
            self.internal_error(exc)

    def fail(self, exc: BaseException, source_lines: SourceLines | None = None) -> None:
        """Report a failure that ends what was asked: ``{"error": ...}`` in JSON mode."""
        self.report(exc, source_lines)
        if self.json_mode:
            self.json({"error": failure_json(exc)})

    def usage(self, text: str) -> None:
        """A usage message on stderr (the command line was wrong)."""
        from rich.text import Text

        self._print_err(Text(text), soft_wrap=True)

    def internal_error(self, exc: BaseException) -> None:
        """Report an exception that is a bug in adcli rather than the user's doing."""
        from rich.text import Text

        if self.debug:
            self._traceback(exc)
        if not self.json_mode:
            info = internal_error_json(exc)
            text = Text("error:", style="bold red")
            text.append(f" {info['message']}\n")
            text.append("hint:", style="bold cyan")
            text.append(f" {info['hint']}")
            self._print_err(text, soft_wrap=True)

    def _traceback(self, exc: BaseException) -> None:
        import traceback

        self.write_err("".join(traceback.format_exception(exc)))

    # -- JSON -----------------------------------------------------------------------------------
    def json(self, obj: object) -> None:
        """Write one JSON object as one line on stdout."""
        self.write_out(dumps(obj) + "\n")
