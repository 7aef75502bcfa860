"""``eval --symbolic`` and ``symbolic(...)``: derivatives rebuilt from the tape as programs.

Each symbolic form is checked by *running* it (a fresh session, the same
variables) and comparing with the AD value at random points, over a corpus
that covers every differentiable op of the table (a test below walks
``adcli.engine.ops.TABLE``); a few forms are checked against their closed
form as text.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from adcli.cli.app import app
from adcli.engine.ops import TABLE
from adcli.errors import AdcliError
from adcli.lang import symbolic as S
from adcli.lang.builtins import BUILTINS
from adcli.lang.interpreter import Session

# (program, {name: shape}, order): x is the variable differentiated; the others are constants.
CORPUS = [
    ("x^2 + x*y + y^2", {"x": (), "y": ()}, 2),
    ("x - y/x + -x*3", {"x": (), "y": ()}, 3),
    ("x^3 - 2*x^0.5 + x^-1", {"x": ()}, 3),
    ("y^x + x^x", {"x": (), "y": ()}, 2),
    ("exp(x)*log(x) + sqrt(x)", {"x": ()}, 3),
    ("sin(x)*cos(x) + tanh(x) - sigmoid(x)", {"x": ()}, 3),
    ("abs(x - 0.05) + relu(x - 0.1)*x", {"x": ()}, 2),
    ("where(x > 0.7, x^2, -x)", {"x": (4,)}, 2),
    ("sum(x^2) + mean(exp(x))", {"x": (3,)}, 2),
    ("sum(x*M)", {"x": (3,), "M": (2, 3)}, 2),
    ("sum(sin(expand(x, 2, 3))*M)", {"x": (3,), "M": (2, 3)}, 2),
    ("sum(reshape(x, 2, 2)^3)", {"x": (4,)}, 2),
    ("sum(permute(reshape(x, 2, 3), 1, 0)*M)", {"x": (6,), "M": (3, 2)}, 2),
    ("sum(transpose(reshape(x, 2, 3), 0, 1)^2*M)", {"x": (6,), "M": (3, 2)}, 2),
    ("sum(reshape(x, 2, 2).t()*M)", {"x": (4,), "M": (2, 2)}, 1),
    ("x[1]*x[0] + x[2]^2", {"x": (3,)}, 2),
    ("sum(x[1:3]^3)", {"x": (4,)}, 2),
    ("sum(exp(mm(reshape(x, 2, 2), M)))", {"x": (4,), "M": (2, 2)}, 2),
    ("dot(x, y)^2", {"x": (3,), "y": (3,)}, 2),
    ("sum(sin(matmul(M, x)))", {"x": (3,), "M": (2, 3)}, 2),
    ("sum(cos(matmul(x, M)))", {"x": (2,), "M": (2, 3)}, 2),
    ("sum(matmul(reshape(x, 2, 2, 2), reshape(x, 2, 2, 2)))", {"x": (8,)}, 2),
    ("sum(clone(x)^2 + sqrt(x))", {"x": (2,)}, 2),
    ("sqrt(x^2 + 1)*exp(x^2 + 1)", {"x": ()}, 2),
    ("sum(log(x)/(x + M))", {"x": (3,), "M": (2, 3)}, 2),
    ("sqrt(sum(x^2, dim=0))", {"x": (2,)}, 3),
    ("sum(x*no_grad(x*3) + exp(y)^2*x)", {"x": (3,), "y": (3,)}, 2),
    ("mean(log(x^2 + y^2) + z*x*y)", {"x": (3,), "y": (3,), "z": (3,)}, 2),
    # the v2 ops, and the helper ops of their rules (masks, weights, placements)
    ("sum(clamp(x, min=0.5)*x) + sum(clamp(x, max=0.9, min=0.4)^2)", {"x": (4,)}, 2),
    ("det(reshape(x, 2, 2))^2 + sum(inverse(reshape(x, 2, 2))*M)", {"x": (4,), "M": (2, 2)}, 2),
    ("sum(solve(reshape(x, 2, 2) + 2*eye(2), y)^2)", {"x": (4,), "y": (2,)}, 2),
    ("sum(solve(reshape(x, 2, 2) + 2*eye(2), M)^2)", {"x": (4,), "M": (2, 3)}, 2),
    (
        "trace(reshape(x, 2, 3) @ M) + sum(diagonal(reshape(x, 2, 3), 1)^2)",
        {"x": (6,), "M": (3, 2)},
        2,
    ),
    ("sum(diag(x)*M) + sum(diag(x^2, 1)*N)", {"x": (3,), "M": (3, 3), "N": (4, 4)}, 2),
    ("sum(tril(reshape(x, 3, 3))^2 + triu(reshape(x, 3, 3), 1)^3)", {"x": (9,)}, 2),
    ("sum(cat([x, x^2], dim=0)*y) + sum(stack([x, sin(x)], dim=1)^2)", {"x": (3,), "y": (6,)}, 2),
    ("sum(split(x, 2)[1]^3) + sum(split(x, 2)[0]*y)", {"x": (4,), "y": (2,)}, 2),
    (
        "sum(repeat(x, 2)*y) + sum(flip(x, (0,))*x^2) + sum(roll(x, 1, 0)*x)",
        {"x": (3,), "y": (6,)},
        2,
    ),
    ("sum(squeeze(unsqueeze(x, 0), 0)^3) + sum(unsqueeze(x, 1)*M)", {"x": (3,), "M": (3, 2)}, 2),
    ("amax(x)*sum(x) + sum(amin(reshape(x, 2, 3), dim=1)^2) + max(x)*min(x)", {"x": (6,)}, 2),
    (
        "sum(max(reshape(x, 2, 3), dim=1)[0]^2) + sum(min(reshape(x, 2, 3), dim=0)[0]*y)",
        {"x": (6,), "y": (3,)},
        2,
    ),
    ("prod(x) + sum(prod(reshape(x, 2, 2), dim=1)^2)", {"x": (4,)}, 2),
    ("var(x) + std(x)*x[0] + sum(var(reshape(x, 2, 3), dim=1, correction=0)^2)", {"x": (6,)}, 2),
    (
        "logsumexp(x, 0) + sum(softmax(x, 0)*y) + sum(log_softmax(reshape(x, 2, 2), 1)^2)",
        {"x": (4,), "y": (4,)},
        2,
    ),
    ("sum(cumsum(x, 0)^2) + sum(cumprod(x, 0)*y)", {"x": (4,), "y": (4,)}, 2),
    (
        "sum(maximum(x, y)^2 + minimum(x, y)*x + hypot(x, y) + atan2(x, y))",
        {"x": (3,), "y": (3,)},
        2,
    ),
    (
        (
            "mse_loss(x, y) + binary_cross_entropy(sigmoid(x), y*0.5)"
            ' + binary_cross_entropy_with_logits(x, y*0.5, reduction="sum")'
        ),
        {"x": (3,), "y": (3,)},
        2,
    ),
    (
        (
            "nll_loss(log_softmax(reshape(x, 2, 3), 1), tensor([0, 2]))"
            ' + nll_loss(reshape(x, 2, 3), tensor([1, 1]), reduction="sum")'
            ' + sum(nll_loss(reshape(x, 2, 3)^2, tensor([2, 0]), reduction="none")*x[4:6])'
        ),
        {"x": (6,)},
        2,
    ),
    (
        'einsum("ij,j->i", reshape(x, 2, 2), y)[0]^2 + sum(tensordot(reshape(x, 2, 2), M, 1)^2)',
        {"x": (4,), "M": (2, 3), "y": (2,)},
        2,
    ),
    ("sum((x*3) % 1*x) + sum(x^2 % 0.7)", {"x": (3,)}, 2),
    ("sum(leaky_relu(x - 0.5, 0.1)*x) + sum(nan_to_num(log(x))*x)", {"x": (4,)}, 2),
    ("y = x*1; y[0] = x[1]^2; y[1:3] = sin(x[0:2]); sum(y*y)", {"x": (4,)}, 2),
    ("sum(reshape(x, 2, 3)[:, 1:]^2) + sum(t(reshape(x, 2, 3))[1]*y)", {"x": (6,), "y": (2,)}, 2),
    # rows stacked with a graph (index_put), whose rule zeroes what was overwritten
    ("f(v) = sin(v)*sum(v); sum(jacobian(f, x, create_graph=true)^2)", {"x": (3,)}, 2),
]

#: Unary builtins whose generated case ``sum(f(x)*x)`` on a vector is not a call the op
#: takes (it needs a sequence, a bound, a matrix or a shape): each has a corpus case above.
NOT_A_VECTOR_CALL = {
    "cat": "a sequence of tensors",
    "stack": "a sequence of tensors",
    "clamp": "a bound",
    "det": "a matrix",
    "inverse": "a matrix",
    "diagonal": "a matrix",
    "trace": "a matrix",
    "tril": "a matrix",
    "triu": "a matrix",
    "expand": "a shape",
    "permute": "a permutation",
    "repeat": "repeat counts",
    "reshape": "a shape",
}

#: Ops that the language cannot record on the CPU (moves between dtypes and devices): the
#: spelling treats them as the identity, checked directly below.
NOT_RECORDABLE = {"cast", "to_device"}


def _session() -> Session:
    s = Session(dtype="float64", seed=0)
    s.keep_tape_inputs = True
    return s


def _bind(s: Session, values: dict, wrt: str | None = "x") -> None:
    for name, value in values.items():
        t = s.make_tensor(json.dumps(np.asarray(value).tolist()), requires_grad=name == wrt)
        s.bind(name, t)


def _random_values(shapes: dict, rng) -> dict:
    # Positive and away from 0: log, sqrt and x^x are defined; the kinks of abs/relu avoided.
    return {n: rng.uniform(0.2, 1.5, size=shape) for n, shape in shapes.items()}


def _ad_and_symbolic(program: str, values: dict, order: int):
    s = _session()
    _bind(s, values)
    y = s.run(program)
    ad = s.derivatives(y, ["x"], order, method="nested")["x"]
    forms = s.symbolic_derivatives(y, ["x"], order)["x"]
    return [d.numpy() for d in ad], forms


def _run_form(form: str, values: dict) -> np.ndarray:
    s = Session(dtype="float64")
    _bind(s, values, wrt=None)
    out = s.run(form)
    return np.asarray(out.numpy() if hasattr(out, "numpy") else out, dtype=np.float64)


def _ops_used(program: str, values: dict, order: int) -> set:
    """The table ops on the program's tape and in its symbolic derivatives."""
    s = _session()
    _bind(s, values)
    y = s.run(program)
    builder = S.Builder()
    x = s.lookup("x")
    forward = S.from_tape(builder, y, {id(x): "x"})
    roots = [forward, *S.derivatives(builder, forward, builder.var("x", x.shape), order)]
    seen, names, stack = set(), set(), roots
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op not in (S.VARIABLE, "const"):
            names.add(node.op)
        stack.extend(node.args)
    return names


