"""What each kind of error means and how to fix it: the text behind ``adcli explain``.

One entry per error kind, keyed by its stable code (see
:data:`adcli.errors.KINDS`). This module is data; :mod:`adcli.cli.render` shows it.
Each example is a program that really fails with that code (the tests run them).
"""

from __future__ import annotations

from adcli.errors import KINDS
from adcli.records import record


@record(frozen=True)
class Explanation:
    """The text for one error code."""

    code: str
    kind: str
    title: str
    meaning: str
    fix: str
    example: str  # a program that fails with this code
    fixed: str  # the same program, mended


EXPLANATIONS: dict[str, Explanation] = {
    e.code: e
    for e in (
        Explanation(
            code="E001",
            kind="syntax",
            title="the program does not parse",
            meaning=(
                "The text is not a program of the .ad language: a bracket is never closed "
                "or closed by the wrong one, an operator has nothing on one side, two "
                "expressions sit side by side with no operator or ';' between them, or a "
                "character is not part of the language."
            ),
            fix=(
                "Look at the caret: the problem is there or just before it. Close every "
                "'(' and '['; end statements with a newline or ';'; write strings in double "
                "quotes; use ^ or ** for powers. `adcli check FILE` finds syntax errors "
                "without running anything."
            ),
            example="x = 1\ny = (x + 1",
            fixed="x = 1\ny = (x + 1)",
        ),
        Explanation(
            code="E002",
            kind="name",
            title="an unknown name, attribute or method",
            meaning=(
                "A name is used before it is bound, or is misspelt; or a tensor has no "
                "such attribute or method. A function body sees its parameters, its locals, "
                "the functions defined before it, the builtins, and the script's variables "
                "as they are when it is called."
            ),
            fix=(
                "Bind the name first (x = ...), check the spelling (the message suggests a "
                "close name), or define a function before the one that calls it. Attributes "
                "and methods are listed in `man adcli-lang`."
            ),
            example="x = ones(3)\ny = x * scale",
            fixed="x = ones(3)\nscale = 2\ny = x * scale",
        ),
        Explanation(
            code="E003",
            kind="type",
            title="a value of the wrong kind, or a wrong call",
            meaning=(
                "A function or method got too many or too few arguments or an unknown "
                "keyword, or a value of the wrong kind: a string where a number belongs, a "
                "number where a tensor is needed, an index that is not a whole number."
            ),
            fix=(
                "Check the call against the builtin's signature in `man adcli-lang`: "
                "positional arguments first, then keywords (name=value)."
            ),
            example="y = sum(ones(3), axis=0)",
            fixed="y = sum(ones(3), dim=0)",
        ),
        Explanation(
            code="E004",
            kind="shape",
            title="shapes that do not fit together",
            meaning=(
                "An operation got tensors whose shapes do not broadcast (sizes must match "
                "or be 1, aligned from the right), a matrix product whose inner sizes "
                "differ, an index out of range, a reshape to a different number of "
                "elements, or a backward gradient of the wrong shape."
            ),
            fix=(
                "Print the shapes with shape(x). Make sizes agree with reshape(), "
                "transpose() or .T, or reduce with sum(x, dim=...) first; a gradient "
                "passed to backward() must have the output's shape."
            ),
            example="y = ones(2) + ones(3)",
            fixed="y = ones(2) + ones(2)",
        ),
        Explanation(
            code="E005",
            kind="device",
            title="a device that is missing, or tensors on different devices",
            meaning=(
                "A tensor was asked for on a device this machine cannot give (cuda "
                "without a GPU or without CuPy), or one operation mixed tensors on "
                "different devices."
            ),
            fix=(
                "Use --device cpu (the default), or install CuPy for your CUDA version "
                "(pip install 'adcli[cuda]'). Move tensors to one device with .to(device), "
                ".cuda() or .cpu() before combining them."
            ),
            example='y = ones(2).to("cuda:99")',
            fixed='y = ones(2).to("cpu")',
        ),
        Explanation(
            code="E006",
            kind="assert",
            title="an assert did not hold",
            meaning=(
                "assert expr found expr false, or some element of a tensor false. The "
                "script stops there and `adcli run` exits with status 1."
            ),
            fix=(
                "Check the values involved (print them). To compare floating point "
                "results use allclose(a, b, rtol=, atol=) rather than ==. "
                'assert expr, "message" says what went wrong in your own words.'
            ),
            example="assert 0.1 + 0.2 == 0.3",
            fixed="assert allclose(0.1 + 0.2, 0.3)",
        ),
        Explanation(
            code="E007",
            kind="value",
            title="a value the operation cannot use",
            meaning=(
                "The arguments have the right kinds and shapes but not usable values. The "
                "common ones, as in PyTorch: backward() of a non-scalar without a gradient "
                "('grad can be implicitly created only for scalar outputs'); a second "
                "backward through a graph already freed; grad() or backward() of a tensor that "
                "does not require grad (often a gradient computed without "
                "create_graph=true); item() of a tensor with more than one element; an import "
                "that is not a .ad file or does not exist; and, in anomaly mode "
                "(--detect-anomaly or anomaly(true)), an operation that made NaN or Inf."
            ),
            fix=(
                "Non-scalar output: sum() or mean() it first, or pass a gradient of its "
                "shape, y.backward(ones_like(y)). Backward twice: pass retain_graph=true to "
                "the first backward or grad. Differentiating a gradient: pass "
                "create_graph=true where it is computed. NaN or "
                "Inf: the caret points at the operation that first made one; check its "
                "inputs (sqrt and log of 0 or negatives, division by 0)."
            ),
            example="x = ones(3, requires_grad=true)\ny = x * 2\ny.backward()",
            fixed="x = ones(3, requires_grad=true)\ny = x * 2\nsum(y).backward()",
        ),
        Explanation(
            code="E008",
            kind="limit",
            title="a limit on size, depth, order or time was reached",
            meaning=(
                "The program asked for more than a session allows: a tensor with too many "
                "elements or bytes, too many bytes held in variables, expressions or "
                "brackets nested too deeply, function calls nested too deeply or too "
                "many of them in one statement, too high a derivative order, too large a "
                "script, or more time than --timeout gives. Limits keep a typo such as "
                "zeros(100000, 100000) from taking the machine down."
            ),
            fix=(
                "Make the computation smaller, or raise the limit that was reached with "
                "its global option: --max-elements, --max-bytes, --max-depth, "
                "--max-call-depth, --max-calls, --max-order, --max-source-bytes, --timeout "
                "(the hint names the one)."
            ),
            example="x = zeros(100000, 100000)",
            fixed="x = zeros(1000, 1000)",
        ),
    )
}

assert set(EXPLANATIONS) == set(KINDS.values()), "one explanation per error code"


def lookup(key: str) -> Explanation | None:
    """The explanation for a code (``E004``, ``e004``, ``4``) or a kind name (``shape``)."""
    key = key.strip()
    if key.lower() in KINDS:
        return EXPLANATIONS[KINDS[key.lower()]]
    code = key.upper()
    if code.isdigit() and len(code) <= 3:
        code = f"E{int(code):03d}"
    return EXPLANATIONS.get(code)
