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

from pathlib import Path

from adcli.errors import AdcliError
from adcli.lang import library as _library  # noqa: F401 - registers the builtins
from adcli.lang import seeing as _seeing  # noqa: F401 - registers plot and symbolic
from adcli.lang import sources
from adcli.lang.parser import parse
from adcli.lang.scope import Checker

__all__ = ["Checker", "check_source"]


def check_source(
    source: str, filename: str, base_dir=None, lines: dict | None = None, limits=None
) -> list[AdcliError]:
    """Every problem found in ``source`` (an empty list when it looks fine).

    ``limits`` is a :class:`~adcli.lang.limits.Limits` (default: the defaults). With
    ``lines`` (a dict), the source line under each error's caret is stored there as
    ``lines[(file, line)]``, for imported files too, so that drawing a caret never
    reads a file again.
    """
    options = {}
    if limits is not None:
        options = {"max_depth": limits.max_depth, "max_source_bytes": limits.max_source_bytes}
    checker = Checker(limits, lines)
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
