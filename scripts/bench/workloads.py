"""The workloads: each measures adcli next to its peers and returns a :class:`Report`.

Every comparison runs the contestants interleaved in one process (adcli, peer,
adcli, peer, ...), after warm-up, and keeps the median. Ratios are always
adcli / peer, so below 1 means adcli is faster (or smaller).
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from harness import (
    REPO,
    Case,
    Report,
    Stats,
    interleaved,
    numpy_blas_threads,
    openblas_thread_setter,
    python_env,
    torch_hidden_reason,
    wall_times,
)
from linalg_bench import linalg  # workload 10 lives in its own file

import adcli.engine as E
import adcli.lang.parser as adcli_parser
from adcli.lang.interpreter import Session

HERE = Path(__file__).resolve().parent


@dataclass
class Settings:
    """What the whole run was asked for."""

    quick: bool
    torch: object | None  # the torch module, or None
    cuda: bool = False

    def reps(self, full: int) -> int:
        return 2 if self.quick else full

    def warm(self, full: int = 2) -> int:
        return 1 if self.quick else full

    def inner(self, full: int) -> int:
        """Calls per sample for very short runs (fewer in quick mode)."""
        return max(1, full // 10) if self.quick else full


def _noop(_output) -> None:
    pass


def _no_torch(report: Report, what: str) -> None:
    report.skip(f"{what}: {torch_hidden_reason()}")


def _inner_for(n: int) -> int:
    """How many calls make one sample: enough that a sample lasts well over the clock's grain."""
    if n <= 100:
        return 200
    if n <= 10_000:
        return 20
    return 1


# ----- 1. per-op overhead ---------------------------------------------------------------------------

#: One line of the chain: four elementwise ops (mul, add, sin, sub) on a 1-element tensor.
CHAIN_LINE = "y = sin(y * 1.0001 + 0.0001) - 0.0001"
OPS_PER_LINE = 4


def _chain(sin, x, lines: int):
    y = x
    for _ in range(lines):
        y = sin(y * 1.0001 + 0.0001) - 0.0001
    return y


def chain_source(lines: int, backward: bool) -> str:
    """The chain as an ``.ad`` script (the same ops as :func:`_chain`)."""
    head = 'x = tensor([1.5], dtype="float64", requires_grad=true)\ny = x\n'
    tail = "y.backward()\n" if backward else ""
    return head + (CHAIN_LINE + "\n") * lines + tail


def torch_chain_source(lines: int) -> str:
    """The same chain as a Python script on PyTorch: the peer of ``adcli run`` on a script,
    since Python must parse and compile it just as adcli parses the ``.ad`` file."""
    head = "x = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)\ny = x\n"
    return head + ("y = torch.sin(y * 1.0001 + 0.0001) - 0.0001\n") * lines + "y.backward()\n"


class _Preparsed:
    """Run an already parsed program with ``Session.run_program``, to time interpretation
    alone; ``used`` says whether that was possible (a Session without it parses again)."""

    def __init__(self, source: str, filename: str = "<bench>") -> None:
        self.source = source
        self.filename = filename
        self.program = adcli_parser.parse(source, filename)
        self.used = False

    def run(self, session: Session):
        run_program = getattr(session, "run_program", None)
        if run_program is None:  # an older adcli: parsing is timed too
            return session.run(self.source, self.filename, emit=_noop)
        self.used = True
        return run_program(self.program, self.source, self.filename, emit=_noop)


class _SessionCase:
    """A case that runs a script in a fresh session each sample (made untimed)."""

    def __init__(self, source: str, preparsed: _Preparsed | None = None) -> None:
        self.source = source
        self.preparsed = preparsed
        self.session: Session | None = None

    def before(self) -> None:
        self.session = Session(dtype="float64")  # the old session (and its graph) dies here

    def run(self):
        if self.preparsed is not None:
            return self.preparsed.run(self.session)
        return self.session.run(self.source, "<bench>", emit=_noop)


def adcli_command() -> tuple[list[str], str]:
    """The ``adcli`` console script if on PATH, else ``python -m adcli``."""
    found = shutil.which("adcli")
    if found:
        return [found], found
    return [sys.executable, "-m", "adcli"], f"{sys.executable} -m adcli"


def _chain_cases(lib, sin, leaf, lines: int, ops: int) -> list[Case]:
    """Forward alone, and forward+backward (``.grad`` reset untimed), of one chain."""

    def fwd():
        return _chain(sin, leaf, lines)

    def fwd_bwd():
        y = _chain(sin, leaf, lines)
        y.backward()
        return y

    def reset():
        leaf.grad = None

    return [Case(f"{lib}.fwd ops={ops}", fwd), Case(f"{lib}.fwd_bwd ops={ops}", fwd_bwd, reset)]


