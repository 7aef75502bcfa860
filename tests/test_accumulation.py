"""Visible accumulation: a backward that adds into an existing ``.grad`` says so, once per
leaf and statement, in scripts and the REPL; in ``--json`` it is an ``accumulation`` output
with ``"accumulated": true`` and no text."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from adcli.cli.app import app
from adcli.engine.tensor import STATE, Tensor
from adcli.lang.interpreter import Session

NOTE = "(accumulated; zero it with x.grad.zero_() or use grad(...))"


def _cli(args, input=None):
    result = CliRunner().invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def _script(tmp_path, text: str) -> str:
    path = tmp_path / "s.ad"
    path.write_text(text)
    return str(path)


TWICE = (
    "x = tensor(1.5, requires_grad=true)\n"
    "y = x^2\n"
    "y.backward(retain_graph=true)\n"
    "y.backward()\n"
    "x.grad\n"
)


def test_a_second_backward_says_it_accumulated(tmp_path):
    path = _script(tmp_path, TWICE)
    code, out, err = _cli(["run", path])
    assert code == 0
    assert f"{path}:4:1: note: x.grad: 3 + 3 -> 6 {NOTE}" in err
    assert err.count("note:") == 1  # the first backward had nothing to add to
    assert "tensor(6.)" in out


def test_json_has_an_accumulated_field_and_no_message(tmp_path):
    code, out, err = _cli(["--json", "run", _script(tmp_path, TWICE)])
    assert code == 0
    assert "note:" not in out + err
    outputs = json.loads(out)["outputs"]
    acc = [o for o in outputs if o["type"] == "accumulation"]
    assert acc == [
        {
            "type": "accumulation",
            "variable": "x",
            "accumulated": True,
            "before": 3.0,
            "added": 3.0,
            "grad": 6.0,
            "line": 4,
            "column": 1,
        }
    ]
    assert "text" not in acc[0]


def test_vectors_and_each_leaf_once_per_statement(tmp_path):
    text = (
        "x = tensor([1., 2.], requires_grad=true)\n"
        "w = tensor(3., requires_grad=true)\n"
        "f(a, b) = sum(a*b)\n"
        "f(x, w).backward()\n"
        "f(x, w).backward()\n"
        "f(x, w).backward()\n"
    )
    code, _, err = _cli(["run", _script(tmp_path, text)])
    assert code == 0
    lines = [line for line in err.splitlines() if "note:" in line]
    assert len(lines) == 4  # x and w, at lines 5 and 6
    text = "\n".join(lines)
    assert ":5:1: note: x.grad: [3, 3] + [3, 3] -> [6, 6]" in text
    assert ":5:1: note: w.grad: 3 + 3 -> 6 (accumulated; zero it with w.grad.zero_()" in text
    assert ":6:1: note: x.grad: [6, 6] + [3, 3] -> [9, 9]" in text
    assert ":6:1: note: w.grad: 6 + 3 -> 9" in text


def test_no_message_after_zeroing_or_with_grad(tmp_path):
    text = (
        "x = tensor(2., requires_grad=true)\n"
        "(x^3).backward()\n"
        "x.grad.zero_()\n"
        "(x^3).backward()\n"
        "g = grad(x^3, x)\n"
        "x.grad\n"
    )
    code, out, err = _cli(["run", _script(tmp_path, text)])
    assert code == 0
    assert "note:" not in err
    assert "tensor(12.)" in out


def test_accumulation_with_create_graph_is_reported_too(tmp_path):
    text = (
        "x = tensor(2., requires_grad=true)\n"
        "(x^2).backward(create_graph=true)\n"
        "(x^2).backward(create_graph=true)\n"
    )
    code, _, err = _cli(["run", _script(tmp_path, text)])
    assert code == 0
    assert f"note: x.grad: 4 + 4 -> 8 {NOTE}" in err


def test_in_the_repl_each_entry_is_its_own_statement():
    entries = "x = tensor(1., requires_grad=true)\n" + "(3*x).backward()\n" * 3
    code, _, err = _cli(["repl"], input=entries)
    assert code == 0
    notes = [line for line in err.splitlines() if "note:" in line]
    assert len(notes) == 2
    assert "x.grad: 3 + 3 -> 6" in notes[0]
    assert "x.grad: 6 + 3 -> 9" in notes[1]


def test_the_engine_reports_events_only_to_a_listener():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    events = []
    saved = STATE.on_accumulate
    try:
        (x * x).sum().backward()  # nobody listens: nothing happens, and nothing is copied
        STATE.on_accumulate = events.append
        (x * 3.0).sum().backward()
    finally:
        STATE.on_accumulate = saved
    assert len(events) == 1
    e = events[0]
    assert e.variable is x
    np.testing.assert_array_equal(e.before, [2.0, 4.0])
    np.testing.assert_array_equal(e.added, [3.0, 3.0])
    np.testing.assert_array_equal(e.after, [5.0, 7.0])


def test_the_session_turns_events_into_outputs():
    s = Session(dtype="float64")
    shown = []
    s.run(
        "x = tensor(1., requires_grad=true); (x*2).backward(); (x*5).backward()", emit=shown.append
    )
    acc = [o for o in shown if o.kind == "accumulation"]
    assert len(acc) == 1
    assert acc[0].value.name == "x"
    assert float(acc[0].value.after) == 7.0