@pytest.mark.parametrize(("program", "shapes", "order"), CORPUS, ids=[c[0] for c in CORPUS])
def test_each_symbolic_form_evaluates_to_the_ad_value_at_random_points(program, shapes, order):
    rng = np.random.default_rng(abs(hash(program)) % 2**32)
    for _ in range(3):
        values = _random_values(shapes, rng)
        ad, forms = _ad_and_symbolic(program, values, order)
        assert len(forms) == order
        for k, (expected, form) in enumerate(zip(ad, forms), start=1):
            got = _run_form(form, values)
            assert got.shape == expected.shape, (k, form)
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=f"{k}: {form}")


def _unary_builtins_of_the_table() -> list[str]:
    """Table ops that are also one-argument builtins: they get a generated case."""
    found = []
    for name, entry in TABLE.items():
        builtin = BUILTINS.get(name)
        if (
            entry.differentiable
            and builtin is not None
            and builtin.required == 1
            and name not in NOT_A_VECTOR_CALL
        ):
            found.append(name)
    return sorted(found)


@pytest.mark.parametrize("name", _unary_builtins_of_the_table())
def test_generated_case_for_each_unary_op_of_the_table(name):
    program = f"sum({name}(x)*x)"
    rng = np.random.default_rng(7)
    values = {"x": rng.uniform(0.2, 0.8, size=(3,))}
    ad, forms = _ad_and_symbolic(program, values, 2)
    for expected, form in zip(ad, forms):
        np.testing.assert_allclose(_run_form(form, values), expected, rtol=1e-9, atol=1e-9)


