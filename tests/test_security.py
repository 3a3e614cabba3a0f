"""The API key never leaks, and ``files`` never sends a secret file.

One distinctive key, given each way a user gives one (``GR_KEY``, ``--api-key``, ``rerank config
set api_key``), through a representative set of commands against the loopback server — rank,
files, batch, eval --dataset, models, account, config, cache, --dry-run, -v, and the errors:
a rejected key, a key echoed back by the server, a dead server, a bad URL, ``http://`` to a host
off this machine, a usage error beside ``--api-key``. After each run the key (or its middle, in
case of a partial mask) must be in no byte of stdout or stderr, and in no file under the config
and cache directories or among the run's outputs — except the config file the user asked it
into, which must be mode 0600. The Python API's errors carry it in no str, repr or args, along
their whole cause chain.

This module is the focused check the README's Security section promises; it is not an autouse
fixture over the whole suite (that would slow every test)."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from rerank_cli import Reranker
from rerank_cli.errors import RerankError
from tests import loopback_guard
from tests.conftest import CliResult, RunCli
from tests.server import Fault, RerankServer
from tests.test_eval_dataset import beir_folder

KEY = "gr-LEAKCANARY-7f3e91d2c0b84a65-q9x"
# The whole key, and its middle: a mask shows "gr-…" and the last four characters, no more.
FRAGMENTS = (KEY, KEY[3:-4])
OTHER_KEY = "gr-someone-elses-key-0000"
MASKED = "gr-…-q9x"
REMOTE_HTTP = "http://rerank.example/v1"


def leaks(data: bytes | str) -> list[str]:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return [fragment for fragment in FRAGMENTS if fragment in text]


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in this module reaches past loopback, even by mistake."""
    loopback_guard.install(monkeypatch.setattr)


