"""Bad inputs, one table: each row is an input a user may hand ``rerank``, what the installed
command says about it on stderr (every line, exactly) and its exit code. Every row runs the real
console script as a process — stdin, FIFOs and Ctrl-C are what they are for a user — offline
(``--engine lexical``, or ``--dry-run``), with no key and a config and cache of its own.

The README's "Bad input" table is this table in prose; keep them equal.

Rows that need something of the machine say so: the 1,000,000-line row is marked ``slow`` (a
few seconds; its subprocess timeout is a guard against a hang, not a speed claim — the wall time
is recorded as the ``wall_seconds`` property of the test); the unreadable file runs, for root,
without the capabilities that let root read any file (``setpriv``), since CI runs as root."""

from __future__ import annotations

import array
import errno
import fcntl
import os
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.conftest import without_root_reads

RERANK = Path(sys.executable).with_name("rerank")
LEX = ("--engine", "lexical")
BINARY = "binary file (a NUL byte in the first 8 KB); for NUL-separated records use -0"
INTERRUPTED = "rerank: interrupted — nothing was scored"
# The process is a guard against hangs: a run over this is a failure of another kind.
HANG_GUARD = 300.0
MILLION = 1_000_000

pytestmark = pytest.mark.skipif(not RERANK.exists(), reason=f"{RERANK} is not installed")


def texts(*expected: str) -> Callable[[bytes], None]:
    """stdout (JSON lines) holds exactly these documents, in any order."""

    def check(stdout: bytes) -> None:
        found = [orjson.loads(line)["text"] for line in stdout.splitlines()]
        assert sorted(found) == sorted(expected)

    return check


def exactly(expected: bytes) -> Callable[[bytes], None]:
    def check(stdout: bytes) -> None:
        assert stdout == expected

    return check


def nothing(stdout: bytes) -> None:
    assert stdout == b""


def one_long_document(stdout: bytes) -> None:
    (record,) = [orjson.loads(line) for line in stdout.splitlines()]
    assert record["text"] == "paris " * 180_000  # the whole line, its LF removed
    assert record["source"]["line"] == 1


def a_million_documents(stdout: bytes) -> None:
    report = orjson.loads(stdout)
    assert report["documents"] == MILLION
    assert report["unique"] == MILLION  # no line lost or merged on the way


@dataclass(frozen=True)
class Case:
    """One row. ``{F}`` in ``args`` and ``stderr`` stands for the input's path."""

    input: str  # the README's words for it
    code: int
    stderr: tuple[str, ...]  # every line of stderr
    args: tuple[str, ...] = ("paris", "-i", "{F}", *LEX, "-o", "jsonl")
    content: bytes | None = None  # written to {F}
    kind: str = "file"  # file · none (missing) · dir · unreadable · fifo · stdin
    stdin: bytes | None = None  # for kind "stdin", and fed into a FIFO (None: no writer)
    interrupt: bool = False  # keep the FIFO or stdin open, then Ctrl-C (SIGINT)
    stdout: Callable[[bytes], None] = nothing