def test_the_corpus_covers_every_differentiable_op_of_the_table():
    covered = set(NOT_RECORDABLE) | set(_unary_builtins_of_the_table())
    rng = np.random.default_rng(0)
    for program, shapes, order in CORPUS:
        covered |= _ops_used(program, _random_values(shapes, rng), order)
    missing = sorted(n for n, e in TABLE.items() if e.differentiable and n not in covered)
    assert not missing, f"add a corpus case (and, if needed, a spelling) for: {missing}"


def test_an_op_without_a_spelling_is_a_clear_error():
    b = S.Builder()
    unspelled = [n for n in TABLE if S.spelling_of(n) is None and n not in NOT_RECORDABLE]
    for name in [*unspelled, "an_op_from_the_future"]:
        node = b.node(name, (b.var("x", ()),), None, shape=())
        with pytest.raises(AdcliError, match=f"the op '{name}'.*no spelling in the language"):
            S.render(node)


def test_dtype_and_device_moves_are_spelled_as_the_value_itself():
    b = S.Builder()
    x = b.var("x", (2,))
    assert b.F.cast(x, dtype="float64", source="float32") is x
    assert b.F.to_device(x, device=None, source=None) is x


# ----- the simplified forms, as text --------------------------------------------------------
@pytest.mark.parametrize(
    ("program", "values", "expected"),
    [
        ("x^2 + x*y + y^2", {"x": 1.5, "y": 2.0}, ["2*x + y", "2"]),
        ("x*1 + 0*x + x^1 + (x + 0)*y", {"x": 1.5, "y": 2.0}, ["y + 2", "0"]),
        ("3*x^4", {"x": 0.5}, ["12*x^3", "36*x^2"]),
        ("sin(x)", {"x": 0.5}, ["cos(x)", "-sin(x)"]),
        ("y", {"x": 0.5, "y": 2.0}, ["0", "0"]),
    ],
)
def test_simplified_forms(program, values, expected):
    _, forms = _ad_and_symbolic(program, values, 2)
    assert forms == expected


