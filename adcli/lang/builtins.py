"""The language's builtin functions, attributes and methods: one table each.

Each builtin declares its signature (positional parameters, how many are
required, whether more may follow, which keywords it takes) so that calls are
checked the same way at run time and by :mod:`adcli.lang.check` without running.
Implementations take the running session first; they never print (``print``
hands its text to the session's ``emit``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import field

from adcli.records import record

CREATION_KEYWORDS = frozenset({"requires_grad", "dtype", "device"})


@record(frozen=True, slots=True)
class Builtin:
    """A builtin function of the language: its implementation and its signature."""

    name: str
    fn: Callable
    params: tuple = ()  # positional parameter names (also accepted as keywords)
    required: int = 0  # how many positional arguments must be given
    variadic: bool = False  # more positional arguments may follow
    keywords: frozenset = field(default_factory=frozenset)  # keyword-only names
    lazy: bool = False  # receives its arguments unevaluated (no_grad)
    doc: str = ""
    #: a program may define a function of this name (the v2 names: v1 programs keep working)
    redefinable: bool = False

    def arity_text(self) -> str:
        if self.variadic:
            return f"at least {self.required} argument{'s' * (self.required != 1)}"
        if self.required == len(self.params):
            return f"{self.required} argument{'s' * (self.required != 1)}"
        return f"{self.required} to {len(self.params)} arguments"

    def check_call(self, n_args: int, keyword_names) -> str | None:
        """Why a call with ``n_args`` positionals and these keywords is wrong, or None."""
        if (
            not keyword_names
            and self.required <= n_args
            and (self.variadic or n_args <= len(self.params))
        ):
            return None  # the common case, checked without building anything
        # a required parameter may be given by keyword (softmax(x, dim=1))
        named = sum(1 for kw in keyword_names if kw in self.params[n_args : self.required])
        if n_args + named < self.required or (not self.variadic and n_args > len(self.params)):
            return arity_message(f"{self.name}()", self.arity_text(), None, n_args)
        allowed = self.keywords | set(self.params[n_args:])
        for kw in keyword_names:
            if kw in self.params[:n_args]:
                return f"{self.name}() got multiple values for argument '{kw}'"
            if kw not in allowed:
                return f"{self.name}() got an unexpected keyword argument '{kw}'"
        return None


BUILTINS: dict[str, Builtin] = {}


def builtin(name, params=(), required=None, variadic=False, keywords=(), lazy=False, doc=""):
    """Register the decorated function as the builtin ``name``."""

    def register(fn):
        BUILTINS[name] = Builtin(
            name,
            fn,
            tuple(params),
            len(params) if required is None else required,
            variadic,
            frozenset(keywords),
            lazy,
            doc,
        )
        return fn

    return register


#: Attributes of tensors (and of grad_fn nodes) a program may read.
TENSOR_ATTRIBUTES = frozenset(
    {
        "data",
        "grad",
        "grad_fn",
        "requires_grad",
        "is_leaf",
        "shape",
        "dtype",
        "device",
        "T",
        "ndim",
    }
)
NODE_ATTRIBUTES = frozenset({"name", "next_functions", "variable"})
ATTRIBUTES = TENSOR_ATTRIBUTES | NODE_ATTRIBUTES

#: Methods of tensors: name -> (required positionals, max positionals or None, keywords).
#: These are the language's own; the engine's public ops that are methods (``.exp()``,
#: ``.sum(dim=)``, ``.view(...)``...) are added from their declarations by
#: :mod:`adcli.lang.library`.
METHODS: dict[str, tuple[int, int | None, frozenset]] = {
    "backward": (0, 1, frozenset({"gradient", "retain_graph", "create_graph", "inputs"})),
    "zero_": (0, 0, frozenset()),
    "detach": (0, 0, frozenset()),
    "cuda": (0, 1, frozenset()),
    "cpu": (0, 0, frozenset()),
    "to": (1, 1, frozenset()),
    "item": (0, 0, frozenset()),
    "requires_grad_": (0, 1, frozenset()),
    "retain_grad": (0, 0, frozenset()),
    # casts and linear algebra (opsB)
    "long": (0, 0, frozenset()),
    "bool": (0, 0, frozenset()),
    "float": (0, 0, frozenset()),
    "double": (0, 0, frozenset()),
    "det": (0, 0, frozenset()),
    "inverse": (0, 0, frozenset()),
}


def check_method_call(name: str, n_args: int, keyword_names) -> str | None:
    """Why calling method ``name`` so is wrong, or None (shared by run time and check)."""
    spec = METHODS.get(name)
    if spec is None:
        return None
    lo, hi, keywords = spec
    named = sum(1 for kw in keyword_names if kw in keywords)
    if n_args + named < lo or (hi is not None and n_args > hi):
        want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
        return arity_message(f".{name}()", want, want != "1", n_args)
    for kw in keyword_names:
        if kw not in keywords:
            return f".{name}() got an unexpected keyword argument '{kw}'"
    return None


def arity_message(what: str, want: str, plural: bool | None, given: int) -> str:
    """``f() takes 2 arguments, but 1 was given``: the one place this is worded.

    ``want`` is the count as words ("2", "1 to 3", "at least 1"); ``plural``
    says whether "argument" takes an s (None: ``want`` already ends in the word).
    """
    if plural is not None:
        want = f"{want} argument{'s' * plural}"
    return f"{what} takes {want}, but {given} {'was' if given == 1 else 'were'} given"


def protected(name: str) -> bool:
    """Whether defining a function called ``name`` is an error (a v1 builtin's name)."""
    b = BUILTINS.get(name)
    return b is not None and not b.redefinable


def suggestion(name: str, pool) -> str:
    """``"; did you mean 'x'?"`` for the closest name in ``pool``, or ``""``."""
    close = difflib.get_close_matches(name, sorted(pool), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