CASES = [
    Case(
        "invalid UTF-8",
        0,
        ("rerank: warning: {F}: invalid UTF-8 replaced with U+FFFD",),
        content=b"caf\xe9 paris\nfoo\n",
        stdout=texts("caf\ufffd paris", "foo"),
    ),
    Case(
        "invalid JSON on line 3 (JSON lines)",
        2,
        ("rerank: error: {F}:3: invalid JSON (unexpected end of data)",),
        content=b'{"text": "paris"}\n{"text": "foo"}\n{"text": \n{"text": "late"}\n',
    ),
    Case(
        "invalid JSON on line 3, --skip-invalid",
        0,
        ("rerank: warning: {F}:3: invalid JSON (unexpected end of data) (skipped)",),
        args=("paris", "-i", "{F}", "--skip-invalid", *LEX, "-o", "jsonl"),
        content=b'{"text": "paris"}\n{"text": "foo"}\n{"text": \n{"text": "late"}\n',
        stdout=texts("paris", "foo", "late"),
    ),
    Case(
        "a JSON array that does not parse, even with --skip-invalid",
        2,
        ("rerank: error: {F}:3: invalid JSON (unexpected end of data)",),
        args=("paris", "-i", "{F}", "-F", "json", "--skip-invalid", *LEX),
        content=b'["paris",\n"foo"\n',
    ),
    Case(
        "empty stdin",
        1,
        ("rerank: no documents to rank",),
        args=("paris", *LEX),
        kind="stdin",
        stdin=b"",
    ),
    Case("empty file", 1, ("rerank: no documents to rank",), content=b""),
    Case("blank lines only", 1, ("rerank: no documents to rank",), content=b"\n  \n\t\r\n"),
    Case(
        "NUL bytes (in the first 8 KB)",
        2,
        (f"rerank: error: {{F}}: {BINARY}",),
        content=b"paris\x00foo\n",
    ),
    Case(
        "NUL-separated records with -0",
        0,
        (),
        args=("paris", "-0", "-i", "{F}", *LEX, "-o", "jsonl"),
        content=b"paris\nin two lines\x00foo\x00",
        stdout=texts("paris\nin two lines", "foo"),
    ),
    Case(
        "CRLF line ends",
        0,
        (),
        args=("paris", "-i", "{F}", *LEX, "-o", "plain"),
        content=b"foo\r\nparis\r\n",
        stdout=exactly(b"paris\r\nfoo\r\n"),  # scored without the CR, printed as read
    ),
    Case(
        "a UTF-8 BOM",
        0,
        (),
        content=b"\xef\xbb\xbfparis\nfoo\n",
        stdout=texts("paris", "foo"),
    ),
    Case(
        "a UTF-8 BOM before JSON lines",
        0,
        (),
        content=b'\xef\xbb\xbf{"text": "paris"}\n',
        stdout=texts("paris"),
    ),
    Case(
        "UTF-16 (NUL bytes)",
        2,
        (f"rerank: error: {{F}}: {BINARY}",),
        content="paris\nfoo\n".encode("utf-16"),
    ),
    Case(
        "one line of 1 MB",
        0,
        (),
        content=b"paris " * 180_000 + b"\n",
        stdout=one_long_document,
    ),
    Case(
        "1,000,000 lines (--dry-run)",
        0,
        (),
        args=("paris", "-i", "{F}", *LEX, "--dry-run", "-o", "json"),
        content=b"".join(b"line %d\n" % n for n in range(MILLION)),
        stdout=a_million_documents,
    ),
    Case(
        "a binary file",
        2,
        (f"rerank: error: {{F}}: {BINARY}",),
        content=b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\nlibc.so.6\n" * 50,
    ),
    Case("a missing file", 2, ("rerank: error: {F}: no such file",), kind="none"),
    Case(
        "a directory",
        2,
        ("rerank: error: {F}: is a directory (to rank files, use: rerank files)",),
        kind="dir",
    ),
    Case(
        "a file without read permission (chmod 000)",
        2,
        ("rerank: error: {F}: permission denied",),
        content=b"paris\n",
        kind="unreadable",
    ),
    Case(
        "a FIFO, closed by its writer",
        0,
        (),
        kind="fifo",
        stdin=b"paris\nfoo\n",
        stdout=texts("paris", "foo"),
    ),
    Case(
        "rerank files: a FIFO named on the command line (never opened)",
        1,
        (
            "rerank: warning: {F}: not a regular file or directory, skipped",
            "rerank: 0 files, 0 chunks; skipped 1 unreadable",
            "rerank: no files to rank",
        ),
        args=("files", "paris", "{F}", "-v", *LEX),
        kind="fifo",
    ),
    Case(
        "a FIFO that never closes, then Ctrl-C",
        130,
        (INTERRUPTED,),
        kind="fifo",
        stdin=b"paris\n",
        interrupt=True,
    ),
    Case(
        "rerank batch: a query FIFO that never closes, then Ctrl-C",
        130,
        (INTERRUPTED,),
        args=("batch", "{F}", *LEX),
        kind="fifo",
        stdin=b'{"query": "paris", "documents": ["paris"]}\n',
        interrupt=True,
    ),
    Case(
        "stdin that never closes, then Ctrl-C",
        130,
        (INTERRUPTED,),
        args=("paris", *LEX),
        kind="stdin",
        stdin=b"paris\n",
        interrupt=True,
    ),
]


