"""The installed command as a real process: the console script and ``python -m rerank_cli``
against the loopback server, ``--version``, a reader that goes away (``| head``), and Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from rerank_cli import __version__
from tests.conftest import TEST_KEY
from tests.server import Fault, RerankServer

RERANK = Path(sys.executable).with_name("rerank")
COMMANDS = {
    "console-script": [str(RERANK)],
    "python-m": [sys.executable, "-m", "rerank_cli"],
}
QUERY = "capital of France"
PARIS = "Paris is the capital of France."
BANANAS = "Bananas are yellow."

pytestmark = pytest.mark.skipif(not RERANK.exists(), reason=f"{RERANK} is not installed")


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The process's environment (conftest removed keys and settings) without NO_COLOR, plus
    ``extra``."""
    env = {name: value for name, value in os.environ.items() if name != "NO_COLOR"}
    env.update(RERANK_CONFIG_DIR=str(tmp_path / "config"), RERANK_CACHE_DIR=str(tmp_path / "cache"))
    env.update(extra)
    return env


def rerank(
    command: Sequence[str], args: Sequence[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*command, *args],
        check=False,
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_ranks_against_the_server(command: list[str], server: RerankServer, tmp_path: Path) -> None:
    env = environment(tmp_path, GR_KEY=TEST_KEY)
    done = rerank(command, ["--base-url", server.base_url, QUERY, BANANAS, PARIS], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [r["text"] for r in records] == [PARIS, BANANAS]
    assert TEST_KEY.encode() not in done.stdout + done.stderr
    assert server.batch_sizes == [2]


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(command: list[str], flag: str, tmp_path: Path) -> None:
    done = rerank(command, [flag], environment(tmp_path))
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"rerank {__version__}\n".encode(),
        b"",
    )


def test_api_failure_exit_code_in_a_real_process(server: RerankServer, tmp_path: Path) -> None:
    env = environment(tmp_path, GR_KEY="gr-wrong-key-000000")
    done = rerank(COMMANDS["console-script"], ["--base-url", server.base_url, QUERY, PARIS], env)
    assert done.returncode == 3
    assert done.stderr.decode().startswith(
        "rerank: error: the API key from GR_KEY (gr-…0000) was rejected"
    )
    assert b"gr-wrong-key-000000" not in done.stderr


# --- a reader that goes away ---------------------------------------------------------------------


@pytest.fixture
def many_documents(tmp_path: Path) -> Path:
    """Enough output (≈1 MB of JSON lines) to overflow any pipe buffer."""
    path = tmp_path / "docs.txt"
    lines = (f"document {i} about the capital of France, padded {'x' * 200}" for i in range(4000))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_broken_pipe_ends_quietly(
    server: RerankServer, tmp_path: Path, many_documents: Path
) -> None:
    env = environment(tmp_path, GR_KEY=TEST_KEY)
    args = ["--base-url", server.base_url, QUERY, "-i", str(many_documents), "--batch-size", "500"]
    process = subprocess.Popen(
        [*COMMANDS["console-script"], *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    # Reads below have no timeout of their own: a stuck process is killed, which ends them.
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        first = process.stdout.readline()
        process.stdout.close()  # like `head -1`: read one line, go away
        stderr = process.stderr.read()
        code = process.wait(60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert code != -signal.SIGKILL, "killed: no output within 60 s"
    assert orjson.loads(first)["rank"] == 1
    assert (code, stderr) == (0, b"")


def test_broken_pipe_in_a_shell_pipeline(
    server: RerankServer, tmp_path: Path, many_documents: Path
) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    script = (
        'set -o pipefail; "$RERANK" --base-url "$URL" "$Q" -i "$DOCS" -o plain 2>"$ERR" | head -1'
    )
    env = environment(
        tmp_path,
        GR_KEY=TEST_KEY,
        RERANK=str(RERANK),
        URL=server.base_url,
        Q=QUERY,
        DOCS=str(many_documents),
        ERR=str(tmp_path / "stderr"),
    )
    done = subprocess.run(
        [bash, "-c", script], check=False, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, (tmp_path / "stderr").read_text()
    assert done.stdout.startswith(b"document ")
    assert done.stdout.count(b"\n") == 1
    assert (tmp_path / "stderr").read_bytes() == b""


# --- Ctrl-C --------------------------------------------------------------------------------------


def test_sigint_while_waiting_for_the_server_exits_130_saying_what_was_kept(
    server: RerankServer, tmp_path: Path
) -> None:
    # Batches of one, one at a time: the first is answered (and cached), the second hangs.
    server.add_faults(Fault(), Fault.slow(120))
    env = environment(tmp_path, GR_KEY=TEST_KEY)
    process = subprocess.Popen(
        [
            *COMMANDS["console-script"],
            *("--base-url", server.base_url, "--batch-size", "1", "-j", "1"),
            *(QUERY, PARIS, BANANAS),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while len(server.rerank_requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.rerank_requests) == 2, "the second request never reached the server"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert stdout == b""
    assert b"Traceback" not in stderr
    assert stderr.decode() == (
        "rerank: interrupted — 1 score is cached; run the same command again to continue\n"
    )


# --- what a run loads ----------------------------------------------------------------------------

LOADED = (
    "import sys\n"
    "from rerank_cli.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "names = ('httpx', 'httpcore')\n"
    "sys.stderr.write('loaded: ' + ' '.join(m for m in names if m in sys.modules))\n"
    "raise SystemExit(code)\n"
)


def test_a_fully_cached_rerun_loads_no_http_stack(server: RerankServer, tmp_path: Path) -> None:
    env = environment(tmp_path, GR_KEY=TEST_KEY)
    args = ["--base-url", server.base_url, QUERY, BANANAS, PARIS, "-o", "jsonl"]
    first = rerank([sys.executable, "-c", LOADED], args, env)
    assert first.returncode == 0, first.stderr
    assert first.stderr.endswith(b"loaded: httpx httpcore")
    second = rerank([sys.executable, "-c", LOADED], args, env)
    assert second.returncode == 0, second.stderr
    assert second.stderr.endswith(b"loaded: ")  # the cache answered: no HTTP stack (~0.1 s)
    assert second.stdout == first.stdout
    assert len(server.rerank_requests) == 1
