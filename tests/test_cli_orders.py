"""`adcli eval --order` with --method, --check and --cost (issue 7's command line)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from adcli.cli.app import app

runner = CliRunner()


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, ["--json", "eval", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _closed_form_sin(order: int, x: float) -> float:
    # d^k/dx^k sin(x) = sin(x + k*pi/2)
    return math.sin(x + order * math.pi / 2)


@pytest.mark.parametrize("method", ["auto", "taylor", "nested"])
def test_every_method_gives_the_closed_form(method):
    out = _json(
        [
            "sin(x)",
            "--at",
            "x=0.5",
            "--wrt",
            "x",
            "--order",
            "5",
            "--method",
            method,
            "--dtype",
            "float64",
        ]
    )
    got = out["derivatives"]["x"]
    assert len(got) == 5
    for k, value in enumerate(got, start=1):
        assert value == pytest.approx(_closed_form_sin(k, 0.5), rel=1e-12, abs=1e-12)


def test_check_reports_agreement_by_order():
    out = _json(
        [
            "log(x^2 + 1) * sqrt(x^2 + 1)",
            "--at",
            "x=[0.5, 1.5]",
            "--wrt",
            "x",
            "--order",
            "4",
            "--check",
        ]
    )
    report = out["check"]["x"]
    assert report["dtype"] == "float64"
    assert report["finite_differences"] is True
    assert [row["order"] for row in report["orders"]] == [1, 2, 3, 4]
    for row in report["orders"]:
        assert row["taylor_vs_nested"] < 1e-10
        assert row["taylor_vs_fd"] < 1e-3
    assert report["max_disagreement"] < 1e-3


def test_cost_shows_taylor_growing_slower_than_nesting():
    out = _json(
        [
            "log(x^2 + 1) * sqrt(x^2 + 1)",
            "--at",
            "x=[0.5, 1.5]",
            "--wrt",
            "x",
            "--order",
            "6",
            "--cost",
            "--check",
            "--method",
            "taylor",
        ]
    )
    cost = out["cost"]["x"]
    assert set(cost) == {"taylor", "nested"}
    taylor = [row["nodes"] for row in cost["taylor"]]
    nested = [row["nodes"] for row in cost["nested"]]
    assert len(taylor) == len(nested) == 6
    assert all(row["seconds"] >= 0 and row["peak_bytes"] > 0 for row in cost["taylor"])
    # Nesting grows about 3-4x per order; Taylor mode polynomially.
    assert nested[-1] > 5 * taylor[-1]


def test_check_and_cost_need_wrt():
    for flag in ("--check", "--cost"):
        result = runner.invoke(app, ["eval", "sin(1)", flag])
        assert result.exit_code == 2


def test_unknown_method_is_a_usage_error():
    result = runner.invoke(
        app, ["eval", "sin(x)", "--at", "x=1", "--wrt", "x", "--method", "magic"]
    )
    assert result.exit_code == 2


def test_human_output_has_check_and_cost_tables():
    result = runner.invoke(
        app, ["eval", "exp(x)", "--at", "x=0.1", "--wrt", "x", "--order", "3", "--check", "--cost"]
    )
    assert result.exit_code == 0, result.output
    assert "taylor vs nested" in result.stdout
    assert "graph nodes" in result.stdout
