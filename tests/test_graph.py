"""``adcli graph``: the grad_fn graph as a tree, DOT (parsed back here by a small reader),
JSON (the ``graph`` list of ``eval --json --graph``, extended) and SVG through Graphviz."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from adcli.cli.app import app

PROGRAM = "sqrt(x^2 + y)*x"
AT = ["--at", "x=1.5", "--at", "y=2", "--wrt", "x"]


def _cli(args, env=None):
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


# ----- a small DOT reader: enough of the language to read back what we write -----------------
_STATEMENT = re.compile(
    r"""\s*(?:
        (?P<default>(?:node|edge|graph)\s*\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\])
      | (?P<edge>(?P<src>\w+)\s*->\s*(?P<dst>\w+))
      | (?P<node>(?P<id>\w+)\s*\[(?P<attrs>(?:[^\]"]|"(?:[^"\\]|\\.)*")*)\])
      | (?P<assign>\w+\s*=\s*(?:\w+|"(?:[^"\\]|\\.)*"))
    )\s*;""",
    re.VERBOSE,
)
_ATTR = re.compile(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)')


def read_dot(text: str) -> tuple[dict, list]:
    """(nodes {id: attrs}, edges [(src, dst)]) of a ``digraph NAME { ... }``; strict."""
    m = re.fullmatch(r"\s*digraph\s+\w+\s*\{(?P<body>.*)\}\s*", text, re.DOTALL)
    assert m, "not a digraph"
    body = m.group("body")
    nodes: dict = {}
    edges: list = []
    pos = 0
    while body[pos:].strip():
        s = _STATEMENT.match(body, pos)
        assert s, f"cannot read DOT at: {body[pos : pos + 60]!r}"
        if s.group("edge"):
            edges.append((s.group("src"), s.group("dst")))
        elif s.group("node"):
            attrs = {}
            for key, value in _ATTR.findall(s.group("attrs")):
                if value.startswith('"'):
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                attrs[key] = value
            nodes[s.group("id")] = attrs
        pos = s.end()
    return nodes, edges


def test_dot_is_a_digraph_with_one_node_per_grad_fn_and_leaf():
    code, out, _ = _cli(["graph", PROGRAM, *AT, "--format", "dot"])
    assert code == 0
    nodes, edges = read_dot(out)
    labels = {k: v["label"] for k, v in nodes.items()}
    names = sorted(label.split()[0] for label in labels.values())
    # x is used twice but has one AccumulateGrad; y needs no grad and is not a node.
    assert names == ["AccumulateGrad", "AddBackward", "MulBackward", "PowBackward", "SqrtBackward"]
    by_name = {label.split()[0]: k for k, label in labels.items()}
    expected = {
        ("MulBackward", "SqrtBackward"),
        ("MulBackward", "AccumulateGrad"),
        ("SqrtBackward", "AddBackward"),
        ("AddBackward", "PowBackward"),
        ("PowBackward", "AccumulateGrad"),
    }
    assert set(edges) == {(by_name[a], by_name[b]) for a, b in expected}
    assert all(src in nodes and dst in nodes for src, dst in edges)
    assert "(x)" in labels[by_name["AccumulateGrad"]]


def test_dot_with_values_carries_value_and_gradient():
    code, out, _ = _cli(["graph", PROGRAM, *AT, "--format", "dot", "--values"])
    assert code == 0
    nodes, _ = read_dot(out)
    labels = [v["label"] for v in nodes.values()]
    sqrt_label = next(lb for lb in labels if lb.startswith("SqrtBackward"))
    # d(out)/d(sqrt) = x = 1.5; the sqrt's value is sqrt(4.25)
    assert "value=2.062" in sqrt_label and "grad=1.5" in sqrt_label
    leaf = next(lb for lb in labels if lb.startswith("AccumulateGrad"))
    dx = np.sqrt(4.25) + 1.5**2 / np.sqrt(4.25)
    assert f"grad={dx:.4g}" in leaf


def test_dot_quotes_labels():
    code, out, _ = _cli(
        ["graph", "x = tensor([1., 2.], requires_grad=true); sum(x*x)", "--format", "dot"]
    )
    assert code == 0
    nodes, edges = read_dot(out)
    assert len(nodes) == 3 and len(edges) == 3  # sum -> mul, mul -> x twice


def test_json_is_the_graph_list_with_ops_and_shapes():
    code, out, _ = _cli(
        [
            "graph",
            "sum(exp(x))",
            "--at",
            "x=[1, 2, 3]",
            "--wrt",
            "x",
            "--format",
            "json",
            "--values",
            "--dtype",
            "float64",
        ]
    )
    assert code == 0
    graph = json.loads(out)["graph"]
    assert [e["name"] for e in graph] == ["SumBackward", "ExpBackward", "AccumulateGrad"]
    assert [e["op"] for e in graph] == ["sum", "exp", None]
    assert [e["shape"] for e in graph] == [[], [3], [3]]
    assert [e["next"] for e in graph] == [[1], [2], []]
    assert graph[2]["variable"] == "x"
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(graph[1]["value"], np.exp(x))
    np.testing.assert_allclose(graph[2]["grad"], np.exp(x))
    np.testing.assert_allclose(graph[1]["grad"], np.ones(3))


def test_json_agrees_with_eval_json_graph():
    code, out, _ = _cli(["graph", PROGRAM, *AT, "--format", "json"])
    code2, out2, _ = _cli(["--json", "eval", PROGRAM, *AT, "--graph"])
    assert code == code2 == 0
    ours = json.loads(out)["graph"]
    theirs = json.loads(out2)["graph"]
    strip = [{k: e[k] for k in ("id", "name", "next", "variable")} for e in ours]
    assert strip == theirs


def test_tree_shows_ops_and_shapes():
    code, out, _ = _cli(["graph", "sum(x*x)", "--at", "x=[1, 2]", "--wrt", "x", "--values"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("SumBackward []  value=5")
    assert "MulBackward [2]  value=[1, 4]  grad=[1, 1]" in out
    assert "AccumulateGrad (x) [2]  value=[1, 2]  grad=[2, 4]" in out


def test_a_value_without_a_graph():
    code, out, _ = _cli(["graph", "1 + 2"])
    assert code == 0
    assert "grad_fn: None" in out
    code, out, _ = _cli(["graph", "1 + 2", "--format", "json"])
    assert json.loads(out) == {"graph": []}


def test_svg_through_graphviz_or_a_clear_message():
    code, out, err = _cli(["graph", PROGRAM, *AT, "--format", "svg"])
    if shutil.which("dot") is None:
        assert code == 1
        assert "Graphviz" in err and "--format dot" in err
    else:
        assert code == 0
        assert "<svg" in out


def test_svg_without_dot_on_the_path(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, out, err = _cli(["graph", PROGRAM, *AT, "--format", "svg"])
    assert code == 1
    assert out == ""
    assert "needs Graphviz's 'dot'" in err


@pytest.mark.parametrize("fmt", ["tree", "dot", "json"])
def test_program_errors_are_reported(fmt):
    code, out, err = _cli(["graph", "x +", "--format", fmt])
    assert code == 1
    if fmt == "json":
        assert json.loads(out)["error"]["kind"] == "syntax"
    else:
        assert "<eval>:1:4: error:" in err


def test_the_graph_of_a_grad_fn_value():
    code, out, _ = _cli(
        ["graph", "x = tensor(2., requires_grad=true); (x*x).grad_fn", "--format", "json"]
    )
    assert code == 0
    assert [e["name"] for e in json.loads(out)["graph"]] == ["MulBackward", "AccumulateGrad"]
