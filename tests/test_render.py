"""adcli.cli.render: how values, gradients, graphs and errors look, as text and as JSON."""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from rich.console import Console
from rich.text import Text

import adcli.engine as E
from adcli.cli.render import (
    Renderer,
    array_json,
    caret_lines,
    derivatives_renderable,
    dumps,
    error_json,
    error_text,
    format_array,
    format_plain,
    format_tensor,
    graph_json,
    graph_tree,
    junit_xml,
    make_console,
    prints_unstyled,
    tensor_footer,
    value_json,
    value_renderable,
)
from adcli.errors import AdcliError, Span


def plain(renderable) -> str:
    """What a renderable prints on a plain 100-column stream."""
    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None).print(renderable)
    return buffer.getvalue()


def leaf(data, name="x", **kwargs):
    t = E.tensor(data, requires_grad=True, **kwargs)
    t.name = name
    return t


# --------------------------------------------------------------------------- numbers
def test_tensor_numbers_print_like_pytorch_with_four_decimals():
    assert format_tensor(E.tensor([0.139, 0.5486])) == "tensor([0.1390, 0.5486])"
    assert format_tensor(E.tensor(9.25)) == "tensor(9.2500)"
    assert format_tensor(E.tensor([[1.5, -2.0], [3.0, 4.0]])) == (
        "tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  4.0000]])"
    )


def test_whole_numbers_print_as_integers_with_a_dot():
    assert format_tensor(E.tensor([1.0, 3.0])) == "tensor([1., 3.])"
    assert format_tensor(E.tensor(5.0)) == "tensor(5.)"
    # Whole numbers never switch to e-notation below 1e8, as in PyTorch.
    assert format_tensor(E.arange(2000)).startswith("tensor([   0.,    1.,    2., ...,")


def test_small_and_spread_magnitudes_switch_to_scientific_notation():
    assert format_tensor(E.tensor([1e-5, 1.0])) == "tensor([1.0000e-05, 1.0000e+00])"


def test_big_tensors_are_summarised_by_their_first_and_last_items():
    text = format_tensor(E.arange(5000) / 2)
    assert text.startswith("tensor([0.0000e+00, 5.0000e-01, 1.0000e+00, ..., 2.4985e+03,")
    assert text.endswith("2.4990e+03,\n        2.4995e+03])")
    assert len(text) < 120


def test_nan_and_infinity_are_printed_by_name():
    assert format_array(np.array([np.nan, 1.0, np.inf], dtype=np.float32)) == (
        "tensor([nan,  1., inf])"
    )


def test_wrapped_rows_line_up_under_a_label():
    text = format_tensor(E.tensor([[1.5, 2.0], [3.0, 4.0]]), prefix="∂/∂x = tensor(")
    assert text.splitlines()[1].startswith(" " * len("∂/∂x = tensor(["))


def test_footer_has_shape_dtype_device_and_grad_fn():
    x = leaf([1.0, 2.0])
    assert tensor_footer(x) == "shape=[2] dtype=float32 device=cpu requires_grad=True"
    y = E.sqrt(E.sum(x * x))
    assert tensor_footer(y) == "shape=[] dtype=float32 device=cpu grad_fn=<SqrtBackward>"
    z = E.tensor([[1.0]], dtype="float64")
    assert tensor_footer(z) == "shape=[1, 1] dtype=float64 device=cpu"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "None"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
        ('a "q"', '"a \\"q\\""'),
        ((2, 3), "[2, 3]"),
        ((), "[]"),
    ],
)
def test_plain_values(value, text):
    assert format_plain(value) == text


# --------------------------------------------------------------------------- graphs
def test_graph_tree_goes_down_to_named_leaves():
    x = leaf([3.0, 4.0])
    out = E.sqrt(E.sum(E.pow(x, 2)))
    text = plain(graph_tree(out.grad_fn))
    assert text.splitlines() == [
        "SqrtBackward",
        "└── SumBackward",
        "    └── PowBackward",
        "        └── AccumulateGrad (x)",
    ]


def test_graph_tree_shows_a_shared_node_once():
    x = leaf([1.0, 2.0])
    y = leaf([3.0, 4.0], name="y")
    text = plain(graph_tree((x * y + x).grad_fn))
    assert text.count("AccumulateGrad (x)") == 2
    assert "AccumulateGrad (x) ↑ (shown above)" in text
    assert "AccumulateGrad (y)" in text


def test_graph_tree_is_cut_short_on_huge_graphs():
    x = leaf([1.0])
    y = x
    for _ in range(50):
        y = y * 1.5 + x
    text = plain(graph_tree(y.grad_fn, limit=10))
    assert "… (more nodes not shown)" in text
    assert len(text.splitlines()) <= 12


def test_graph_json_is_a_flat_breadth_first_node_list():
    x = leaf([1.0, 2.0])
    y = leaf([3.0, 4.0], name="y")
    nodes = graph_json(E.sum(x * y).grad_fn)
    assert [n["name"] for n in nodes] == [
        "SumBackward",
        "MulBackward",
        "AccumulateGrad",
        "AccumulateGrad",
    ]
    assert [n["id"] for n in nodes] == [0, 1, 2, 3]
    assert nodes[0]["next"] == [1]
    assert nodes[1]["next"] == [2, 3]
    assert [nodes[2]["variable"], nodes[3]["variable"]] == ["x", "y"]
    assert nodes[1]["variable"] is None


