"""adcli in a hostile environment: faults injected the way a user's machine or a CI runner
would, not into the program. Symlinks to secrets, endless lines, control characters, full
disks, closed descriptors, broken history files, odd encodings and terminal widths, Ctrl-C.

Each test runs the real ``python -m adcli`` unless it needs to look inside."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_driver import REPO, subprocess_env, via_runner

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def adcli(*args, input=None, env=None, cwd=None, timeout=120, **popen):
    """Run ``python -m adcli ARGS``; returns (exit code, stdout, stderr) as text."""
    stdin = popen.pop("stdin", subprocess.PIPE if input is not None else subprocess.DEVNULL)
    proc = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
        [sys.executable, "-m", "adcli", *args],
        input=input.encode() if isinstance(input, str) else input,
        stdin=None if input is not None else stdin,
        capture_output="stdout" not in popen and "stderr" not in popen,
        env=subprocess_env(env),
        cwd=cwd or REPO,
        timeout=timeout,
        **popen,
    )
    decode = lambda b: (b or b"").decode("utf-8", "replace")
    return proc.returncode, decode(proc.stdout), decode(proc.stderr)


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text
        assert "internal error" not in text, text


# --------------------------------------------------------------------------- imports: security
def test_import_of_a_symlink_to_a_secret_is_refused_without_reading_it(tmp_path):
    (tmp_path / "secret.txt").write_text("TOKEN=hunter2-top-secret\n")
    (tmp_path / "notes.ad").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "main.ad").write_text('import "notes.ad"\n1\n')
    for command in ("run", "check"):
        code, out, err = adcli(command, "main.ad", cwd=tmp_path)
        assert code == 1
        assert "hunter2" not in out + err
        assert "cannot import 'notes.ad': it leads to 'secret.txt', which is not a .ad file" in err
        no_traceback(err)


def test_import_of_a_symlink_to_the_environment_is_refused(tmp_path):
    (tmp_path / "env.ad").symlink_to("/proc/self/environ")
    (tmp_path / "main.ad").write_text('import "env.ad"\n')
    code, out, err = adcli("run", "main.ad", cwd=tmp_path, env={"ADCLI_CANARY": "canary-4711"})
    assert code == 1
    assert "canary-4711" not in out + err
    assert "which is not a .ad file" in err


def test_import_of_a_fifo_named_ad_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "pipe.ad")
    (tmp_path / "main.ad").write_text('import "pipe.ad"\n')
    for command in ("run", "check"):
        code, _, err = adcli(command, "main.ad", cwd=tmp_path, timeout=60)
        assert code == 1
        assert "cannot import 'pipe.ad': not a regular file" in err


def test_a_file_that_fails_to_parse_shows_only_its_caret_line(tmp_path):
    lines = [f"secret_{i} = {i}" for i in range(20)]
    lines[10] = "secret_10 = 10 $"  # a stray character: the error is on this line
    (tmp_path / "lib.ad").write_text("\n".join(lines) + "\n")
    (tmp_path / "main.ad").write_text('import "lib.ad"\n')
    code, out, err = adcli("run", "main.ad", cwd=tmp_path)
    assert code == 1
    shown = [line for line in (out + err).splitlines() if "secret_" in line]
    assert shown == ["secret_10 = 10 $"], err  # the caret's own line, and nothing else


# --------------------------------------------------------------------------- bounded, escaped errors
def test_a_huge_line_with_a_syntax_error_gives_a_short_error(tmp_path):
    script = tmp_path / "long.ad"
    script.write_text("x = " + "1 + " * 500_000 + "* 2\n")  # 2 MB on one line, an error at its end
    code, _, err = adcli("run", str(script))
    assert code == 1
    assert len(err) < 2_000, len(err)
    source, caret = err.splitlines()[1:3]
    assert source.startswith("...") and len(source) < 200
    assert source[caret.index("^")] == "*"  # the caret still points at the culprit
    code, out, _ = adcli("--json", "run", str(script))
    assert len(out) < 2_000


def test_a_huge_name_is_cut_in_the_message(tmp_path):
    (tmp_path / "name.ad").write_text("1 + " + "v" * 1_000_000 + "\n")
    code, _out, err = adcli("run", str(tmp_path / "name.ad"))
    assert code == 1
    assert len(err) < 2_000
    assert "vvv...vvv" in err


def test_control_characters_in_source_are_escaped_in_error_snippets(tmp_path):
    script = tmp_path / "evil.ad"
    script.write_bytes(b'x = "\x1b]0;PWNED\x07\x1b[2J" + nope\n')
    for args in (("run", str(script)), ("check", str(script))):
        code, _out, err = adcli(*args)
        assert code == 1
        assert "\x1b" not in err and "\x07" not in err
        assert "\\x1b]0;PWNED\\x07" in err
        source, caret = err.splitlines()[1:3]
        assert source[caret.index("^") :].startswith("nope")


def test_the_caret_lands_under_the_culprit_after_wide_characters():
    code, _, err = adcli("eval", '"数学" + 中')
    assert code == 1
    source, caret = err.splitlines()[1:3]
    import unicodedata

    def width(text):
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    position = caret.index("^")
    culprit = source.index("中")
    assert position == width(source[:culprit])


# --------------------------------------------------------------------------- reports never lost
@pytest.fixture
def scripts(tmp_path):
    (tmp_path / "ok.ad").write_text('print("ran ok")\n1 + 1\n')
    (tmp_path / "bad.ad").write_text('y = 2\nassert y == 3, "y is not 3"\n')
    return tmp_path


def _limit_file_size(size: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_junit_on_a_full_disk_keeps_the_previous_report_and_leaves_no_temporary_file(scripts):
    report = scripts / "report.xml"
    code, *_ = adcli("run", "ok.ad", "--junit", str(report), cwd=scripts)
    assert code == 0
    previous = report.read_bytes()
    ET.fromstring(previous)
    # Fill the disk: no file may grow past 200 bytes (ulimit -f); the report is bigger.
    many = [f"s{i}.ad" for i in range(20)]
    for name in many:
        (scripts / name).write_text("1\n")
    code, _out, err = adcli(
        "run", *many, "--quiet", "--junit", str(report), cwd=scripts,
        preexec_fn=_limit_file_size(200),
    )  # fmt: skip
    assert code == 1
    assert "cannot write the JUnit report" in err and err.count("\n") == 1, err
    no_traceback(err)
    assert report.read_bytes() == previous
    assert sorted(p.name for p in scripts.iterdir() if p.name.startswith(".")) == []


def test_junit_path_is_checked_before_any_script_runs(scripts):
    for path in ("/proc/adcli-report.xml", str(scripts / "ok.ad" / "r.xml"), str(scripts)):
        code, out, err = adcli("run", "ok.ad", "--junit", path, cwd=scripts)
        assert code == 2, err
        assert "ran ok" not in out
        no_traceback(err)


@pytest.mark.skipif(IS_ROOT, reason="root may write into a read-only folder")
def test_junit_into_a_read_only_folder_is_a_usage_error(scripts):
    folder = scripts / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, out, _err = adcli("run", "ok.ad", "--junit", str(folder / "r.xml"), cwd=scripts)
    finally:
        folder.chmod(0o755)
    assert code == 2 and "ran ok" not in out


def test_junit_failure_text_is_the_full_error_and_the_file_ends_in_a_newline(scripts):
    report = scripts / "r.xml"
    adcli("run", "ok.ad", "bad.ad", "--junit", str(report), cwd=scripts)
    data = report.read_bytes()
    assert data.endswith(b"\n")
    failure = ET.fromstring(data).find("testcase/failure")
    assert failure.text.splitlines()[:3] == [
        "bad.ad:2:1: error: y is not 3",
        'assert y == 3, "y is not 3"',
        "^~~~~~~~~~~~~~~~~~~~~~~~~~~",
    ]
    assert oct(report.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


# --------------------------------------------------------------------------- output that cannot be written
def test_a_full_stdout_is_one_clear_error_line():
    with open("/dev/full", "w") as full:
        code, _, err = adcli("eval", "1+1", stdout=full, stderr=subprocess.PIPE)
    assert code == 1
    assert err == "adcli: error: cannot write standard output: No space left on device\n"


def test_a_closed_stdout_is_an_error_not_a_silent_success():
    code, _, err = adcli("eval", "1+1", stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert code == 1
    assert err.startswith("adcli: error: cannot write standard output:")
    no_traceback(err)


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "adcli", "run", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
    )
    proc.stdout.close()
    _, err = proc.communicate(b'print("spam")\n' * 5000, timeout=120)
    assert err == b""
    assert proc.returncode == 1


def test_a_warning_that_cannot_be_written_costs_no_value():
    program = "x = tensor(1.0, requires_grad=true); d = grad(sum(exp(x)), x, order=40); 7"
    with open("/dev/full", "w") as full:
        code, out, _ = adcli("eval", program, stdout=subprocess.PIPE, stderr=full)
    assert (code, out.split()) == (0, ["7"])


# --------------------------------------------------------------------------- unreadable paths and streams
def _name_too_long(tmp_path: Path) -> str:
    return str(tmp_path / ("n" * 300 + ".ad"))


def test_paths_that_cannot_be_looked_at_are_clean_errors_from_run_and_check(tmp_path):
    loop = tmp_path / "loop.ad"
    loop.symlink_to(tmp_path / "loop.ad")
    for command in ("run", "check"):
        for path in (str(loop), _name_too_long(tmp_path)):
            code, _, err = adcli(command, path, cwd=tmp_path)
            assert code == 2, err
            assert "cannot use" in err or "does not exist" in err
            no_traceback(err)


def test_paths_that_cannot_be_looked_at_are_clean_errors_from_import(tmp_path):
    (tmp_path / "loop.ad").symlink_to(tmp_path / "loop.ad")
    long_name = "n" * 300 + ".ad"
    cases = {
        'import "loop.ad"\n': "symbolic links",
        f'import "{long_name}"\n': "File name too long",
        'import "a\0b.ad"\n': "NUL byte",
    }
    for text, reason in cases.items():
        (tmp_path / "main.ad").write_text(text)
        for command in ("run", "check"):
            code, _out, err = adcli(command, "main.ad", cwd=tmp_path)
            assert code == 1, err
            assert reason in err, err
            no_traceback(err)


@pytest.mark.skipif(IS_ROOT, reason="root has search permission everywhere")
def test_a_folder_without_search_permission_is_a_clean_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.ad").write_text("1\n")
    (tmp_path / "main.ad").write_text('import "locked/a.ad"\n')
    locked.chmod(0o000)
    try:
        code, _, err = adcli("run", "main.ad", cwd=tmp_path)
        assert code == 1 and "Permission denied" in err
        code, _, err = adcli("run", str(locked / "a.ad"), cwd=tmp_path)
        assert code == 2 and "Permission denied" in err
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("command", ["run", "check", "repl"])
def test_a_closed_stdin_is_a_clean_error(command):
    args = (command, "-") if command != "repl" else (command,)
    code, _out, err = adcli(*args, stdin=None, preexec_fn=lambda: os.close(0))
    assert code == 1
    assert "standard input is closed" in err
    no_traceback(err)


def test_check_never_reads_an_imported_file_again_to_draw_a_caret(tmp_path, monkeypatch):
    lib = tmp_path / "lib.ad"
    lib.write_text("a = 1\n" * 1000 + "b = nope\n")
    (tmp_path / "main.ad").write_text('import "lib.ad"\n')
    opened: list[str] = []
    real_open = os.open

    def counting_open(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    result = via_runner(["check", "main.ad"], cwd=tmp_path)
    assert result.code == 1
    assert result.err.splitlines()[:3] == [
        "lib.ad:1001:5: error: unknown name 'nope'",
        "b = nope",
        "    ^~~~",
    ]
    assert sum(1 for p in opened if p.endswith("lib.ad")) == 1


@pytest.mark.parametrize(
    "option, value",
    [("--timeout", "nan"), ("--timeout", "-1"), ("--timeout", "inf"), ("--max-source-bytes", "1e30"),
     ("--max-source-bytes", str(10**30)), ("--max-elements", str(2**70))],
)  # fmt: skip
def test_limit_options_are_validated_where_they_are_read(option, value):
    code, _out, err = adcli(option, value, "eval", "1")
    assert code == 2, err
    assert option in err
    no_traceback(err)


def test_a_relative_xdg_state_home_is_ignored(monkeypatch):
    from adcli.cli.repl import history_path

    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert history_path() == Path.home() / ".local" / "state" / "adcli" / "history"
    monkeypatch.setenv("XDG_STATE_HOME", "/abs/state")
    assert history_path() == Path("/abs/state/adcli/history")


# --------------------------------------------------------------------------- terminals and encodings
GRAPH_AND_TABLE = ["eval", "longvariablename^3", "--at", "longvariablename=3", "--wrt",
                   "longvariablename", "--order", "2", "--graph"]  # fmt: skip


@pytest.mark.parametrize("columns", ["0", "10", "-5", "junk"])
def test_odd_columns_never_hide_or_cut_values_off_a_terminal(columns):
    code, out, err = adcli("eval", "1+1", env={"COLUMNS": columns})
    assert (code, out.split()) == (0, ["2"]), err
    code, out, err = adcli(*GRAPH_AND_TABLE, env={"COLUMNS": columns})
    assert code == 0, err
    assert "AccumulateGrad (longvariablename)" in out
    assert "∂ⁿ/∂longvariablenameⁿ" in out
    assert "…" not in out


def test_a_narrow_terminal_gets_a_sane_minimum_width():
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "adcli", *GRAPH_AND_TABLE],
        env=subprocess_env({"COLUMNS": "10", "NO_COLOR": "1"}),
        encoding="utf-8",
        dimensions=(40, 10),
        timeout=60,
    )
    child.expect(pexpect.EOF)
    out = child.before
    assert "AccumulateGrad (longvariablename)" in out
    assert "…" not in out


@pytest.mark.parametrize(
    "env",
    [{"PYTHONIOENCODING": "ascii"},
     {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": ""}],
    ids=["PYTHONIOENCODING=ascii", "LC_ALL=C"],
)  # fmt: skip
def test_non_unicode_output_falls_back_to_ascii(env):
    code, out, err = adcli(*GRAPH_AND_TABLE, env=env)
    assert code == 0, err
    out.encode("ascii")
    assert "AccumulateGrad (longvariablename)" in out
    code, out, err = adcli("eval", '"π" + 中', env=env)
    assert code == 1
    no_traceback(err)
    err.encode("ascii")


def test_ctrl_c_during_start_up_exits_130_quietly():
    for delay in (0.02, 0.05, 0.08, 0.12, 0.2, 0.4):
        proc = subprocess.Popen(
            [sys.executable, "-m", "adcli", "run", "-"],
            stdin=subprocess.PIPE,  # stays open: adcli waits for the program
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=subprocess_env(),
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        if b"adcli" not in err:
            continue  # Python itself was still starting (site, runpy): no adcli code ran yet
        # Before Python installs its handler, SIGINT kills it (-2): quiet too.
        assert proc.returncode in (130, -signal.SIGINT), (delay, proc.returncode, err)
        assert b"Traceback" not in err and b"KeyboardInterrupt" not in err, err


# --------------------------------------------------------------------------- the REPL
def test_repl_reading_dev_zero_is_bounded():
    with open("/dev/zero", "rb") as zero:
        code, _out, err = adcli("--max-source-bytes", "100000", "repl", stdin=zero, timeout=60)
    assert code == 1
    assert "error: input too large" in err
    no_traceback(err)


def test_repl_continuation_of_a_huge_bracket_literal_is_linear(monkeypatch):
    """Pasting n lines parses O(n) characters in all, not O(n^2)."""
    import io

    from adcli.cli import repl
    from adcli.lang import parser

    parsed = []
    real = parser.is_complete

    def counting(text):
        parsed.append(len(text))
        return real(text)

    monkeypatch.setattr(parser, "is_complete", counting)
    for lines in (2000, 4000):
        parsed.clear()
        text = "x = [\n" + "1,\n" * lines + "]\n"
        read = repl._stream_reader(io.StringIO(text))
        assert read().endswith("]")
        # Small entries are checked on every line (a bounded cost); beyond, linear.
        assert sum(parsed) < 4 * len(text) + repl.SMALL_ENTRY**2, (lines, sum(parsed))


def test_repl_history_that_is_a_directory_warns_once_and_keeps_going(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    from repl_driver import READY, repl_env

    (tmp_path / "state" / "adcli" / "history").mkdir(parents=True)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "adcli", "repl"],
        env=repl_env(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 160),
    )
    import io

    log = io.StringIO()
    child.logfile_read = log
    child.expect(READY)
    child.sendline("40 + 2")
    child.expect("42\r\n")
    child.expect(READY)
    child.sendline("y = 1")
    child.expect(READY)
    child.sendline("y + 1")
    child.expect("2\r\n")
    child.expect(READY)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    seen = log.getvalue()
    assert child.exitstatus == 0
    assert "Traceback" not in seen and "Press ENTER" not in seen
    assert seen.count("history is kept in memory only") == 1


def test_repl_history_fallback_warns_once(tmp_path):
    from adcli.cli.render import Renderer
    from adcli.cli.repl import make_history

    (tmp_path / "history").mkdir()
    warned = []

    class Collect(Renderer):
        def warning(self, message, span=None):
            warned.append(message)

    history = make_history(tmp_path / "history", Collect())
    history.append_string("1 + 1")
    assert len(warned) == 1 and "in memory only" in warned[0]
    assert list(history.get_strings()) == ["1 + 1"]
    # A file that breaks later (disk full, removed folder) also falls back, once.
    broken = tmp_path / "gone" / "history"
    broken.parent.mkdir()
    history = make_history(broken, Collect())
    broken.unlink()
    broken.mkdir()
    history.append_string("a")
    history.append_string("b")
    assert len(warned) == 2


def test_errno_of_lost_output_is_reported_in_words():
    from adcli.cli.render import OutputLost

    lost = OutputLost(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert (lost.errno, lost.reason) == (errno.ENOSPC, "No space left on device")


def test_control_characters_in_file_names_keep_reports_well_formed(tmp_path):
    name = "evil\x1b[2J.ad"
    (tmp_path / name).write_text('assert false, "bell \\x07?"\n')
    (tmp_path / "ok.ad").write_text("1\n")
    code, out, err = adcli("run", name, "ok.ad", "--junit", "r.xml", cwd=tmp_path)
    assert code == 1
    assert "\x1b" not in out + err
    assert "==> evil\\x1b[2J.ad <==" in out
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert [c.get("name") for c in suite.iter("testcase")] == ["evil\\x1b[2J.ad", "ok.ad"]


def test_a_closed_stderr_costs_no_output_and_keeps_the_exit_code():
    code, out, _ = adcli("eval", "1+1", stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2))
    assert (code, out) == (0, "2\n")
    code, out, _ = adcli("eval", "1+foo", stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2))
    assert (code, out) == (1, "")


def test_ctrl_c_during_a_parallel_run_ends_every_process_quietly(tmp_path):
    from repl_driver import LONG

    (tmp_path / "slow.ad").write_text("\n".join([*LONG, "f10(ones(200, 200))"]) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "adcli", "run", "slow.ad", "slow.ad", "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
        cwd=tmp_path,
        start_new_session=True,
    )
    time.sleep(4)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err, err


def test_junit_to_a_symlink_keeps_the_link(scripts):
    (scripts / "link.xml").symlink_to("real.xml")
    code, *_ = adcli("run", "ok.ad", "--junit", "link.xml", cwd=scripts)
    assert code == 0
    assert (scripts / "link.xml").is_symlink()
    ET.parse(scripts / "real.xml")


def test_junit_to_a_fifo_feeds_it_instead_of_replacing_it(scripts):
    import stat
    import threading

    fifo = scripts / "report.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    code, *_ = adcli("run", "ok.ad", "--junit", str(fifo), cwd=scripts)
    reader.join(60)
    assert code == 0
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    ET.fromstring(received[0])


@pytest.mark.skipif(not IS_ROOT, reason="mknod needs root")
def test_junit_to_a_full_device_is_an_error_and_the_device_stays(scripts):
    import stat

    device = scripts / "full"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a private /dev/full
    code, _, err = adcli("run", "ok.ad", "--quiet", "--junit", str(device), cwd=scripts)
    assert code == 1
    assert "cannot write the JUnit report" in err and "No space left on device" in err
    assert stat.S_ISCHR(os.stat(device).st_mode)


@pytest.mark.parametrize("encoding", ["utf-8:strict", "utf-8:surrogateescape"])
def test_standard_input_that_is_not_utf8_is_a_syntax_error(encoding):
    code, _, err = adcli("run", "-", input=b"x = 1\n\xff\n", env={"PYTHONIOENCODING": encoding})
    assert code == 1
    assert "error: byte 0xFF is not UTF-8 text" in err
    assert "\\udc" not in err
    no_traceback(err)