def per_op(s: Settings) -> Report:
    r = Report("per_op", "1. Per-op overhead: chains of elementwise ops on 1-element float64")
    r.notes.append(
        f"each line is `{CHAIN_LINE}` ({OPS_PER_LINE} ops); the Python chains "
        "run the same ops through adcli.engine and torch"
    )
    cmd, cmd_text = adcli_command()
    r.extra["adcli_command"] = cmd_text
    if s.torch is None:
        _no_torch(r, "PyTorch eager chains")
    for ops in [400] if s.quick else [1_000, 10_000]:
        _per_op_size(s, r, ops, cmd)
    return r


def _per_op_size(s: Settings, r: Report, ops: int, cmd: list[str]) -> None:
    torch = s.torch
    lines = ops // OPS_PER_LINE
    x = E.tensor([1.5], dtype="float64", requires_grad=True)
    cases = _chain_cases("adcli.engine", E.sin, x, lines, ops)
    if torch is not None:
        xt = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)
        cases += _chain_cases("torch", torch.sin, xt, lines, ops)
    src_fwd, src_bwd = chain_source(lines, False), chain_source(lines, True)
    lang_fwd, lang_bwd = _SessionCase(src_fwd), _SessionCase(src_bwd)
    pre = _Preparsed(src_bwd)
    lang_interp = _SessionCase(src_bwd, pre)

    def parse_only():
        return adcli_parser.parse(src_bwd, "<bench>")

    if torch is not None:
        torch_src = torch_chain_source(lines)

        def torch_script():
            exec(compile(torch_src, "chain.py", "exec"), {"torch": torch})  # noqa: S102 - our own generated benchmark script

        cases.append(Case(f"torch.script.fwd_bwd ops={ops}", torch_script))
    cases += [
        Case(f"adcli.lang.fwd ops={ops}", lang_fwd.run, lang_fwd.before),
        Case(f"adcli.lang.fwd_bwd ops={ops}", lang_bwd.run, lang_bwd.before),
        Case(f"adcli.lang.interpret_only.fwd_bwd ops={ops}", lang_interp.run, lang_interp.before),
        Case(f"adcli.lang.parse ops={ops}", parse_only),
    ]
    stats = interleaved(cases, s.reps(9), s.warm(2))
    for name, st in stats.items():
        r.figure(name, st)
    if not pre.used:
        r.notes.append("could not bypass parsing in Session.run: interpret_only includes it")
    for kind in ("fwd", "fwd_bwd"):
        target = kind == "fwd_bwd"
        if torch is not None:
            r.compare(
                f"engine/torch {kind} ops={ops}",
                f"adcli.engine.{kind} ops={ops}",
                f"torch.{kind} ops={ops}",
                "torch eager",
                0.7 if target else None,
            )
            r.compare(
                f"lang(Session.run)/torch {kind} ops={ops}",
                f"adcli.lang.{kind} ops={ops}",
                f"torch.{kind} ops={ops}",
                "torch eager",
                1.0 if target else None,
            )
        else:
            r.show(f"adcli.engine.{kind} ops={ops}")
            r.show(f"adcli.lang.{kind} ops={ops}")
    if torch is not None:
        r.compare(
            f"lang(Session.run)/torch script (compile+run) fwd_bwd ops={ops}",
            f"adcli.lang.fwd_bwd ops={ops}",
            f"torch.script.fwd_bwd ops={ops}",
            "the same chain as a Python script on torch, compiled and run",
        )
        r.compare(
            f"lang interpret-only/torch fwd_bwd ops={ops}",
            f"adcli.lang.interpret_only.fwd_bwd ops={ops}",
            f"torch.fwd_bwd ops={ops}",
            "torch eager",
        )
    r.show(f"adcli.lang.parse ops={ops}")

    # `adcli run FILE` as a whole process, start-up included.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"chain_{ops}.ad"
        path.write_text(src_bwd, encoding="utf-8")
        walls = wall_times(
            {"run": [*cmd, "run", str(path)]},
            1 if s.quick else 5,
            warmup=0 if s.quick else 1,
            env=python_env(),
        )
    wall = walls["run"]
    label = f"adcli run FILE (subprocess wall) ops={ops}"
    if isinstance(wall, Stats):
        r.figure(label, wall)
        r.show(label)
    else:
        r.skip(f"{label}: the command failed ({wall})")


# ----- 2. the tutorial's norm -----------------------------------------------------------------------


def _one_thread(torch, run):
    """``run`` with torch on one thread, as NumPy's elementwise ops are."""

    def wrapped():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return run()
        finally:
            torch.set_num_threads(threads)

    return wrapped


