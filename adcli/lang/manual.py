"""The man page's list of the engine's public ops, generated from their declarations.

``man/adcli-lang.7`` holds this text between two marker lines;
``scripts/gen_man_ops.py`` rewrites it there, and a test fails when the page
and the registry disagree, so the page cannot fall behind the table.
"""

from __future__ import annotations

from adcli import engine as E

BEGIN = '.\\" BEGIN GENERATED OPS (python scripts/gen_man_ops.py)'
END = '.\\" END GENERATED OPS'

GROUPS = (
    ("elementwise", "Elementwise"),
    ("math", "Products"),
    ("reduction", "Reductions (dim= a dim or a tuple of dims)"),
    ("shape", "Shape and layout"),
    ("loss", "Losses (torch.nn.functional)"),
    ("creation", "Creation like a tensor"),
    ("utility", "Tensor utilities"),
)


def _param_text(p) -> str:
    if p.variadic:
        return f"*\\fI{p.name}\\fR"
    if p.default is not E.ops.REQUIRED:
        return f"{p.name}={p.default!r}".replace("\\", "\\\\").replace("-", "\\-")
    return f"\\fI{p.name}\\fR"


def op_line(public) -> str:
    """One line of the page: the call with its parameters, and where it is also a method."""
    spec = public.api
    params = ", ".join(_param_text(p) for p in spec.params)
    call = f"\\fB{spec.name}\\fR({params})" if spec.function else f"\\fI.\\fB{spec.name}\\fR()"
    notes = []
    if spec.function and spec.method_name:
        notes.append(f"also \\fIx\\fB.{spec.method_name}()\\fR")
    if not spec.function:
        notes.append("a method")
    if spec.composite:
        notes.append(spec.composite.replace("\\", "\\\\").replace("-", "\\-"))
    return call + (" \\(em " + "; ".join(notes) if notes else "")


def section() -> str:
    lines = [BEGIN]
    for group, title in GROUPS:
        members = [p for n, p in sorted(E.PUBLIC.items()) if p.api.group == group]
        if not members:
            continue
        lines += [".TP", title]
        for i, public in enumerate(members):
            lines.append(op_line(public) + ("" if i == len(members) - 1 else "\n.br"))
    lines.append(END)
    return "\n".join(lines) + "\n"


def page_section(text: str) -> str | None:
    """The generated section as it stands in the page ``text`` (None if the markers are missing)."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < 0:
        return None
    return text[start : end + len(END)] + "\n"


def rewrite(text: str) -> str:
    """``text`` with its generated section replaced by :func:`section`."""
    current = page_section(text)
    if current is None:
        raise ValueError("the page has no generated section markers")
    return text.replace(current, section())
