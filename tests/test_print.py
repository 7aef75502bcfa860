"""``print`` writes PyTorch's format; builtins read as their signatures (issue 10, item 6).

Value-to-text lives in one place: the engine's :mod:`adcli.engine.format` for
tensors, :mod:`adcli.lang.text` for the language's values; the command line's
display and ``print`` both use them.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from adcli import engine as E
from adcli.cli.app import app
from adcli.lang.interpreter import Session


def printed(source: str, **options) -> list[str]:
    outputs = []
    Session(**options).run(source, "<test>", outputs.append)
    return [o.text for o in outputs if o.kind == "print"]


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("print(tensor([1., 2.], requires_grad=true))", "tensor([1., 2.], requires_grad=True)"),
        (
            "x = tensor(25., requires_grad=true); print(sqrt(x))",
            "tensor(5., grad_fn=<SqrtBackward>)",
        ),
        ("print(tensor([0.5, 0.25]))", "tensor([0.5000, 0.2500])"),
        ('print(tensor([1.5], dtype="float64"))', "tensor([1.5000], dtype=torch.float64)"),
        ("print(none)", "None"),
        ("print(true, false)", "True False"),
        ('print("x is", 2, 2.5)', "x is 2 2.5"),
        ("print(ones(2, 2))", "tensor([[1., 1.],\n        [1., 1.]])"),
        ("print(sum)", "<builtin sum(input, dim=None, keepdim=False)>"),
        ("f(v) = v\nprint(f)", "<function f(v)>"),
    ],
)
def test_print_writes_pytorchs_format(source, text):
    assert printed(source) == [text]


def test_the_default_dtype_is_the_sessions():
    assert printed("print(tensor([1.5]))", dtype="float64") == ["tensor([1.5000])"]
    got = printed('print(tensor([1.5], dtype="float32"))', dtype="float64")
    assert got == ["tensor([1.5000], dtype=torch.float32)"]


def test_repr_of_a_tensor_is_the_same_text():
    x = E.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(E.sqrt(E.sum(x))) == "tensor(1.7321, grad_fn=<SqrtBackward>)"


def run(*args):
    return CliRunner().invoke(app, list(args))


def test_a_builtin_displays_as_its_signature():
    result = run("eval", "sum")
    assert result.exit_code == 0
    assert result.stdout.strip() == "<builtin sum(input, dim=None, keepdim=False)>"
    got = json.loads(run("eval", "sum", "--json").stdout)
    assert (got["type"], got["value"]) == (
        "builtin",
        "<builtin sum(input, dim=None, keepdim=False)>",
    )


def test_no_python_repr_leaks_for_any_builtin():
    from adcli.lang.builtins import BUILTINS

    for name in BUILTINS:
        shown = json.loads(run("eval", name, "--json").stdout)["value"]
        assert shown.startswith(f"<builtin {name}(") and "0x" not in shown, shown


def test_a_user_function_displays_as_itself():
    got = json.loads(run("eval", "f(x) = x^2; f", "--json").stdout)
    assert (got["type"], got["value"]) == ("function", "<function f(x)>")


@pytest.mark.parametrize("seed", ["-5", "-1"])
def test_a_negative_seed_is_a_usage_error(seed):
    result = run("eval", "1", "--seed", seed)
    assert result.exit_code == 2
    assert "--seed" in result.output and "Traceback" not in result.output


def test_a_negative_seed_in_a_program_is_a_value_error():
    from adcli.errors import AdcliError

    with pytest.raises(AdcliError) as info:
        Session().run("seed(-5)")
    assert info.value.kind == "value"


def test_a_negative_seed_for_a_session_is_a_value_error():
    from adcli.errors import AdcliError

    with pytest.raises(AdcliError) as info:
        Session(seed=-5)
    assert info.value.kind == "value"