def test_common_subexpressions_are_named_as_statements():
    _, forms = _ad_and_symbolic("sqrt(x^2 + 1)*exp(x^2 + 1)", {"x": 0.7}, 1)
    form = forms[0]
    assert form.startswith("t1 = x^2 + 1; ")
    assert form.count("x^2 + 1") == 1  # written once, used by name after


def test_names_of_statements_avoid_the_programs_variables():
    values = {"x": 0.7, "t1": 2.0}
    ad, forms = _ad_and_symbolic("sqrt(x^2 + t1)*exp(x^2 + t1)", values, 1)
    assert "t1 = " not in forms[0]
    np.testing.assert_allclose(_run_form(forms[0], values), ad[0], rtol=1e-12)


def test_symbolic_of_a_value_spells_the_expression_that_made_it():
    s = Session(dtype="float64")
    out = s.run("x = tensor(2.0, requires_grad=true); y = 3*x^2 + sin(x)*x; symbolic(y)")
    assert out == "3*x^2 + sin(x)*x"


def test_symbolic_in_a_script_gives_the_derivative_as_a_string():
    s = Session(dtype="float64")
    out = s.run("x = tensor(2.0, requires_grad=true); y = x^3; symbolic(y, x, order=2)")
    assert out == "6*x"


def test_constants_computed_from_variables_are_spelled_with_them():
    _, forms = _ad_and_symbolic("x*exp(y)^2 + y^2", {"x": 0.5, "y": 2.0}, 1)
    assert forms == ["exp(y)^2"]
    _, forms = _ad_and_symbolic("x*no_grad(x*3)", {"x": 0.5}, 1)
    assert forms == ["1.5"]  # no_grad made a constant of x*3: its value, not x*3


def test_a_large_unnamed_constant_is_a_limit_error_and_a_named_one_is_used_by_name():
    s = _session()
    _bind(s, {"x": [0.5, 1.5]})
    y = s.run("sum(sin(x*reshape(linspace(0, 1, 2000), 1000, 2)))")
    with pytest.raises(AdcliError, match="too large to write as a literal") as info:
        s.symbolic_derivatives(y, ["x"], 1)
    assert info.value.kind == "limit"
    y = s.run("c = reshape(linspace(0, 1, 2000), 1000, 2); sum(x*c)")
    assert s.symbolic_derivatives(y, ["x"], 1)["x"] == ["reshape(sum(c, dim=0, keepdim=true), 2)"]


def test_fractions_are_written_as_fractions():
    _, forms = _ad_and_symbolic("mean(x^2)", {"x": [1.0, 2.0, 3.0]}, 1)
    assert forms == ["2/3*x"]


def test_symbolic_of_a_tape_recorded_without_inputs_says_so():
    s = Session(dtype="float64")
    s.run("x = tensor(2.0, requires_grad=true); y = x^3")
    with pytest.raises(AdcliError, match="recorded without its inputs"):
        s.symbolic_derivatives(s.lookup("y"), ["x"], 1)


