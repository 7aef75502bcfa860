"""Static checks of a program without running it (``adcli check``).

Parses under the session's limits (so ``--max-depth`` and
``--max-source-bytes`` refuse here what ``run`` refuses) and applies the rules
of :mod:`adcli.lang.scope`, which the interpreter shares: syntax errors,
unknown names (with a suggestion), use before definition, ``break`` outside a
loop, ``return`` outside a function, calls with the wrong number of
arguments or unknown keywords, unknown attributes and methods, recursion, and
the same in every imported file (each once; cycles are an error).
"""

from __future__ import annotations

from adcli.errors import AdcliError
from adcli.lang import library as _library  # noqa: F401 - registers the builtins
from adcli.lang import seeing as _seeing  # noqa: F401 - registers plot and symbolic
from adcli.lang.scope import Checker, check_program

__all__ = ["Checker", "check_source"]


def check_source(source: str, filename: str, base_dir=None, limits=None) -> list[AdcliError]:
    """Every problem found in ``source`` (an empty list when it looks fine).

    ``limits`` is a :class:`~adcli.lang.values.Limits` (default: the defaults).
    """
    from adcli.lang.parser import parse

    options = {}
    if limits is not None:
        options = {"max_depth": limits.max_depth, "max_source_bytes": limits.max_source_bytes}
    try:
        program = parse(source, filename, **options)
    except AdcliError as err:
        return [err]
    return check_program(program, filename, base_dir, limits)