def test_graph_json_lists_a_shared_node_once_and_skips_constants():
    x = leaf([1.0, 2.0])
    nodes = graph_json((x * x * E.tensor([5.0, 6.0])).grad_fn)
    assert [n["name"] for n in nodes] == ["MulBackward", "MulBackward", "AccumulateGrad"]
    assert nodes[0]["next"] == [1]  # the constant factor needs no gradient: left out
    assert nodes[1]["next"] == [2, 2]  # x * x: both inputs are the same leaf
    assert graph_json(None) == []


# --------------------------------------------------------------------------- JSON values
def test_array_json_nests_and_writes_float32_shortest():
    assert array_json(np.array([[0.1, 0.2]], dtype=np.float32)) == [[0.1, 0.2]]
    assert array_json(np.array(9.25, dtype=np.float32)) == 9.25
    assert array_json(np.array([1 / 3])) == [1 / 3]  # float64 exact
    assert array_json(np.array([True, False])) == [True, False]


def test_array_json_writes_nan_and_infinities_as_strings():
    value = array_json(np.array([np.nan, np.inf, -np.inf, 1.0], dtype=np.float32))
    assert value == ["nan", "inf", "-inf", 1.0]
    assert json.loads(dumps(value)) == value


def test_dumps_refuses_a_bare_nan():
    with pytest.raises(ValueError, match="Out of range float values"):
        dumps({"value": math.nan})


def test_value_json_of_a_tensor():
    x = leaf([3.0, 4.0])
    out = E.sqrt(E.sum(x * x))
    assert value_json(out) == {
        "type": "tensor",
        "value": 5.0,
        "shape": [],
        "dtype": "float32",
        "device": "cpu",
        "grad_fn": "SqrtBackward",
        "requires_grad": True,
    }
    assert value_json(x)["value"] == [3.0, 4.0]
    assert value_json(x)["grad_fn"] is None


@pytest.mark.parametrize(
    ("value", "kind", "json_value"),
    [
        (None, "none", None),
        (True, "bool", True),
        (3, "number", 3),
        (2.5, "number", 2.5),
        (math.inf, "number", "inf"),
        ("hi", "string", "hi"),
        ((2, 3), "tuple", [2, 3]),
    ],
)
def test_value_json_of_other_values(value, kind, json_value):
    got = value_json(value)
    assert got == {
        "type": kind,
        "value": json_value,
        "shape": [],
        "dtype": None,
        "device": None,
        "grad_fn": None,
    }
    dumps(got)


def test_value_json_of_a_grad_fn_carries_its_graph():
    x = leaf([1.0])
    got = value_json(E.exp(x).grad_fn)
    assert got["type"] == "grad_fn"
    assert got["value"] == "ExpBackward"
    assert [n["name"] for n in got["graph"]] == ["ExpBackward", "AccumulateGrad"]


# --------------------------------------------------------------------------- derivatives
def test_first_derivatives_are_labelled_by_variable():
    ds = {"x": [E.tensor([0.6, 0.8])], "y": [E.tensor(2.0)]}
    assert plain(derivatives_renderable(ds)).splitlines() == [
        "∂/∂x = tensor([0.6000, 0.8000])",
        "∂/∂y = tensor(2.)",
    ]
    assert plain(derivatives_renderable(ds, partial="d")).startswith("d/dx = tensor(")


def test_higher_orders_are_a_table_by_order():
    ds = {"x": [E.tensor(5.0), E.tensor(2.0), E.tensor(0.0)]}
    text = plain(derivatives_renderable(ds))
    rows = [line for line in text.splitlines() if "tensor(" in line]
    assert "∂ⁿ/∂xⁿ" in text
    assert [r.split()[1] for r in rows] == ["1", "2", "3"]
    assert [r.split()[3] for r in rows] == ["tensor(5.)", "tensor(2.)", "tensor(0.)"]


# --------------------------------------------------------------------------- errors
def test_error_text_has_location_source_caret_and_hint():
    err = AdcliError(
        "name", "unknown name 'foo'", Span("<eval>", 1, 5, 1, 8), hint="did you mean 'for'?"
    )
    text = error_text(err, lambda f: ["1 + foo(2)"] if f == "<eval>" else None).plain
    assert text.splitlines() == [
        "<eval>:1:5: error: unknown name 'foo'",
        "1 + foo(2)",
        "    ^~~",
        "hint: did you mean 'for'?",
    ]


def test_error_text_without_a_span_or_source():
    assert error_text(AdcliError("device", "no GPU")).plain == "error: no GPU"
    err = AdcliError("syntax", "oops", Span("f.ad", 3, 2, 3, 3))
    assert error_text(err, lambda f: None).plain == "f.ad:3:2: error: oops"