def _host(n: int, dtype, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(dtype)


def _norm_fn(lib, x):
    def run():
        out = lib.sqrt(lib.sum(x**2))
        out.backward()
        return out

    return run


def norm(s: Settings, device: str = "cpu", report: Report | None = None) -> Report:
    r = report or Report("norm", "2. sqrt(sum(x^2)) forward+backward")
    on_gpu = device != "cpu"
    if on_gpu:
        sizes = [10**4, 10**6] if s.quick else [10**4, 10**6, 10**7, 10**8]
    else:
        sizes = [10, 1000] if s.quick else [10, 10**4, 10**6, 10**7]
    if s.torch is None:
        _no_torch(r, "PyTorch peer")
    for dtype in ("float32", "float64"):
        for n in sizes:
            if on_gpu and n == 10**8 and dtype == "float64":
                continue
            _norm_size(s, r, device, dtype, n)
    return r


def _norm_size(s: Settings, r: Report, device: str, dtype: str, n: int) -> None:
    torch = s.torch
    on_gpu = device != "cpu"
    sync_a, sync_t = _syncs(torch, on_gpu)
    host = _host(n, dtype, 0)
    inner = s.inner(_inner_for(n)) if not on_gpu else 1
    tag = f"{dtype} n={n:.0e}" if n > 10**4 else f"{dtype} n={n}"
    pre = "cuda.norm." if on_gpu else ""
    x = E.tensor(host, dtype=dtype, device=device, requires_grad=True)
    cases = [_resetting(f"{pre}adcli {tag}", _norm_fn(E, x), (x,), inner, sync_a)]
    one_thread = torch is not None and not on_gpu and n >= 10**6
    if torch is not None:
        xt = torch.tensor(host, device=device, requires_grad=True)
        torch_run = _norm_fn(torch, xt)
        cases.append(_resetting(f"{pre}torch {tag}", torch_run, (xt,), inner, sync_t))
        if one_thread:
            cases.append(_resetting(f"torch@1t {tag}", _one_thread(torch, torch_run), (xt,), inner))
    if not on_gpu:

        def numpy_floor():
            return host / np.sqrt(np.sum(host * host))

        cases.append(Case(f"numpy {tag}", numpy_floor, inner=inner))
    big = n >= 10**6
    stats = interleaved(cases, s.reps(9 if big else 11), s.warm(3 if big else 2))
    for name, st in stats.items():
        r.figure(name, st)
    if not on_gpu:
        limit = 1.2 if n == 10**7 else None
        r.compare(
            f"adcli/numpy {tag}",
            f"adcli {tag}",
            f"numpy {tag}",
            "numpy by hand",
            limit,
            "<= 1.2 at n=1e7" if limit else "",
        )
    if torch is not None:
        r.compare(f"{pre}adcli/torch {tag}", f"{pre}adcli {tag}", f"{pre}torch {tag}", "torch")
        if one_thread:
            r.compare(f"adcli/torch@1t {tag}", f"adcli {tag}", f"torch@1t {tag}", "torch, 1 thread")


def _syncs(torch, on_gpu: bool):
    if not on_gpu:
        return None, None
    import cupy

    sync_a = cupy.cuda.runtime.deviceSynchronize
    sync_t = torch.cuda.synchronize if torch is not None else None
    return sync_a, sync_t


# ----- 3. the tutorial's mixed expression ------------------------------------------------------------


def _resetting(name: str, run, leaves, inner: int = 1, sync=None) -> Case:
    """A case that runs ``run`` after setting the leaves' ``.grad`` to None: untimed when one
    call makes a sample, else inside the loop (tiny tensors: the reset costs nothing)."""

    def reset():
        for leaf in leaves:
            leaf.grad = None

    if inner == 1:
        return Case(name, run, reset, sync)

    def reset_and_run():
        reset()
        return run()

    return Case(name, reset_and_run, None, sync, inner)


def _mixed_fn(lib):
    def run(x, y, z):
        out = lib.mean(lib.log(x**2 + y**2) + z * x * y)
        out.backward()
        return out

    return run


def mixed(s: Settings, device: str = "cpu", report: Report | None = None) -> Report:
    r = report or Report("mixed", "3. mean(log(x^2 + y^2) + z*x*y), x and y require grad")
    on_gpu = device != "cpu"
    if on_gpu:
        sizes = [10**4] if s.quick else [10**6, 10**7]
    else:
        sizes = [10**4] if s.quick else [10**6]
    if s.torch is None:
        _no_torch(r, "PyTorch peer")
    for n in sizes:
        _mixed_size(s, r, device, n)
    return r


def _mixed_size(s: Settings, r: Report, device: str, n: int) -> None:
    torch = s.torch
    on_gpu = device != "cpu"
    sync_a, sync_t = _syncs(torch, on_gpu)
    pre = "cuda.mixed." if on_gpu else ""
    dtype = "float32"
    hx, hy, hz = (_host(n, dtype, seed) for seed in (1, 2, 3))
    tag = f"{dtype} n={n:.0e}"
    x = E.tensor(hx, dtype=dtype, device=device, requires_grad=True)
    y = E.tensor(hy, dtype=dtype, device=device, requires_grad=True)
    z = E.tensor(hz, dtype=dtype, device=device)
    adcli_fn = _mixed_fn(E)
    cases = [_resetting(f"{pre}adcli {tag}", lambda: adcli_fn(x, y, z), (x, y), sync=sync_a)]
    if torch is not None:
        xt = torch.tensor(hx, device=device, requires_grad=True)
        yt = torch.tensor(hy, device=device, requires_grad=True)
        zt = torch.tensor(hz, device=device)
        torch_fn = _mixed_fn(torch)

        def torch_run():
            return torch_fn(xt, yt, zt)

        cases.append(_resetting(f"{pre}torch {tag}", torch_run, (xt, yt), sync=sync_t))
        if not on_gpu:
            cases.append(_resetting(f"torch@1t {tag}", _one_thread(torch, torch_run), (xt, yt)))
    if not on_gpu:

        def numpy_floor():
            s2 = hx * hx + hy * hy
            value = np.mean(np.log(s2) + hz * hx * hy)
            gx = (2 * hx / s2 + hz * hy) / n
            gy = (2 * hy / s2 + hz * hx) / n
            return value, gx, gy

        cases.append(Case(f"numpy {tag}", numpy_floor))
    stats = interleaved(cases, s.reps(9), s.warm(2))
    for name, st in stats.items():
        r.figure(name, st)
    if torch is not None:
        r.compare(f"{pre}adcli/torch {tag}", f"{pre}adcli {tag}", f"{pre}torch {tag}", "torch")
        if not on_gpu:
            r.compare(f"adcli/torch@1t {tag}", f"adcli {tag}", f"torch@1t {tag}", "torch, 1 thread")
    if not on_gpu:
        r.compare(f"adcli/numpy {tag}", f"adcli {tag}", f"numpy {tag}", "numpy by hand")


# ----- 4. matrix product ---------------------------------------------------------------------------


def mm(s: Settings, device: str = "cpu", report: Report | None = None) -> Report:
    r = report or Report("mm", "4. mm(a, b) forward+backward (float32, both require grad)")
    torch = s.torch
    on_gpu = device != "cpu"
    if on_gpu:
        sizes = [2, 512] if s.quick else [2, 512, 1024, 4096]
    else:
        sizes = [2, 32] if s.quick else [2, 512, 1024]
    np_threads = numpy_blas_threads()
    if torch is None:
        _no_torch(r, "PyTorch peer")
    elif not on_gpu:
        default = torch.get_num_threads()
        r.extra["threads"] = {"numpy_blas": np_threads, "torch_default": default}
        if default != np_threads:
            r.notes.append(
                f"torch uses {default} threads by default, NumPy's BLAS {np_threads}: "
                f"the headline is torch at {np_threads} threads (same as NumPy); "
                "torch at its default is shown too"
            )
        else:
            r.notes.append(
                f"torch and NumPy's BLAS both use {default} threads: the headline "
                "compares them as they are; the 1-thread pair (512 and up) is a "
                "check that does not suffer when another process holds a core"
            )
    for k in sizes:
        _mm_size(s, r, device, k, np_threads)
    return r


def _mm_fn(lib, gradient):
    def run(a, b):
        out = lib.mm(a, b)
        out.backward(gradient)
        return out

    return run


def _with_torch_threads(torch, run, threads: int):
    def wrapped():
        default = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return run()
        finally:
            torch.set_num_threads(default)

    return wrapped


def _with_blas_threads(set_blas, run, threads: int, restore: int):
    def wrapped():
        set_blas(threads)
        try:
            return run()
        finally:
            set_blas(restore)

    return wrapped


def _mm_size(s: Settings, r: Report, device: str, k: int, np_threads: int) -> None:
    torch = s.torch
    on_gpu = device != "cpu"
    sync_a, sync_t = _syncs(torch, on_gpu)
    pre = "cuda.mm." if on_gpu else ""
    tag = f"float32 {k}x{k}"
    ha, hb = _host(k * k, "float32", 4).reshape(k, k), _host(k * k, "float32", 5).reshape(k, k)
    hg = np.ones((k, k), np.float32)
    a = E.tensor(ha, device=device, requires_grad=True)
    b = E.tensor(hb, device=device, requires_grad=True)
    adcli_fn = _mm_fn(E, E.tensor(hg, device=device))
    if on_gpu:
        inner = 50 if k <= 4 else 1
    else:
        inner = s.inner(500 if k <= 4 else (20 if k <= 64 else 1))

    def adcli_run():
        return adcli_fn(a, b)

    cases = [_resetting(f"{pre}adcli {tag}", adcli_run, (a, b), inner, sync_a)]
    torch_threads_differ = False
    if torch is not None:
        at = torch.tensor(ha, device=device, requires_grad=True)
        bt = torch.tensor(hb, device=device, requires_grad=True)
        torch_fn = _mm_fn(torch, torch.tensor(hg, device=device))

        def torch_run():
            return torch_fn(at, bt)

        cases.append(_resetting(f"{pre}torch {tag}", torch_run, (at, bt), inner, sync_t))
        torch_threads_differ = not on_gpu and torch.get_num_threads() != np_threads
        if torch_threads_differ:
            cases.append(
                _resetting(
                    f"torch@{np_threads}t {tag}",
                    _with_torch_threads(torch, torch_run, np_threads),
                    (at, bt),
                    inner,
                )
            )
    if not on_gpu:

        def numpy_floor():
            return ha @ hb, hg @ hb.T, ha.T @ hg

        cases.append(Case(f"numpy {tag}", numpy_floor, inner=inner))
    set_blas = openblas_thread_setter() if not on_gpu else None
    big = k >= 512
    stats = interleaved(cases, s.reps(11 if big else 9), s.warm(2))
    single = not on_gpu and k >= 512 and torch is not None and set_blas is not None
    if single:
        # Both on one thread, as a group of their own (after the multi-threaded runs, whose
        # idle BLAS/OpenMP workers may still spin for a while): a check that a second core
        # held by another process cannot stall.
        time.sleep(0.5)
        stats.update(
            interleaved(
                [
                    _resetting(
                        f"adcli@1t {tag}",
                        _with_blas_threads(set_blas, adcli_run, 1, np_threads),
                        (a, b),
                    ),
                    _resetting(
                        f"torch@1t {tag}", _with_torch_threads(torch, torch_run, 1), (at, bt)
                    ),
                ],
                s.reps(11),
                s.warm(2),
            )
        )
    for name, st in stats.items():
        r.figure(name, st)
    if torch is not None:
        limit = 1.1 if (k == 1024 and not on_gpu) else None
        text = "<= 1.1 at 1024" if limit else ""
        if not torch_threads_differ:
            r.compare(
                f"{pre}adcli/torch {tag}",
                f"{pre}adcli {tag}",
                f"{pre}torch {tag}",
                "torch",
                limit,
                text,
            )
        else:
            r.compare(
                f"adcli/torch@{np_threads}t {tag} (headline)",
                f"adcli {tag}",
                f"torch@{np_threads}t {tag}",
                f"torch {np_threads} threads",
                limit,
                text,
            )
            r.compare(
                f"adcli/torch default threads {tag}",
                f"adcli {tag}",
                f"torch {tag}",
                "torch default threads",
            )
    if not on_gpu:
        r.compare(f"adcli/numpy {tag}", f"adcli {tag}", f"numpy {tag}", "numpy by hand")
    if single:
        r.compare(
            f"adcli@1t/torch@1t {tag}", f"adcli@1t {tag}", f"torch@1t {tag}", "torch, 1 thread each"
        )


# ----- 5. nth derivatives ---------------------------------------------------------------------------


def _graph_size_adcli(t) -> int:
    """Nodes reachable from ``t.grad_fn`` (op nodes and leaf accumulators)."""
    return _reachable(t.grad_fn, lambda node: node.next)


def _graph_size_torch(t) -> int:
    return _reachable(t.grad_fn, lambda node: [n for n, _ in node.next_functions])


def _reachable(root, children) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(children(node))
    return len(seen)


def _flatten_numbers(value, prefix: str, out: dict) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        out[prefix] = float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _flatten_numbers(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _flatten_numbers(v, f"{prefix}[{i}]", out)


_NTH_CHILD = r"""
import json, os, sys, warnings
sys.path[:0] = [sys.argv[1], sys.argv[2]]
if os.environ.get("ADCLI_BENCH_NO_TORCH", "") not in ("", "0"):
    sys.modules["torch"] = None  # act as if PyTorch were not installed
import numpy as np
import nth_order
with np.errstate(all="ignore"), warnings.catch_warnings():
    warnings.simplefilter("ignore")  # overflow at high orders is that benchmark's business
    result = nth_order.run(quick=sys.argv[3] == "1")
print(json.dumps(result, default=str))
"""


def _big_stack() -> None:
    """In the child: the largest C stack allowed. Freeing PyTorch's order-10 nested graph
    (~2M nodes) overflows the default 8 MiB stack (SIGSEGV in libtorch_cpu)."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    try:
        resource.setrlimit(resource.RLIMIT_STACK, (hard, hard))
    except (ValueError, OSError):
        pass


def _nth_order_in_child(quick: bool) -> dict:
    """nth_order.run(quick) in a fresh process: its deep graphs (10^5+ nodes, GBs) and any
    crash in a peer's native code stay out of this one."""
    timeout = 120 if quick else 300
    proc = subprocess.run(
        [sys.executable, "-c", _NTH_CHILD, str(HERE), str(REPO), "1" if quick else "0"],
        capture_output=True,
        text=True,
        env=python_env(),
        cwd=REPO,
        timeout=timeout,
        preexec_fn=_big_stack,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"child exited with {proc.returncode}: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def nth_order(s: Settings) -> Report:
    r = Report("nth_order", "5. nth derivative of log(x^2 + 1) * sqrt(x^2 + 1), orders 1..8")
    external = HERE / "nth_order.py"
    if external.exists():
        try:
            result = _nth_order_in_child(s.quick)
            r.extra["source"] = "scripts/bench/nth_order.py (its own figures: best of repeats)"
            r.extra["nth_order_result"] = result
            if isinstance(result.get("methods"), dict):
                _nth_external(r, result)
            else:
                numbers: dict[str, float] = {}
                _flatten_numbers(result, "", numbers)
                if not numbers:
                    raise ValueError("nth_order.run returned no numbers")
                for label, value in numbers.items():
                    r.figure(label, value, "s" if label.endswith("_s") else "value")
                    r.show(label)
            return r
        except Exception as exc:  # noqa: BLE001 - fall back, and say why
            r.notes.append(
                f"scripts/bench/nth_order.py failed ({type(exc).__name__}: {exc}); "
                "used the runner's own nested-grad measurement"
            )
    else:
        r.notes.append(
            "scripts/bench/nth_order.py not present: the runner's own nested-grad "
            "measurement (grad of the sum, create_graph=True, order by order)"
        )
    r.extra["source"] = "run.py fallback: nested reverse mode"
    return _nth_fallback(s, r)


def _nth_external(r: Report, result: dict) -> None:
    """Figures and ratios from nth_order.run(): methods -> [{order, seconds, nodes}]."""
    methods = result["methods"]
    r.notes.append(
        f"{result.get('elements')} elements, {result.get('dtype')}; each time is "
        "from scratch (fresh leaf, f, then the derivative of that order)"
    )
    for method, rows in methods.items():
        for row in rows:
            order = row["order"]
            r.figure(f"{method} time order={order}", row["seconds"])
            if row.get("nodes") is not None:
                r.figure(f"{method} graph order={order}", row["nodes"], "nodes")
    peer = "torch-nested"
    if peer not in methods:
        r.skip(f"PyTorch nested grads: {result.get('torch', torch_hidden_reason())}")
    shown = {row["order"] for row in methods.get("adcli-nested", [])} | set(range(1, 9))
    for method in methods:
        if method == peer:
            continue
        for row in methods[method]:
            order = row["order"]
            ours, theirs = f"{method} time order={order}", f"{peer} time order={order}"
            if theirs in r.figures:
                limit = 0.1 if (method == "adcli-taylor" and order == 8) else None
                r.compare(
                    f"{method}/torch time order={order}",
                    ours,
                    theirs,
                    "torch nested",
                    limit,
                    ">= 10x faster (nth_order.py's target)" if limit else "",
                )
                g_ours, g_theirs = f"{method} graph order={order}", f"{peer} graph order={order}"
                if g_ours in r.figures and g_theirs in r.figures:
                    r.compare(
                        f"{method}/torch graph order={order}", g_ours, g_theirs, "torch nested"
                    )
            elif order in shown or order in (10, 20, 50):
                r.show(ours)
    summary = result.get("summary") or {}
    for key, value in summary.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            r.figure(f"summary.{key}", value, "s" if key.endswith("_s") else "value")
    if "summary.taylor_order_20_s" in r.figures:
        met = r.absolute_target(
            "taylor order 20 < 0.25 s (nth_order.py's target)",
            "summary.taylor_order_20_s",
            0.25,
            "< 0.25 s",
        )
        r.show("summary.taylor_order_20_s", target="< 0.25 s", met=met)


def _nth_fallback(s: Settings, r: Report) -> Report:
    torch = s.torch
    n = 100 if s.quick else 1000
    orders = 4 if s.quick else 8
    host = _host(n, "float64", 6)
    r.notes.append(
        f"n={n} float64; time per order = one more grad(sum(D[k-1]), x, "
        "create_graph=True) given D[k-1]; graph size = nodes reachable from D[k]"
    )
    if torch is None:
        _no_torch(r, "PyTorch peer")

    def adcli_orders():
        x = E.tensor(host, dtype="float64", requires_grad=True)
        u = x**2 + 1
        current = E.log(u) * E.sqrt(u)
        for _ in range(orders):
            current = E.grad(E.sum(current), x, create_graph=True)
            yield current

    def torch_orders():
        x = torch.tensor(host, requires_grad=True)
        u = x**2 + 1
        current = torch.log(u) * torch.sqrt(u)
        for _ in range(orders):
            (current,) = torch.autograd.grad(current.sum(), x, create_graph=True)
            yield current

    contestants = {"adcli": (adcli_orders, _graph_size_adcli)}
    if torch is not None:
        contestants["torch"] = (torch_orders, _graph_size_torch)

    times: dict[str, list[list[float]]] = {
        name: [[] for _ in range(orders)] for name in contestants
    }
    sizes: dict[str, list[int]] = {}
    repeats = s.reps(3)
    for round_ in range(repeats + 1):  # round 0 is the warm-up (and counts the graphs)
        for name, (orders_of, size_of) in contestants.items():
            gc.collect()
            steps = orders_of()
            found = []
            for k in range(orders):
                start = time.perf_counter()
                d = next(steps)
                elapsed = time.perf_counter() - start
                if round_ == 0:
                    found.append(size_of(d))
                else:
                    times[name][k].append(elapsed)
            if round_ == 0:
                sizes[name] = found
            del steps, d
    for k in range(orders):
        order = k + 1
        for name in contestants:
            r.figure(f"{name} time order={order}", Stats(times[name][k]))
            r.figure(f"{name} graph order={order}", sizes[name][k], "nodes")
            cumulative = sum(Stats(times[name][j]).median for j in range(order))
            r.figure(f"{name} cumulative time order={order}", cumulative)
        if torch is not None:
            r.compare(
                f"adcli/torch time order={order}",
                f"adcli time order={order}",
                f"torch time order={order}",
                "torch",
            )
            r.compare(
                f"adcli/torch graph order={order}",
                f"adcli graph order={order}",
                f"torch graph order={order}",
                "torch",
            )
        else:
            r.show(f"adcli time order={order}")
            r.show(f"adcli graph order={order}")
    return r


# ----- 6. start-up -----------------------------------------------------------------------------------


def startup(s: Settings) -> Report:
    r = Report("startup", '6. Start-up: `adcli eval "1+1"` wall time')
    cmd, text = adcli_command()
    r.extra["adcli_command"] = text
    py = sys.executable
    commands = {
        "adcli eval 1+1": [*cmd, "eval", "1+1"],
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import numpy'": [py, "-c", "import numpy"],
    }
    if s.torch is not None:
        commands["python -c 'import torch'"] = [py, "-c", "import torch"]
    else:
        _no_torch(r, "`python -c 'import torch'`")
    walls = wall_times(commands, 1 if s.quick else 7, warmup=0 if s.quick else 1, env=python_env())
    for name, st in walls.items():
        if isinstance(st, Stats):
            r.figure(name, st)
        else:
            r.skip(f"{name}: failed ({st})")
    if "adcli eval 1+1" in r.figures:
        if "python -c 'import torch'" in r.figures:
            r.compare(
                "adcli eval / import torch",
                "adcli eval 1+1",
                "python -c 'import torch'",
                "python -c 'import torch'",
            )
        met = r.absolute_target("adcli eval 1+1 <= 0.25 s", "adcli eval 1+1", 0.25, "<= 0.25 s")
        r.show("adcli eval 1+1", "python -c pass", "python -c pass", "<= 0.25 s", met)
    r.show("python -c 'import numpy'")
    return r


# ----- 7. peak memory ----------------------------------------------------------------------------------

_MEMORY_CHILD = r"""
import json, sys
import numpy as np

def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out

who, n = sys.argv[1], int(sys.argv[2])
# Import and warm the library first (lazy imports, first-call caches).
if who == "adcli":
    import adcli.engine as E
    w = E.Tensor(np.ones(10, np.float32), requires_grad=True)
    E.sqrt(E.sum(w ** 2)).backward()
elif who == "torch":
    import torch
    w = torch.ones(10, requires_grad=True)
    torch.sqrt(torch.sum(w ** 2)).backward()
# The input, made in place (no temporaries that would raise the high-water mark).
arr = np.empty(n, np.float32)
np.random.default_rng(0).standard_normal(out=arr, dtype=np.float32)
if who == "adcli":
    x = E.Tensor(arr, requires_grad=True)
    def step():
        out = E.sqrt(E.sum(x ** 2)); out.backward(); return out
elif who == "torch":
    x = torch.from_numpy(arr).requires_grad_()
    def step():
        out = torch.sqrt(torch.sum(x ** 2)); out.backward(); return out
else:
    def step():
        return arr / np.sqrt(np.sum(arr * arr))
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    reset = True
except OSError:
    reset = False
before = status()
kept = step()
after = status()
print(json.dumps({"rss_before": before["VmRSS"], "hwm_before": before["VmHWM"],
                  "hwm_after": after["VmHWM"], "rss_after": after["VmRSS"],
                  "hwm_reset": reset, "input_bytes": arr.nbytes}))
"""


def memory(s: Settings) -> Report:
    r = Report("memory", "7. Peak memory of sqrt(sum(x^2)) fwd+bwd, float32, fresh process each")
    n = 10**6 if s.quick else 10**7
    r.notes.append(
        f"n={n:.0e}; peak = VmHWM after one fwd+bwd minus VmRSS after creating the "
        "input (VmHWM reset via /proc/self/clear_refs where allowed), in units of "
        "the input's size; the resulting .grad (1 array) is included"
    )
    who = ["adcli", "numpy"]
    if s.torch is not None:
        who.insert(1, "torch")
    else:
        _no_torch(r, "PyTorch peak memory")
    for name in who:
        proc = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, name, str(n)],
            capture_output=True,
            text=True,
            env=python_env(),
            cwd=REPO,
            check=False,
        )
        if proc.returncode != 0:
            r.skip(f"{name}: child failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        m = json.loads(proc.stdout.strip().splitlines()[-1])
        baseline = m["rss_before"]
        if not m["hwm_reset"]:
            baseline = max(baseline, m["hwm_before"])
            r.notes.append(
                f"{name}: VmHWM could not be reset; baseline is the earlier high-water "
                "mark, so the peak may be understated"
            )
        peak = max(0, m["hwm_after"] - baseline)
        label = "numpy by hand" if name == "numpy" else name
        r.figure(f"{label} peak", peak, "bytes")
        r.figure(f"{label} peak in inputs", peak / m["input_bytes"], "arrays")
        r.extra.setdefault("raw", {})[name] = m
    if "adcli peak in inputs" in r.figures:
        if "torch peak in inputs" in r.figures:
            torch_arrays = r.value("torch peak in inputs")
            r.compare(
                "adcli/torch peak",
                "adcli peak in inputs",
                "torch peak in inputs",
                "torch",
                1.0,
                f"<= torch ({torch_arrays:.2f}); aim 2",
            )
        r.absolute_target("adcli peak <= 2 arrays (aim)", "adcli peak in inputs", 2.0, "aim <= 2")
        r.show(
            "adcli peak in inputs",
            "numpy by hand",
            "numpy by hand peak in inputs",
            "aim <= 2",
            r.value("adcli peak in inputs") <= 2.0,
        )
    return r


# ----- 8. the interpreter ----------------------------------------------------------------------------


def interpreter(s: Settings) -> Report:
    r = Report("interpreter", "8. Parsing and interpreting a long script")
    lines = 500 if s.quick else 10_000
    line = "x = x * 1.0001 + 0.0001"
    head = 'x0 = tensor([1.5], dtype="float64", requires_grad=true)\nx = x0\n'
    source = head + (line + "\n") * lines + "x.backward()\n"
    r.notes.append(
        f"{lines} lines of `{line}` (2 ops each) and a backward; interpretation "
        "timed on the pre-parsed program; the engine runs the same loop from Python"
    )
    pre = _Preparsed(source)
    interp = _SessionCase(source, pre)
    whole = _SessionCase(source)
    x0 = E.tensor([1.5], dtype="float64", requires_grad=True)

    def engine_direct():
        x = x0
        for _ in range(lines):
            x = x * 1.0001 + 0.0001
        x.backward()
        return x

    def reset():
        x0.grad = None

    cases = [
        Case("parse", lambda: adcli_parser.parse(source, "<bench>")),
        Case("interpret (pre-parsed)", interp.run, interp.before),
        Case("engine from Python", engine_direct, reset),
        Case("Session.run (parse + interpret)", whole.run, whole.before),
    ]
    stats = interleaved(cases, s.reps(5), s.warm(1))
    for name, st in stats.items():
        r.figure(name, st)
    if not pre.used:
        r.notes.append("could not bypass parsing in Session.run: 'interpret' includes parsing")
    met = r.absolute_target("parse < 0.5 s", "parse", 0.5, "< 0.5 s")
    r.show("parse", target="< 0.5 s", met=met)
    r.compare(
        "interpreter/engine",
        "interpret (pre-parsed)",
        "engine from Python",
        "engine from Python",
        1.3,
    )
    r.compare(
        "Session.run/engine",
        "Session.run (parse + interpret)",
        "engine from Python",
        "engine from Python",
    )
    return r


# ----- 9. CUDA -----------------------------------------------------------------------------------------


def cuda(s: Settings) -> Report:
    r = Report("cuda", "9. Workloads 2-4 on cuda, against PyTorch CUDA")
    if not s.cuda:
        r.skip("not requested (pass --cuda on a machine with a GPU)")
        return r
    from adcli.backend import cuda_available

    if not cuda_available():
        r.skip("no usable CUDA device for adcli (CuPy missing or no GPU)")
        return r
    torch = s.torch
    if torch is not None and not torch.cuda.is_available():
        r.skip("torch is installed without CUDA (or sees no GPU): adcli timed alone")
        s = Settings(s.quick, None, True)
    elif torch is None:
        _no_torch(r, "PyTorch CUDA peer")
    import cupy

    r.extra["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    r.extra["cupy"] = cupy.__version__
    if torch is not None and s.torch is not None:
        r.extra["torch_allow_tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
    r.notes.append(
        "each sample ends with a device synchronize (CuPy / torch.cuda), so it is "
        "the whole fwd+bwd; small sizes measure launch and Python overhead"
    )
    for workload in (norm, mixed, mm):
        workload(s, device="cuda", report=r)
    return r


WORKLOADS = {
    "per_op": per_op,
    "norm": norm,
    "mixed": mixed,
    "mm": mm,
    "nth_order": nth_order,
    "startup": startup,
    "memory": memory,
    "interpreter": interpreter,
    "cuda": cuda,
    "linalg": linalg,
}
