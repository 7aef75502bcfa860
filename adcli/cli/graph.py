"""``adcli graph``: the grad_fn graph of a program's last value, as a tree, DOT, JSON or SVG.

The nodes come from :func:`adcli.lang.seeing.describe_graph` (op, output
shape and, with ``--values``, value and gradient of each); this module only
formats them. SVG goes through Graphviz's ``dot`` where it is installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any

import typer

from adcli.errors import AdcliError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Format(str, Enum):
    tree = "tree"
    dot = "dot"
    json = "json"
    svg = "svg"


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _brief(array) -> str:
    from adcli.cli.render import brief_array

    return brief_array(array)


def node_label(entry: dict) -> str:
    """``MulBackward [3]`` or ``AccumulateGrad (x) [3]``, with value and grad when present."""
    label = entry["name"]
    if entry.get("variable"):
        label += f" ({entry['variable']})"
    label += " " + _shape_text(entry["shape"])
    if "value" in entry:
        label += f"  value={_brief(entry['value'])}"
    if entry.get("grad") is not None:
        label += f"  grad={_brief(entry['grad'])}"
    return label


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(entries: list[dict]) -> str:
    """Graphviz DOT: a digraph, one node per grad_fn and per leaf, edges node -> its inputs."""
    lines = ["digraph grad_fn {", "  rankdir=BT;", '  node [shape=box, fontname="monospace"];']
    for e in entries:
        attrs = [f"label={_dot_quote(node_label(e))}"]
        if e.get("variable") is not None or e["name"] == "AccumulateGrad":
            attrs.append("style=filled")
            attrs.append('fillcolor="#d8f0d8"')
        lines.append(f"  n{e['id']} [{', '.join(attrs)}];")
    for e in entries:
        for child in e["next"]:
            lines.append(f"  n{e['id']} -> n{child};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(dot_text: str) -> str:
    """DOT through Graphviz's ``dot -Tsvg``; a clear error where Graphviz is missing."""
    import shutil
    import subprocess

    exe = shutil.which("dot")
    if exe is None:
        raise AdcliError(
            "value",
            "--format svg needs Graphviz's 'dot' program, which is not installed",
            hint="install Graphviz (apt install graphviz, brew install graphviz), or use "
            "--format dot and render it elsewhere",
        )
    try:
        done = subprocess.run(
            [exe, "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AdcliError("value", f"Graphviz's dot failed: {exc}") from None
    if done.returncode != 0:
        raise AdcliError("value", f"Graphviz's dot failed: {done.stderr.strip()[:500]}")
    return done.stdout


def to_tree(entries: list[dict]) -> Any:
    """A Rich tree from the root down to the leaves; a shared node is expanded once."""
    from rich.text import Text
    from rich.tree import Tree

    by_id = {e["id"]: e for e in entries}
    root = by_id[0]
    tree = Tree(Text(node_label(root), style="bold cyan"), guide_style="dim")
    expanded: set = set()
    stack = [(root, tree)]
    while stack:
        entry, branch = stack.pop()
        if entry["id"] in expanded:
            branch.label = Text(f"{node_label(entry)} ↑ (shown above)", style="dim")
            continue
        expanded.add(entry["id"])
        children = []
        for child_id in entry["next"]:
            child = by_id[child_id]
            style = "green" if child.get("variable") is not None else "cyan"
            children.append((child, branch.add(Text(node_label(child), style=style))))
        stack.extend(reversed(children))
    return tree


def to_json(entries: list[dict]) -> list[dict]:
    from adcli.cli.render import array_json

    out = []
    for e in entries:
        item = dict(e)
        for key in ("value", "grad"):
            if key in item:
                item[key] = None if item[key] is None else array_json(item[key])
        out.append(item)
    return out


def make_command(open_session: Callable, reporting: Callable) -> Callable:
    """The ``graph`` command, given how the app opens a session and reports its errors."""

    def graph_command(
        ctx: typer.Context,
        program: Annotated[
            str, typer.Argument(metavar="PROGRAM", help="Statements; the last value's graph.")
        ],
        format_: Annotated[Format, typer.Option("--format", help="How to show it.")] = Format.tree,
        values: Annotated[
            bool, typer.Option("--values", help="Also each node's value and gradient.")
        ] = False,
        at: Annotated[
            list[str] | None,
            typer.Option("--at", metavar="NAME=VALUE", help="Bind a variable first. Repeatable."),
        ] = None,
        wrt: Annotated[
            list[str] | None,
            typer.Option("--wrt", metavar="NAME", help="Make NAME a leaf that requires grad."),
        ] = None,
    ) -> None:
        """Show the grad_fn graph of the program's last value."""
        from adcli.cli.render import Renderer

        opts = ctx.obj
        wrt_names = list(dict.fromkeys(wrt or []))
        for name in wrt_names:
            if not _NAME.match(name):
                raise typer.BadParameter(f"{name!r} is not a variable name", param_hint="'--wrt'")
        renderer = Renderer(json_mode=opts.json or format_ is Format.json, debug=opts.debug)
        with reporting(renderer, None):
            session = open_session(opts)
        session.keep_tape_inputs = True
        for text in at or []:
            name, sep, literal = text.partition("=")
            name = name.strip()
            if not sep or not _NAME.match(name):
                raise typer.BadParameter(f"{text!r} is not NAME=VALUE", param_hint="'--at'")
            try:
                session.bind(name, session.make_tensor(literal, requires_grad=name in wrt_names))
            except AdcliError as err:
                raise typer.BadParameter(f"{text}: {err.message}", param_hint="'--at'") from None
        with reporting(renderer, session):
            session.mark_wrt(wrt_names)
            value = session.run(program, "<eval>", emit=_only_warnings(renderer))
            entries = session.describe_graph(value, values=values)
            svg = to_svg(to_dot(entries)) if format_ is Format.svg and entries else None
        if format_ is Format.json or opts.json:
            renderer.json({"graph": to_json(entries)})
            return
        if not entries:
            renderer.line("grad_fn: None (a leaf or a constant)")
            return
        if format_ is Format.dot:
            renderer.raw(to_dot(entries))
        elif format_ is Format.svg:
            renderer.raw(svg or "")
        else:
            renderer.out.print(to_tree(entries))

    return graph_command


def _only_warnings(renderer: Any) -> Callable:
    def emit(output: Any) -> None:
        if output.kind not in ("value", "print"):
            renderer.emit(output)

    return emit