def test_caret_spans_and_clamps():
    assert caret_lines("abc", Span("f", 1, 2, 1, 3)) == ("abc", " ^")
    # A span past the end of the line (end of input) points just after it.
    assert caret_lines("1 +", Span("f", 1, 4, 1, 4)) == ("1 +", "   ^")
    # A span running onto later lines is underlined to the end of its first line.
    assert caret_lines("f(a,", Span("f", 1, 2, 3, 1)) == ("f(a,", " ^~~")
    # Tabs stay tabs, so the caret lines up whatever the tab width.
    assert caret_lines("\tx = y", Span("f", 1, 6, 1, 7)) == ("\tx = y", "\t    ^")


def test_error_json_has_the_contract_keys_and_more():
    err = AdcliError("assert", "nope", Span("a.ad", 2, 1, 2, 9))
    assert error_json(err) == {
        "kind": "assert",
        "message": "nope",
        "line": 2,
        "column": 1,
        "code": "E006",
        "file": "a.ad",
        "hint": None,
    }
    no_span = error_json(AdcliError("device", "no GPU", hint="use cpu"))
    assert (no_span["line"], no_span["column"], no_span["hint"]) == (None, None, "use cpu")


# --------------------------------------------------------------------------- JUnit
def test_junit_report_has_one_case_per_file_with_failures_and_skips():
    err = AdcliError("assert", "x is not 2", Span("b.ad", 4, 1, 4, 9))
    report = junit_xml([("a.ad", 0.5, None), ("b.ad", 0.25, err)], ["c.ad"])
    suite = ET.fromstring(report)
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["a.ad", "b.ad", "c.ad"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure.get("message") == "b.ad:4:1: x is not 2"
    assert failure.get("line") == "4"
    assert failure.get("type") == "assert"
    assert cases[2].find("skipped") is not None


# --------------------------------------------------------------------------- consoles
def test_no_color_turns_every_style_off(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    console = make_console()
    assert console.color_system is None
    monkeypatch.setenv("NO_COLOR", "")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert make_console().color_system is not None


def test_renderer_writes_values_to_stdout_and_errors_to_stderr(capsys, monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    renderer = Renderer()
    renderer.value(E.tensor([1.0, 2.0]))
    renderer.error(AdcliError("value", "bad"))
    out, err = capsys.readouterr()
    assert out == "tensor([1., 2.])\nshape=[2] dtype=float32 device=cpu\n"
    assert err == "error: bad\n"
    assert "\x1b[" not in out + err


def test_renderer_in_json_mode_collects_outputs_and_prints_nothing_else(capsys):
    from adcli.lang.interpreter import Output

    renderer = Renderer(json_mode=True)
    renderer.emit(Output("value", E.tensor(2.0)))
    renderer.emit(Output("print", text="hello"))
    renderer.emit(Output("warning", text="careful", span=Span("<eval>", 1, 3, 1, 4)))
    renderer.error(AdcliError("value", "bad"))
    assert capsys.readouterr() == ("", "")
    assert renderer.outputs == [
        value_json(E.tensor(2.0)),
        {"type": "print", "text": "hello"},
        {"type": "warning", "text": "careful", "line": 1, "column": 3},
    ]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


ENVIRONMENTS = [
    {},
    {"NO_COLOR": "1"},
    {"NO_COLOR": ""},
    {"FORCE_COLOR": "1"},
    {"FORCE_COLOR": ""},
    {"TTY_COMPATIBLE": "0"},
    {"TTY_COMPATIBLE": "1"},
    {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"},
    {"TERM": "dumb"},
    {"TERM": "unknown", "FORCE_COLOR": "1"},
    {"TERM": "xterm-256color"},
]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("stream", [io.StringIO, FakeTerminal])
def test_unstyled_output_is_told_as_rich_tells_it(monkeypatch, environment, stream):
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    file = stream()
    assert prints_unstyled(file) == (make_console(file=file).color_system is None)


PLAIN_CASES = [
    E.tensor([1.0, 2.0]),
    E.tensor([[1.5, -2.0], [3.0, 4.0]], requires_grad=True),
    E.tensor(2.0) * 3,
    None,
    True,
    2,
    -0.5,
    "text",
    "",
    "two\nlines",
    "tab\there",
    "carriage\rreturn",
    "bell\x07 and form feed\x0c",
    "wide 漢字 and ∂ and e\u0301",
    "x" * 300,
    [1, "two", None],
]


@pytest.mark.parametrize("environment", [{}, {"NO_COLOR": "1"}, {"FORCE_COLOR": "1"}])
@pytest.mark.parametrize("value", PLAIN_CASES, ids=repr)
def test_plain_text_written_without_rich_is_what_rich_prints(monkeypatch, environment, value):
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, setting in environment.items():
        monkeypatch.setenv(name, setting)
    for show in ("value", "print_text", "line"):
        if show != "value" and not isinstance(value, str):
            continue
        shown, expected = io.StringIO(), io.StringIO()
        getattr(Renderer(out_file=shown), show)(value)
        renderable = value_renderable(value) if show == "value" else Text(value)
        make_console(file=expected).print(renderable, soft_wrap=True)
        assert shown.getvalue() == expected.getvalue()
