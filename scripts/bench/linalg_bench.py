"""Workload 10: ``einsum`` and ``solve`` forward+backward at 512x512 float32.

adcli next to the same arithmetic written by hand in NumPy (the floor: one BLAS
call per product or solve), and next to PyTorch on the CPU when it is installed
(the issue's target: within 1.2x of PyTorch). Quick mode uses 64x64.
"""

from __future__ import annotations

import numpy as np
from harness import Case, Report, interleaved

import adcli.engine as E


def _reset(leaves):
    def before():
        for leaf in leaves:
            leaf.grad = None

    return before


def _adcli_cases(k: int, ha, hb, hg) -> list[Case]:
    a = E.tensor(ha, requires_grad=True)
    b = E.tensor(hb, requires_grad=True)
    g = E.tensor(hg)
    spd = E.tensor(ha @ ha.T + k * np.eye(k, dtype=np.float32), requires_grad=True)

    def einsum_run():
        out = E.einsum("ij,jk->ik", a, b)
        out.backward(g)
        return out

    def solve_run():
        out = E.solve(spd, b)
        out.backward(g)
        return out

    return [
        Case(f"adcli einsum {k}x{k}", einsum_run, _reset((a, b))),
        Case(f"adcli solve {k}x{k}", solve_run, _reset((spd, b))),
    ]


def _numpy_cases(k: int, ha, hb, hg) -> list[Case]:
    spd = ha @ ha.T + k * np.eye(k, dtype=np.float32)

    def einsum_run():
        out = np.einsum("ij,jk->ik", ha, hb, optimize=True)
        return (
            out,
            np.einsum("ik,jk->ij", hg, hb, optimize=True),
            np.einsum("ij,ik->jk", ha, hg, optimize=True),
        )

    def solve_run():
        x = np.linalg.solve(spd, hb)
        gb = np.linalg.solve(spd.T, hg)
        return x, gb, -(gb @ x.T)

    return [
        Case(f"numpy einsum {k}x{k}", einsum_run),
        Case(f"numpy solve {k}x{k}", solve_run),
    ]


def _torch_cases(torch, k: int, ha, hb, hg) -> list[Case]:
    a = torch.tensor(ha, requires_grad=True)
    b = torch.tensor(hb, requires_grad=True)
    g = torch.tensor(hg)
    spd = torch.tensor(ha @ ha.T + k * np.eye(k, dtype=np.float32), requires_grad=True)

    def einsum_run():
        out = torch.einsum("ij,jk->ik", a, b)
        out.backward(g)
        return out

    def solve_run():
        out = torch.linalg.solve(spd, b)
        out.backward(g)
        return out

    return [
        Case(f"torch einsum {k}x{k}", einsum_run, _reset((a, b))),
        Case(f"torch solve {k}x{k}", solve_run, _reset((spd, b))),
    ]


def linalg(s) -> Report:
    r = Report("linalg", "10. einsum and solve forward+backward (float32)")
    k = 64 if s.quick else 512
    rng = np.random.default_rng(10)
    ha = rng.standard_normal((k, k)).astype(np.float32)
    hb = rng.standard_normal((k, k)).astype(np.float32)
    hg = np.ones((k, k), np.float32)
    cases = _adcli_cases(k, ha, hb, hg) + _numpy_cases(k, ha, hb, hg)
    if s.torch is not None:
        cases += _torch_cases(s.torch, k, ha, hb, hg)
    else:
        r.skipped.append("PyTorch peer: torch is not installed (pip install 'adcli[bench]')")
    for name, st in interleaved(cases, s.reps(9), s.warm(2)).items():
        r.figure(name, st)
    for what in ("einsum", "solve"):
        tag = f"{what} {k}x{k}"
        r.compare(f"adcli/numpy {tag}", f"adcli {tag}", f"numpy {tag}", "numpy by hand")
        if s.torch is not None:
            limit = None if s.quick else 1.2
            r.compare(
                f"adcli/torch {tag}",
                f"adcli {tag}",
                f"torch {tag}",
                "torch",
                limit,
                "<= 1.2" if limit else "",
            )
    r.notes.append(
        "einsum 'ij,jk->ik' of two leaves, backward with ones; solve(A, B) with A symmetric "
        "positive definite, both leaves; numpy by hand does the same products and solves"
    )
    return r