@pytest.fixture
def dead_url() -> str:
    """A loopback port with nobody listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@dataclass
class World:
    server: RerankServer
    other: RerankServer  # accepts another key: ours is rejected there
    dead: str
    tree: Path
    beir: Path
    queries: Path
    out: Path


@pytest.fixture
def world(tmp_path: Path, dead_url: str, guarded: None) -> Iterator[World]:
    tree = secret_tree(tmp_path / "tree")
    beir = beir_folder(tmp_path / "beir")
    queries = tmp_path / "queries.jsonl"
    queries.write_bytes(
        b'{"id": "q1", "query": "capital of France", "documents": ["Paris", "Bananas"]}\n'
        b'{"id": "q2", "query": "yellow fruit", "documents": ["Paris", "Bananas are yellow"]}\n'
    )
    out = tmp_path / "out"
    out.mkdir()
    with RerankServer(api_key=KEY) as server, RerankServer(api_key=OTHER_KEY) as other:
        yield World(server, other, dead_url, tree, beir, queries, out)


# --- the commands ------------------------------------------------------------------------------

Args = Callable[[World], list[str]]


@dataclass(frozen=True)
class Command:
    name: str
    args: Args
    code: int
    uses_key: bool = True  # the key is handed to it (else --api-key is not added)
    before: Callable[[World], None] | None = None
    env: tuple[tuple[str, str], ...] = ()


def url(world: World) -> list[str]:
    return ["--base-url", world.server.base_url]


def echo_the_key(world: World) -> None:
    world.server.add_faults(Fault.error(400, f"invalid request: key {KEY} is not allowed here"))


COMMANDS = [
    Command("rank", lambda w: ["capital", "Paris is the capital", "Bananas", *url(w)], 0),
    Command("rank -v", lambda w: ["capital", "Paris", "Bananas", "-v", *url(w)], 0),
    Command(
        "rank --dry-run --stats",
        lambda w: ["capital", "Paris", "--dry-run", "--stats", str(w.out / "dry.json"), *url(w)],
        0,
    ),
    Command(
        "files -v",
        lambda w: [
            "files",
            "secret rotation",
            str(w.tree),
            "--hidden",
            "-v",
            "-o",
            "jsonl",
            *url(w),
        ],
        0,
    ),
    Command(
        "batch --out --stats",
        lambda w: [
            "batch",
            str(w.queries),
            "--out",
            str(w.out / "run.jsonl"),
            "--stats",
            str(w.out / "batch-stats.json"),
            "-v",
            *url(w),
        ],
        0,
    ),
    Command(
        "eval --dataset --save-run",
        lambda w: [
            "eval",
            "--dataset",
            str(w.beir),
            "--save-run",
            str(w.out / "run.trec"),
            *url(w),
        ],
        0,
    ),
    Command("models -v", lambda w: ["models", "-v", *url(w)], 0),
    Command("account", lambda w: ["account", *url(w)], 0),
    Command(
        "account, dead server",
        lambda w: ["account", "--base-url", w.dead, "-v"],
        4,
        env=(("RERANK_MAX_RETRIES", "0"),),
    ),
    Command("config show", lambda w: ["config", "show"], 0, uses_key=False),
    Command("cache stats", lambda w: ["cache", "stats"], 0, uses_key=False),
    Command(
        "a rejected key",
        lambda w: ["capital", "Paris", "--base-url", w.other.base_url, "-v"],
        3,
    ),
    Command(
        "the server echoes the key",
        lambda w: ["capital", "Paris", "-v", *url(w)],
        3,
        before=echo_the_key,
    ),
    Command(
        "a dead server",
        lambda w: ["capital", "Paris", "--base-url", w.dead, "--max-retries", "1", "-v"],
        4,
    ),
    Command("a bad URL", lambda w: ["capital", "Paris", "--base-url", "htp:/nowhere"], 2),
    Command(
        "http:// off this machine", lambda w: ["capital", "Paris", "--base-url", REMOTE_HTTP], 2
    ),
    Command("a usage error", lambda w: ["capital", "Paris", "-k", "many", *url(w)], 2),
]
SOURCES = ["GR_KEY", "--api-key", "config set"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_the_key_is_in_no_output_and_no_file(
    cli: RunCli,
    isolated_env: dict[str, str],
    world: World,
    command: Command,
    source: str,
) -> None:
    env = dict(command.env)
    key_args: list[str] = []
    if source == "GR_KEY":
        env["GR_KEY"] = KEY
    elif source == "--api-key" and command.uses_key:
        key_args = ["--api-key", KEY]
    elif source == "config set":
        no_leak(cli("config", "set", "api_key", KEY), 0)
    if command.before is not None:
        command.before(world)
    args = command.args(world)
    if args[0] in ("files", "batch", "eval", "models", "account", "config", "cache"):
        result = cli(*args, *key_args, env=env)
    else:
        result = cli("rank", *args, *key_args, env=env)
    no_leak(result, command.code)
    config = Path(isolated_env["RERANK_CONFIG_DIR"])
    cache = Path(isolated_env["RERANK_CACHE_DIR"])
    stored = files_holding_the_key(config, cache, world.out)
    if source == "config set":
        assert stored == [config / "config.toml"]
        assert stat.S_IMODE((config / "config.toml").stat().st_mode) == 0o600
    else:
        assert stored == []
    for request in world.server.requests + world.other.requests:
        # The key travels in the Authorization header (and /account's ?key=), nowhere else.
        assert leaks(request.raw) == []
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert leaks(repr(others)) == []
        if request.path != "/account":
            assert "key" not in request.query
    if command.uses_key and command.code == 3 and "rejected" in command.name:
        assert MASKED in result.stderr  # which key was refused, said without the key


def no_leak(result: CliResult, code: int) -> None:
    assert leaks(result.stdout) == [], result.stdout
    assert leaks(result.stderr) == [], result.stderr
    assert result.exit_code == code, result.stderr
    assert "Traceback" not in result.stderr


def files_holding_the_key(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file() and leaks(path.read_bytes()):
                found.append(path)
    return found


def test_the_config_file_is_written_0600_even_with_a_loose_umask(
    cli: RunCli, isolated_env: dict[str, str]
) -> None:
    old = os.umask(0)
    try:
        no_leak(cli("config", "set", "api_key", KEY), 0)
    finally:
        os.umask(old)
    path = Path(isolated_env["RERANK_CONFIG_DIR"]) / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = cli("config", "show")
    no_leak(shown, 0)
    assert f'api_key = "{MASKED}"' in shown.text


def test_http_off_this_machine_is_refused_before_anything_is_sent(
    cli: RunCli, world: World
) -> None:
    result = cli("rank", "capital", "Paris", "--base-url", REMOTE_HTTP, env={"GR_KEY": KEY})
    no_leak(result, 2)
    assert result.stderr.startswith(
        "rerank: error: refusing to send the API key in clear text to rerank.example"
    )
    # Loopback over http:// is fine: a local server is this machine.
    local = world.server.base_url.replace("127.0.0.1", "localhost")
    assert local.startswith("http://")
    no_leak(cli("rank", "capital", "Paris", "--base-url", local, env={"GR_KEY": KEY}), 0)


# --- the Python API ----------------------------------------------------------------------------


def exception_texts(error: BaseException) -> Iterator[str]:
    """str, repr and args of an exception and of every exception in its cause chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        current = current.__cause__ or current.__context__


