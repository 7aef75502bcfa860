"""Errors teach: every kind has a stable code, `adcli explain CODE` says what it means and
how to fix it, error displays name the code, and the hints PyTorch users need are there."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from adcli.cli.app import app
from adcli.cli.explain import EXPLANATIONS, lookup
from adcli.errors import KINDS, AdcliError
from adcli.lang.interpreter import Session


def adcli(*args):
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_every_kind_has_a_stable_code_and_an_explanation():
    assert KINDS == {
        "syntax": "E001",
        "name": "E002",
        "type": "E003",
        "shape": "E004",
        "device": "E005",
        "assert": "E006",
        "value": "E007",
        "limit": "E008",
    }
    for kind, code in KINDS.items():
        entry = EXPLANATIONS[code]
        assert (entry.code, entry.kind) == (code, kind)
        assert entry.title and entry.meaning and entry.fix


@pytest.mark.parametrize("code", sorted(EXPLANATIONS))
def test_each_example_fails_with_its_code_and_the_fixed_one_runs(code):
    entry = EXPLANATIONS[code]
    with pytest.raises(AdcliError) as caught:
        Session().run(entry.example)
    assert caught.value.code == code, caught.value.message
    Session().run(entry.fixed)


@pytest.mark.parametrize("key", ["E004", "e004", "4", "004", "shape", "SHAPE", " E004 "])
def test_a_code_is_found_by_code_number_or_kind(key):
    assert lookup(key) is EXPLANATIONS["E004"]


@pytest.mark.parametrize("key", ["E999", "E00", "nope", "", "9" * 5000, "E004x"])
def test_an_unknown_code_is_not_found(key):
    assert lookup(key) is None


@pytest.mark.parametrize("key", ["E004", "shape"])
def test_adcli_explain_shows_meaning_fix_and_example(key):
    code, out, err = adcli("explain", key)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "E004 (shape): shapes that do not fit together"
    assert "What it means" in lines and "How to fix it" in lines
    assert "  y = ones(2) + ones(3)" in lines  # the example, then the fix
    assert "  y = ones(2) + ones(2)" in lines


def test_adcli_explain_json():
    code, out, _ = adcli("explain", "limit", "--json")
    assert code == 0
    assert json.loads(out) == {
        "code": "E008",
        "kind": "limit",
        "title": EXPLANATIONS["E008"].title,
        "meaning": EXPLANATIONS["E008"].meaning,
        "fix": EXPLANATIONS["E008"].fix,
        "example": "x = zeros(100000, 100000)",
        "fixed": "x = zeros(1000, 1000)",
    }


def test_adcli_explain_without_a_code_lists_them_all():
    code, out, _ = adcli("explain")
    assert code == 0
    for entry in EXPLANATIONS.values():
        assert f"{entry.code}  {entry.kind:<7} {entry.title}" in out


def test_an_unknown_code_is_a_usage_error_that_lists_the_codes():
    code, out, err = adcli("explain", "E999")
    assert (code, out) == (2, "")
    assert "unknown error code 'E999'" in err
    assert all(f"{c} ({k})" in err for k, c in KINDS.items())


# ---------------------------------------------------------------- the codes in error displays
def test_an_error_display_keeps_its_first_lines_and_names_the_code():
    code, _, err = adcli("eval", "ones(2) + ones(3)")
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith("<eval>:1:9: error: shapes [2] and [3] do not broadcast")
    assert lines[1:3] == ["ones(2) + ones(3)", "        ^"]
    assert lines[3] == "see: adcli explain E004"


def test_a_hint_line_ends_with_the_code():
    code, _, err = adcli("eval", "zeros(100000, 100000)")
    assert code == 1
    assert err.splitlines()[-1].endswith("--max-bytes (see: adcli explain E008)")


def test_json_errors_carry_the_code():
    code, out, _ = adcli("eval", "foo", "--json")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "E002"


def test_a_command_line_error_without_a_place_shows_no_code():
    code, _, err = adcli("--device", "cuda:999999", "eval", "1")
    assert code == 1
    assert "adcli explain" not in err


# ----------------------------------------------------------- hints PyTorch users need
def test_implicit_gradient_of_a_non_scalar_says_what_to_do():
    code, _, err = adcli("eval", "x = ones(3, requires_grad=true); y = x * 2; y.backward()")
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == "<eval>:1:45: error: grad can be implicitly created only for scalar outputs"
    assert lines[3] == (
        "hint: backward of a tensor of shape [3] needs a gradient of that shape (e.g. ones of "
        "it), or sum()/mean() the output first (see: adcli explain E007)"
    )


def test_backward_twice_names_the_backward_that_freed_the_graph():
    program = "x = ones(3, requires_grad=true); y = sum(x^2); y.backward(); y.backward()"
    code, out, _ = adcli("eval", program, "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["message"].startswith("Trying to backward through the graph a second time")
    assert (error["line"], error["column"]) == (1, program.rindex("y.backward") + 1)
    first = program.index("y.backward") + 1
    assert f"freed by the backward at <eval>:1:{first}" in error["hint"]
    assert "retain_graph=true" in error["hint"]


def test_grad_after_backward_in_a_script_names_the_line_that_freed_it(tmp_path):
    (tmp_path / "t.ad").write_text(
        "x = ones(3, requires_grad=true)\ny = sum(x^2)\ny.backward()\ng = grad(y, x)\n"
    )
    code, _, err = adcli("run", str(tmp_path / "t.ad"))
    assert code == 1
    assert f"freed by the backward at {tmp_path / 't.ad'}:3:1" in err
