"""adcli.lang.check.check_source: what can be found wrong in a program without running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from adcli.errors import KINDS, AdcliError
from adcli.lang.check import check_source

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "scripts" / "examples").glob("*.ad"))
FIRST_TASTE = Path(__file__).parent / "programs" / "first_taste.ad"


def problems(source: str, filename: str = "<test>") -> list[tuple[str, str, int, int]]:
    """(kind, message, line, column) of every problem found."""
    return [(e.kind, e.message, e.span.line, e.span.column) for e in check_source(source, filename)]


def only(source: str) -> tuple[str, str, int, int]:
    found = problems(source)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------------------- clean code
def test_the_first_taste_is_clean():
    assert check_source(FIRST_TASTE.read_text(), str(FIRST_TASTE)) == []


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_script_is_clean(example):
    assert check_source(example.read_text(), str(example)) == []


def test_there_are_examples_to_check():
    assert len(EXAMPLES) >= 3


def test_a_clean_program_using_every_construct():
    source = (
        "# a comment\n"
        'import_free = "no imports here"\n'
        "x = tensor([1., 2.], requires_grad=true); y = x^2\n"
        "f(a, b) = a * b + sqrt(a)\n"
        "g(v) = f(v, v)\n"
        "z = g(x)[0:1]\n"
        "sum(z).backward(retain_graph=true)\n"
        "w = x.grad.T.shape\n"
        "out = sqrt(sum(x^2)).grad_fn.next_functions[0].name\n"
        'assert allclose(x.grad, x.grad, atol=1e-6), "same"\n'
        'print(f(1, b=2), z.sum(dim=0).item(), x.to("cpu").mean())\n'
    )
    assert check_source(source, "<test>") == []


def test_check_does_not_run_the_program():
    # Each of these fails when run, but nothing here is wrong statically.
    assert problems("assert false\nzeros(-1)\nx = ones(2)[9]\nmm(ones(2, 3), ones(2, 3))") == []


# -------------------------------------------------------------------------------- names
def test_unknown_names_are_found_with_a_suggestion():
    assert only("y = sqr(2)") == ("name", "unknown name 'sqr'; did you mean 'sqrt'?", 1, 5)
    assert only("alpha = 1\nbeta = alpah") == (
        "name",
        "unknown name 'alpah'; did you mean 'alpha'?",
        2,
        8,
    )
    assert only("zzzqqq") == ("name", "unknown name 'zzzqqq'", 1, 1)


def test_use_before_definition():
    assert only("x = 1\nx = x + y\ny = 2") == ("name", "'y' is used before it is defined", 2, 9)
    # within one statement too: the right side is checked before the name is bound
    assert only("n = n + 1") == ("name", "'n' is used before it is defined", 1, 5)


def test_a_function_body_sees_parameters_earlier_functions_and_the_files_variables():
    assert problems("f(a) = a\ng(b) = f(b) * b") == []
    # The session's variables are read at call time: any name the file binds will do.
    assert problems("a = 1\nf(x) = x + a") == []
    assert problems("f(x) = x + a\na = 1\nf(2)") == []
    kind, message, line, column = only("f(x) = x + nope\na = 1")
    assert (kind, line, column) == ("name", 1, 12)
    assert message.startswith("unknown name 'nope' in a function body")
    assert only("g(v) = h(v)\nh(v) = v") == ("name", "unknown name 'h' in the body of 'g'", 1, 8)


def test_a_block_body_calls_only_functions_defined_before_it():
    # As run says at the call: a later function is not there when the body runs.
    assert only("f(v) {\n  return g(v)\n}\ng(v) = v\nf(1)") == (
        "name",
        "unknown function 'g'",
        2,
        10,
    )
    assert problems("g(v) = v\nf(v) {\n  return g(v)\n}\nf(1)") == []
    assert problems("f(v) {\n  s = sum\n  return s(v)\n}\nf(ones(2))") == []


def test_recursion():
    assert only("f(x) = x + f(x - 1)") == (
        "name",
        "'f' cannot call itself: recursion is not allowed",
        1,
        12,
    )


def test_redefining_a_builtin():
    assert only("sqrt(v) = v") == ("name", "cannot redefine the builtin 'sqrt'", 1, 1)


# -------------------------------------------------------------------------------- calls
@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("sqrt(1, 2)", "sqrt() takes 1 argument, but 2 were given", 1),
        ("y = sum()", "sum() takes 1 to 3 arguments, but 0 were given", 5),
        ("zero_grad()", "zero_grad() takes at least 1 argument, but 0 were given", 1),
        ("full([2])", "full() takes 2 arguments, but 1 was given", 1),
        ("sum(ones(2), dimm=0)", "sum() got an unexpected keyword argument 'dimm'", 1),
        (
            "ones(2, requires_gard=true)",
            "ones() got an unexpected keyword argument 'requires_gard'",
            1,
        ),
        ("sum(ones(2), input=ones(2))", "sum() got multiple values for argument 'input'", 1),
    ],
)
def test_builtin_arity_and_keywords(source, message, column):
    assert only(source) == ("type", message, 1, column)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("f(1)", "f() takes 2 arguments, but 1 was given"),
        ("f(1, 2, 3)", "f() takes 2 arguments, but 3 were given"),
        ("f(1, c=2)", "f() got an unexpected keyword argument 'c'"),
        ("f(1, a=2)", "f() got multiple values for argument 'a'"),
    ],
)
def test_user_function_arity_and_keywords(call, message):
    assert only(f"f(a, b) = a + b\n{call}") == ("type", message, 2, 1)


def test_user_functions_take_their_parameters_as_keywords():
    assert problems("f(a, b) = a + b\nf(1, b=2)\nf(b=1, a=2)") == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("ones(2).sum(dimm=0)", ".sum() got an unexpected keyword argument 'dimm'"),
        ("ones(2).sum(1, 2, 3)", ".sum() takes 0 to 2 arguments, but 3 were given"),
        ("ones(2).to()", ".to() takes 1 argument, but 0 were given"),
        ("ones(2).item(1)", ".item() takes 0 arguments, but 1 was given"),
    ],
)
def test_method_arity_and_keywords(source, message):
    assert only(source) == ("type", message, 1, 1)


# ----------------------------------------------------------------- attributes and methods
def test_unknown_attributes_and_methods():
    assert only("x = ones(2)\nx.gard") == (
        "name",
        "unknown attribute 'gard'; did you mean 'grad'?",
        2,
        3,
    )
    assert only("x = ones(2)\ny = x.sums()") == (
        "name",
        "unknown method '.sums()'; did you mean 'sum'?",
        2,
        7,
    )


@pytest.mark.parametrize(
    "attribute",
    ["data", "grad", "grad_fn", "requires_grad", "is_leaf", "shape", "dtype", "device", "T"],
)
def test_every_spec_attribute_is_known(attribute):
    assert problems(f"x = ones(2)\nx.{attribute}") == []


@pytest.mark.parametrize(
    "call",
    [
        "backward()",
        "zero_()",
        "detach()",
        "cuda()",
        "cpu()",
        'to("cpu")',
        "sum()",
        "mean()",
        "item()",
    ],
)
def test_every_spec_method_is_known(call):
    assert problems(f"x = ones(2)\nx.{call}") == []


# ------------------------------------------------------------------------------ many at once
def test_every_problem_is_reported_in_order():
    source = "a = 1\nb = sqr(a)\nc = ones(2).gard\nd = sum()\nf(x) = f(x)\n"
    found = problems(source)
    assert [(kind, line) for kind, _, line, _ in found] == [
        ("name", 2),
        ("name", 3),
        ("type", 4),
        ("name", 5),
    ]
    for err in check_source(source, "<test>"):
        assert isinstance(err, AdcliError) and err.kind in KINDS
        assert err.span.file == "<test>"


def test_a_syntax_error_is_the_only_problem_reported():
    assert problems("x = sqr(1)\ny = (1 +") == [("syntax", "'(' was never closed", 2, 5)]


# ------------------------------------------------------------------------------------ imports
def write(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def check_file(path: Path) -> list[AdcliError]:
    return check_source(path.read_text(), str(path))


def test_imported_definitions_are_known(tmp_path):
    write(
        tmp_path,
        {
            "lib/helpers.ad": "k = 3\nsq(v) = v^2\n",
            "main.ad": 'import "lib/helpers.ad"\ny = sq(k)\n',
        },
    )
    assert check_file(tmp_path / "main.ad") == []


def test_imported_functions_are_checked_for_arity(tmp_path):
    write(tmp_path, {"lib.ad": "sq(v) = v^2\n", "main.ad": 'import "lib.ad"\ny = sq(1, 2)\n'})
    [err] = check_file(tmp_path / "main.ad")
    assert (err.kind, err.message) == ("type", "sq() takes 1 argument, but 2 were given")
    assert (err.span.line, err.span.column) == (2, 5)


def test_an_error_inside_an_imported_file_is_reported_in_that_file(tmp_path, monkeypatch):
    write(tmp_path, {"sub/lib.ad": "x = 1\nz = sqr(x)\n", "sub/main.ad": 'import "lib.ad"\n'})
    monkeypatch.chdir(tmp_path)
    [err] = check_file(Path("sub/main.ad"))
    assert (err.kind, err.message) == ("name", "unknown name 'sqr'; did you mean 'sqrt'?")
    # Named as the interpreter names it (relative to the working directory), so the
    # caret can be drawn from the file.
    assert err.span.file == str(Path("sub") / "lib.ad")
    assert (err.span.line, err.span.column) == (2, 5)


def test_a_syntax_error_inside_an_imported_file(tmp_path):
    write(tmp_path, {"syn.ad": "x = (1 +\n", "main.ad": 'a = 1\nimport "syn.ad"\n'})
    [err] = check_file(tmp_path / "main.ad")
    assert (err.kind, err.message) == ("syntax", "'(' was never closed")
    assert Path(err.span.file).name == "syn.ad"


def test_a_file_imported_twice_is_checked_once(tmp_path):
    write(
        tmp_path,
        {
            "shared.ad": "z = sqr(1)\n",
            "left.ad": 'import "shared.ad"\n',
            "right.ad": 'import "shared.ad"\n',
            "top.ad": 'import "left.ad"\nimport "right.ad"\nimport "shared.ad"\n',
        },
    )
    errors = check_file(tmp_path / "top.ad")
    assert [Path(e.span.file).name for e in errors] == ["shared.ad"]


def test_an_import_cycle_is_reported(tmp_path):
    write(tmp_path, {"a.ad": 'import "b.ad"\n', "b.ad": 'x = 1\nimport "a.ad"\n'})
    [err] = check_file(tmp_path / "a.ad")
    assert (err.kind, err.message) == ("value", "import cycle: a.ad -> b.ad -> a.ad")
    assert Path(err.span.file).name == "b.ad"
    assert (err.span.line, err.span.column) == (2, 8)


def test_a_script_importing_itself_is_a_cycle(tmp_path):
    write(tmp_path, {"me.ad": 'import "me.ad"\n'})
    [err] = check_file(tmp_path / "me.ad")
    assert err.message == "import cycle: me.ad -> me.ad"


def test_a_missing_or_non_ad_import(tmp_path):
    write(tmp_path, {"main.ad": 'import "gone.ad"\nimport "notes.txt"\n', "notes.txt": "hi\n"})
    found = [
        (e.kind, e.message.split(":")[0], e.span.line, e.span.column)
        for e in check_file(tmp_path / "main.ad")
    ]
    assert found == [
        ("value", "cannot import 'gone.ad'", 1, 8),
        ("value", "import takes only .ad files, not 'notes.txt'", 2, 8),
    ]
