"""The language's words for what the engine reports.

The engine raises :class:`~adcli.errors.AdcliError` in its own terms and puts
the facts in ``details`` (why a gradient cannot be computed, which pass freed
a graph, the value it did not expect). Here those facts become the message
and hint a user of the language reads: its keywords (``requires_grad=true``,
``create_graph=true``, ``retain_graph=true``) and its names for kinds of
values (:func:`kind_of`). Flags of the command line are the CLI's to add.
"""

from __future__ import annotations

from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError


def kind_of(x) -> str:
    """What ``x`` is, in the words of the language rather than Python's type names."""
    if x is None:
        return "none"
    if isinstance(x, bool):
        return "a bool"
    if isinstance(x, (int, float)):
        return "a number"
    if isinstance(x, Tensor):
        return "a tensor"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, tuple):
        return "a shape"
    if isinstance(x, slice):
        return "a slice"
    if callable(x) or hasattr(x, "next_functions"):
        return "a function" if callable(x) else "a grad_fn"
    return f"a {type(x).__name__}"


#: the language's name of each pass that can free a graph (the tag library.py passes)
_PASSES = {"backward": "backward", "grad": "grad"}


def worded(err: AdcliError) -> AdcliError:
    """Fill in ``err``'s message and hint in the language's words (in place; returns it).

    A hint already given is kept; an error without engine details is left alone.
    """
    d = err.details
    if not d:
        return err
    template = d.get("message")
    if template is not None and "got" in d:
        err.message = template.format(got=kind_of(d["got"]))
    if err.hint is not None:
        return err
    reason = d.get("reason")
    if reason == "does_not_require_grad":
        err.hint = _no_graph_hint(d.get("origin"))
    elif reason == "input_does_not_require_grad":
        err.hint = "create it with requires_grad=true"
    elif reason == "graph_freed":
        err.hint = _freed_hint(d.get("freed_by"))
    elif d.get("unavailable_device"):
        err.hint = 'run on a machine with a GPU, or use device="cpu"'
    return err


def _no_graph_hint(origin) -> str:
    if origin in _PASSES:
        return (
            f"it is a gradient computed by {origin}() without create_graph=true, so it has "
            f"no graph to differentiate: pass create_graph=true to that {origin}()"
        )
    return (
        "differentiate a value computed (outside no_grad) from a tensor made with "
        "requires_grad=true; a gradient to differentiate again needs create_graph=true "
        "where it is computed"
    )


def _freed_hint(tag) -> str:
    said = ""
    if isinstance(tag, tuple) and len(tag) == 2:
        kind, where = tag
        said = f" (it was freed by the {_PASSES.get(kind, kind)} at {where})"
    elif tag is not None:
        said = f" (it was freed at {tag})"
    return (
        "pass retain_graph=true to the first backward or grad that goes through the graph "
        "if you need to go through it again" + said
    )