def _param(case: Case) -> object:
    marks = [pytest.mark.slow] if "1,000,000" in case.input else []
    return pytest.param(case, id=case.input, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_bad_input(
    case: Case, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    path = tmp_path / "in put.txt"  # a space: the message names the path as given
    command = [str(RERANK)]
    if case.kind in ("file", "unreadable"):
        assert case.content is not None
        path.write_bytes(case.content)
    elif case.kind == "dir":
        path.mkdir()
    elif case.kind == "fifo":
        os.mkfifo(path)
    if case.kind == "unreadable":
        path.chmod(0)
        command = [*without_root_reads(path), *command]
    args = [arg.replace("{F}", str(path)) for arg in case.args]
    env = {
        **{k: v for k, v in os.environ.items() if k != "NO_COLOR"},
        "RERANK_CONFIG_DIR": str(tmp_path / "config"),
        "RERANK_CACHE_DIR": str(tmp_path / "cache"),
    }
    started = time.monotonic()
    with sigint_not_ignored():
        process = subprocess.Popen(
            [*command, *args],
            env=env,
            stdin=subprocess.PIPE if case.kind == "stdin" else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    try:
        stdout, stderr = feed(process, case, path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    record_property("wall_seconds", round(time.monotonic() - started, 2))
    expected = [line.replace("{F}", str(path)) for line in case.stderr]
    assert stderr.decode("utf-8").splitlines() == expected
    assert process.returncode == case.code
    case.stdout(stdout)


@contextmanager
def sigint_not_ignored() -> Iterator[None]:
    """Start the process as a terminal's foreground job is, whatever this test run inherited:
    a background job ignores SIGINT, an ignored signal stays ignored across exec, and Python
    then keeps it ignored — Ctrl-C could not reach the process."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def feed(process: subprocess.Popen[bytes], case: Case, path: Path) -> tuple[bytes, bytes]:
    """Hand the process its input as the row says, and wait for it to end."""
    if case.kind == "stdin":
        assert process.stdin is not None and case.stdin is not None
        if not case.interrupt:
            return process.communicate(case.stdin, timeout=HANG_GUARD)
        process.stdin.write(case.stdin)
        process.stdin.flush()
        waiting_for_more(process, process.stdin.fileno())
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=HANG_GUARD)
        return out, err
    if case.kind != "fifo" or case.stdin is None:  # no writer: the FIFO must not be opened
        return process.communicate(timeout=HANG_GUARD)
    writer = open_writer(process, path)  # returns once the process has opened the FIFO
    try:
        os.write(writer, case.stdin)
        if case.interrupt:
            waiting_for_more(process, writer)
            process.send_signal(signal.SIGINT)
            return process.communicate(timeout=HANG_GUARD)
    finally:
        os.close(writer)  # for the interrupt, only after the process has ended
    return process.communicate(timeout=HANG_GUARD)


def open_writer(process: subprocess.Popen[bytes], fifo: Path) -> int:
    """The FIFO's write end, opened once the process has opened its read end (a non-blocking
    open for writing fails with ENXIO until a reader is there)."""
    deadline = time.monotonic() + HANG_GUARD
    while True:
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO or process.poll() is not None:
                raise
            if time.monotonic() > deadline:
                pytest.fail("the process never opened the FIFO")
            time.sleep(0.01)
            continue
        os.set_blocking(writer, True)
        return writer


def waiting_for_more(process: subprocess.Popen[bytes], writer: int) -> None:
    """Wait until the process has read all that was written to the pipe or FIFO (``writer``
    is its write end) and sleeps in the kernel waiting for more (Linux: the main thread's wait
    channel). Then Ctrl-C interrupts that read, as it does for a user. A signal sent earlier
    could land between two reads, where Python only sees it once the next read returns —
    which, with a writer that never writes again, is never."""
    wchan = Path(f"/proc/{process.pid}/wchan")
    if not wchan.exists():
        pytest.skip("no /proc/PID/wchan to see the process wait on its input")
    unread = array.array("i", [0])
    deadline = time.monotonic() + HANG_GUARD
    while True:
        fcntl.ioctl(writer, termios.FIONREAD, unread)
        if unread[0] == 0 and "pipe_read" in wchan.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"the process ended early: {process.returncode}")
        if time.monotonic() > deadline:
            pytest.fail("the process never waited on its input")
        time.sleep(0.01)


def test_the_table_covers_every_kind_of_input() -> None:
    """Each kind of input the runner knows is in the table, so none of its branches is dead."""
    assert {case.kind for case in CASES} == {"file", "none", "dir", "unreadable", "fifo", "stdin"}
    assert len({case.input for case in CASES}) == len(CASES)