@pytest.mark.usefixtures("guarded")
@pytest.mark.parametrize(
    "failure", ["rejected", "echoed", "dead", "bad URL", "http off this machine", "account dead"]
)
def test_python_api_errors_never_carry_the_key(
    failure: str,
    server: RerankServer,
    dead_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RERANK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("RERANK_CACHE_DIR", str(tmp_path / "cache"))
    base = {
        "rejected": server.base_url,
        "echoed": server.base_url,
        "dead": dead_url,
        "bad URL": "htp:/nowhere",
        "http off this machine": REMOTE_HTTP,
        "account dead": dead_url,
    }[failure]
    server.api_key = OTHER_KEY if failure == "rejected" else KEY
    if failure == "echoed":
        server.add_faults(Fault.error(400, f"key {KEY} is not allowed"))
    settings = {"api_key": KEY, "base_url": base, "max_retries": 0, "no_cache": True}
    # The session may refuse at once (a bad URL, http://), or the call fail.
    with pytest.raises(RerankError) as raised, Reranker(**settings) as ranker:
        if failure == "account dead":
            ranker.account()
        else:
            ranker.rank("capital", ["Paris", "Bananas"])
    for text in exception_texts(raised.value):
        assert leaks(text) == [], text
    assert leaks(str(raised.value.__dict__)) == []


# --- files: secret files are never sent ---------------------------------------------------------

SECRETS = {
    ".env": "API_TOKEN=secret-env-0001",
    ".env.local": "PASSWORD=secret-env-0002",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY----- secret-ssh-0003",
    "id_ed25519.pub": "ssh-ed25519 secret-ssh-0004",
    "server.pem": "-----BEGIN CERTIFICATE----- secret-pem-0005",
    "tls.key": "-----BEGIN PRIVATE KEY----- secret-key-0006",
    "credentials.json": '{"secret rotation": "secret-cred-0007"}',
    ".netrc": "machine x login y password secret-netrc-0008",
    ".npmrc": "//registry/:_authToken=secret-npm-0009",
    ".pypirc": "[pypi]\npassword = secret-pypi-0010",
    "vault.kdbx": "secret-kdbx-0011",
    "cert.p12": "secret-p12-0012",
    "nested/deeper/.env.production": "secret-env-0013",
    "nested/credentials/token.txt": "secret rotation secret-dir-0014",
    ".git/config": "[remote] url = https://user:secret-git-0015@host",
}
MARKER = "secret-"  # every secret file holds one; no other file does


def secret_tree(root: Path) -> Path:
    for name, text in SECRETS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"secret rotation policy\n{text}\n")
    (root / "notes.txt").write_text("our secret rotation policy: every 90 days\n")
    (root / "nested" / "readme.md").write_text("how the rotation of keys works\n")
    return root


def sent_text(server: RerankServer) -> str:
    return "\n".join(text for request in server.rerank_requests for text in request.documents)


@pytest.mark.usefixtures("guarded")
@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--hidden"],
        ["--hidden", "--no-ignore"],
        ["--hidden", "-g", ".env*", "-g", "*.pem", "-g", "*"],
        ["--hidden", "--max-depth", "5", "-L"],
    ],
    ids=["default", "hidden", "no-ignore", "globs", "deep"],
)
def test_files_never_sends_a_secret_file(
    api_cli: RunCli, server: RerankServer, tmp_path: Path, extra: list[str]
) -> None:
    tree = secret_tree(tmp_path / "tree")
    result = api_cli("files", "secret rotation", str(tree), *extra, "-o", "jsonl", "-v")
    assert result.exit_code == 0, result.stderr
    sent = sent_text(server)
    assert "every 90 days" in sent  # the ordinary files were read and sent
    assert MARKER not in sent
    paths = [record["path"] for record in result.records()]
    assert all(MARKER not in Path(path).read_text() for path in paths)


@pytest.mark.usefixtures("guarded")
def test_files_does_not_send_a_secret_named_on_the_command_line(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    tree = secret_tree(tmp_path / "tree")
    named = [str(tree / ".env"), str(tree / "id_rsa"), str(tree / ".git" / "config")]
    result = api_cli("files", "secret rotation", *named, str(tree / "notes.txt"), "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert MARKER not in sent_text(server)
    for path in named:
        assert f"{path}: looks like a secret, not sent (--include-secrets to send it)" in (
            result.stderr
        )


@pytest.mark.usefixtures("guarded")
def test_include_secrets_sends_them_and_says_where(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    """The control: the check above can see a secret when one is sent."""
    tree = secret_tree(tmp_path / "tree")
    result = api_cli("files", "secret rotation", str(tree), "--hidden", "--include-secrets")
    assert result.exit_code == 0, result.stderr
    sent = sent_text(server)
    assert "secret-env-0001" in sent and "secret-ssh-0003" in sent
    assert "127.0.0.1" in result.stderr  # the warning names where they go


def test_stats_files_name_the_host_not_the_key(
    cli: RunCli, world: World, isolated_env: dict[str, str]
) -> None:
    stats = world.out / "stats.json"
    result = cli(
        "batch", str(world.queries), "--stats", str(stats), *url(world), env={"GR_KEY": KEY}
    )
    no_leak(result, 0)
    record = orjson.loads(stats.read_bytes())
    assert record["run"]["endpoint_host"] == f"127.0.0.1:{world.server.port}"
    assert leaks(stats.read_bytes()) == []