# ----- the command line ---------------------------------------------------------------------
def _cli(args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_symbolic_human_output():
    code, out, _ = _cli(
        [
            "eval",
            "x^2 + x*y + y^2",
            "--at",
            "x=1.5",
            "--at",
            "y=2",
            "--wrt",
            "x",
            "--order",
            "2",
            "--symbolic",
        ]
    )
    assert code == 0
    assert "d/dx = 2*x + y" in out
    assert "d2/dx2 = 2" in out


def test_eval_symbolic_json_and_the_forms_evaluate_with_adcli_eval():
    at = ["--at", "x=0.75", "--at", "y=-1.25"]
    code, out, _ = _cli(
        [
            "--json",
            "eval",
            "exp(x*y)/(1 + x^2)",
            *at,
            "--wrt",
            "x",
            "--wrt",
            "y",
            "--order",
            "2",
            "--symbolic",
            "--dtype",
            "float64",
        ]
    )
    assert code == 0
    result = json.loads(out)
    assert set(result["symbolic"]) == {"x", "y"}
    for name in ("x", "y"):
        forms = result["symbolic"][name]
        assert len(forms) == 2
        for form, expected in zip(forms, result["derivatives"][name]):
            code, again, _ = _cli(["--json", "eval", form, *at, "--dtype", "float64"])
            assert code == 0, again
            assert json.loads(again)["value"] == pytest.approx(expected, rel=1e-12)


def test_symbolic_needs_wrt():
    code, _, err = _cli(["eval", "x^2", "--at", "x=1", "--symbolic"])
    assert code == 2
    assert "--wrt" in err


# ----- SymPy (the optional symbolic extra) ------------------------------------------------------
SCALAR_CORPUS = [c for c in CORPUS if all(shape == () for shape in c[1].values())]


@pytest.mark.parametrize(
    ("program", "shapes", "order"), SCALAR_CORPUS, ids=[c[0] for c in SCALAR_CORPUS]
)
def test_sympy_simplified_forms_still_evaluate_to_the_ad_value(program, shapes, order):
    pytest.importorskip("sympy")
    rng = np.random.default_rng(11)
    values = _random_values(shapes, rng)
    s = _session()
    _bind(s, values)
    y = s.run(program)
    ad = s.derivatives(y, ["x"], order, method="nested")["x"]
    forms = s.symbolic_derivatives(y, ["x"], order, simplify="sympy")["x"]
    for expected, form in zip(ad, forms):
        np.testing.assert_allclose(_run_form(form, values), expected.numpy(), rtol=1e-9)


def test_sympy_simplifies_further():
    pytest.importorskip("sympy")
    s = _session()
    _bind(s, {"x": 0.3})
    y = s.run("sin(x)^2 + cos(x)^2 + x")
    basic = s.symbolic_derivatives(y, ["x"], 1, simplify="basic")["x"][0]
    assert basic != "1"
    assert s.symbolic_derivatives(y, ["x"], 1, simplify="sympy")["x"] == ["1"]


def test_latex():
    pytest.importorskip("sympy")
    code, out, _ = _cli(
        ["--json", "eval", "sqrt(x^2 + 1)", "--at", "x=2", "--wrt", "x", "--symbolic", "--latex"]
    )
    assert code == 0
    assert json.loads(out)["latex"] == {"x": ["\\frac{x}{\\sqrt{x^{2} + 1}}"]}


def test_latex_without_sympy_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sympy(name, *args, **kwargs):
        if name.split(".")[0] == "sympy":
            raise ImportError("no sympy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sympy)
    code, _, err = _cli(["eval", "x^2", "--at", "x=2", "--wrt", "x", "--symbolic", "--latex"])
    assert code == 1
    assert "needs SymPy" in err and "adcli[symbolic]" in err
    code, out, _ = _cli(["eval", "x^2", "--at", "x=2", "--wrt", "x", "--symbolic"])
    assert code == 0 and "d/dx = 2*x" in out  # --symbolic alone works without SymPy


def test_latex_needs_symbolic():
    code, _, err = _cli(["eval", "x^2", "--at", "x=2", "--wrt", "x", "--latex"])
    assert code == 2
    assert "--symbolic" in err


def test_symbolic_in_the_repl_reads_what_earlier_entries_computed():
    entries = "x = tensor(2.0, requires_grad=true)\ny = x^3 + x\nsymbolic(y, x)\n"
    result = CliRunner().invoke(app, ["repl"], input=entries)
    assert result.exit_code == 0, result.stderr
    assert '"3*x^2 + 1"' in result.stdout
