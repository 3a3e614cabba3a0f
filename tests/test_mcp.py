"""``rerank mcp`` as an agent sees it: the real command in a subprocess (``python -m
rerank_cli mcp``), driven over stdio by the MCP SDK's own client (``mcp.client.stdio``,
``ClientSession``), against the loopback rerank server. Every message the client receives and
everything the server writes on stderr are kept, to check what must never appear in them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_cli.jobs.mcp_job import OutsideRoot, inside_root
from tests.conftest import LOOPBACK_HOSTS, TEST_KEY
from tests.server import Fault, RerankServer, score

try:
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    HAVE_SDK = True
except ImportError:
    if os.environ.get("RERANK_REQUIRE_MCP") == "1":  # CI: a missing SDK fails, never skips
        raise
    HAVE_SDK = False

needs_sdk = pytest.mark.skipif(
    not HAVE_SDK,
    reason="the MCP SDK is not installed (pip install -e '.[mcp]'); RERANK_REQUIRE_MCP=1 "
    "makes this a failure",
)
T = TypeVar("T")
EXTRA = "pip install 'rerank-cli[mcp]'"


# -- driving the server -----------------------------------------------------------------------


@dataclass
class Transcript:
    """Everything that came back from the server: each JSON-RPC message as received, and its
    stderr (read once the server has exited)."""

    messages: list[str] = field(default_factory=list)
    stderr_path: Path | None = None

    @property
    def stderr(self) -> str:
        assert self.stderr_path is not None
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def everything(self) -> str:
        return "\n".join([*self.messages, self.stderr])


def environment(tmp: Path, server: RerankServer | None, **extra: str) -> dict[str, str]:
    env = {
        "RERANK_CONFIG_DIR": str(tmp / "config"),
        "RERANK_CACHE_DIR": str(tmp / "cache"),
        "NO_PROXY": LOOPBACK_HOSTS,
        "no_proxy": LOOPBACK_HOSTS,
        "GR_KEY": TEST_KEY,
    }
    if server is not None:
        env["RERANK_BASE_URL"] = server.base_url
    env.update(extra)
    return {name: value for name, value in env.items() if value}


@asynccontextmanager
async def connected(
    root: Path, env: Mapping[str, str], args: list[str], transcript: Transcript
) -> AsyncIterator[ClientSession]:
    """A client session with ``rerank mcp ARGS`` started in ``root``; every message received
    is recorded in ``transcript`` before the session sees it."""
    from mcp.shared.message import SessionMessage

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rerank_cli", "mcp", *args],
        env=dict(env),
        cwd=str(root),
    )
    assert transcript.stderr_path is not None
    with transcript.stderr_path.open("w", encoding="utf-8") as errlog:
        async with stdio_client(params, errlog=errlog) as (incoming, outgoing):
            send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

            async def record() -> None:
                async with send:
                    async for message in incoming:
                        if isinstance(message, SessionMessage):
                            transcript.messages.append(message.message.model_dump_json())
                        else:
                            transcript.messages.append(repr(message))
                        await send.send(message)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(record)
                async with ClientSession(receive, outgoing) as session:
                    await session.initialize()
                    yield session
                tasks.cancel_scope.cancel()


@dataclass
class Mcp:
    """``mcp.run(body)``: start the server in ``root``, run ``body(session)``, stop it."""

    root: Path
    env: dict[str, str]
    transcript: Transcript
    args: list[str] = field(default_factory=list)

    def run(self, body: Callable[[ClientSession], Awaitable[T]]) -> T:
        async def main() -> T:
            async with connected(self.root, self.env, self.args, self.transcript) as session:
                return await body(session)

        return anyio.run(main)

    def call(self, name: str, **arguments: Any) -> Any:
        """One tool call in a fresh server."""

        async def body(session: ClientSession) -> Any:
            return await session.call_tool(name, arguments)

        return self.run(body)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "project"
    made.mkdir()
    return made


@pytest.fixture
def server() -> Iterator[RerankServer]:
    with RerankServer(api_key=TEST_KEY) as running:
        yield running


@pytest.fixture
def mcp(tmp_path: Path, root: Path, server: RerankServer) -> Mcp:
    transcript = Transcript(stderr_path=tmp_path / "stderr.txt")
    return Mcp(root, environment(tmp_path, server), transcript)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def sent(server: RerankServer) -> list[str]:
    return [text for request in server.rerank_requests for text in request.documents]


def write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# -- the tools --------------------------------------------------------------------------------


@needs_sdk
def test_tools_and_their_arguments_are_exactly_these(mcp: Mcp) -> None:
    async def body(session: ClientSession) -> Any:
        return await session.list_tools()

    listed = {tool.name: tool for tool in mcp.run(body).tools}
    assert set(listed) == {"rank", "rank_files"}
    rank, files = listed["rank"], listed["rank_files"]
    assert list(rank.input_schema["properties"]) == ["query", "documents", "top_k", "instruction"]
    assert sorted(rank.input_schema["required"]) == ["documents", "query"]
    assert list(files.input_schema["properties"]) == ["query", "paths", "glob", "top_k"]
    assert files.input_schema["required"] == ["query"]
    assert files.input_schema["properties"]["paths"]["default"] == ["."]
    assert rank.input_schema["properties"]["top_k"]["default"] == 10
    assert files.input_schema["properties"]["top_k"]["default"] == 10
    # Structured output: each declares its schema.
    assert set(rank.output_schema["properties"]) == {"documents", "results"}
    assert set(files.output_schema["properties"]) == {"files", "chunks", "skipped", "results"}


@needs_sdk
def test_rank_returns_the_best_documents_with_scores_and_input_indices(
    mcp: Mcp, server: RerankServer
) -> None:
    query = "capital of France"
    documents = [
        "Bananas are yellow.",
        "   ",  # blank: counted in the indices, never sent
        "Paris is the capital of France.",
        "France is in Europe.",
        "The capital of Peru is Lima.",
    ]
    result = mcp.call("rank", query=query, documents=documents, top_k=2)
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["documents"] == 4
    assert [r["index"] for r in data["results"]] == [2, 4]
    assert [r["rank"] for r in data["results"]] == [1, 2]
    for record in data["results"]:
        assert record["text"] == documents[record["index"]]
        assert record["score"] == pytest.approx(score(query, record["text"]))
    assert sorted(sent(server)) == sorted(d for d in documents if d.strip())
    lines = text_of(result).splitlines()
    assert lines[0] == "best 2 of 4 documents (rank. [index] score text):"
    assert lines[1].startswith("1. [2] ") and lines[1].endswith(" Paris is the capital of France.")
    assert lines[2].startswith("2. [4] ")


@needs_sdk
def test_rank_sends_the_instruction_and_cuts_long_lines_in_the_text_form(
    mcp: Mcp, server: RerankServer
) -> None:
    long_document = "capital " + "word " * 100
    result = mcp.call(
        "rank", query="capital", documents=[long_document], instruction="Find the capital city"
    )
    assert not result.is_error, text_of(result)
    # gigarouter's profile carries the instruction inside the query.
    assert "Find the capital city" in server.rerank_requests[0].body["query"]
    shown = text_of(result).splitlines()[1]
    assert len(shown) < 130 and shown.endswith("…")
    assert result.structured_content["results"][0]["text"] == long_document  # whole


@needs_sdk
def test_rank_files_ranks_files_by_their_best_chunk_with_its_lines(
    mcp: Mcp, server: RerankServer, root: Path
) -> None:
    filler = [f"filler line {n}" for n in range(1, 131)]
    filler[99] = "retries are configured here with backoff"
    write(
        root,
        {
            "src/client.py": "\n".join(filler) + "\n",
            "src/other.py": "nothing relevant\n",
            "docs/notes.md": "retries mentioned once\n",
            "build/out.txt": "retries are configured here with backoff\n",
            ".gitignore": "build/\n",
        },
    )
    result = mcp.call("rank_files", query="where are retries configured", top_k=2)
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["files"] == 3  # build/ is ignored, as rerank files ignores it
    assert [r["path"] for r in data["results"]] == ["src/client.py", "docs/notes.md"]
    best = data["results"][0]
    assert best["start_line"] <= 100 <= best["end_line"]
    assert best["end_line"] - best["start_line"] == 59  # a 60-line chunk
    assert "retries are configured here" in best["text"]
    assert best["chunks"] == 3
    assert data["chunks"] == len(sent(server)) == 5
    lines = text_of(result).splitlines()
    assert lines[0].startswith("best 2 of 3 files (5 chunks)")
    where = f"src/client.py:{best['start_line']}-{best['end_line']}"
    assert lines[1].split()[2] == where
    assert lines[1].endswith("retries are configured here with backoff")


@needs_sdk
def test_rank_files_takes_paths_and_globs(mcp: Mcp, root: Path) -> None:
    write(root, {"a/x.py": "retry\n", "a/y.txt": "retry\n", "b/z.py": "retry\n"})

    async def body(session: ClientSession) -> list[list[str]]:
        calls = [
            {"paths": ["a"]},
            {"glob": "*.py"},
            {"paths": ["a", "b"], "glob": ["*.py", "!x.py"]},  # relative to each path
        ]
        found = []
        for arguments in calls:
            result = await session.call_tool("rank_files", {"query": "retry", **arguments})
            assert not result.is_error, text_of(result)
            found.append(sorted(r["path"] for r in result.structured_content["results"]))
        return found

    assert mcp.run(body) == [["a/x.py", "a/y.txt"], ["a/x.py", "b/z.py"], ["b/z.py"]]


# -- safety -----------------------------------------------------------------------------------


@needs_sdk
def test_paths_outside_the_root_are_refused_symlinks_included(
    mcp: Mcp, server: RerankServer, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    write(outside, {"private.txt": "retries outside the root\n"})
    write(root, {"inside.txt": "retries inside\n"})
    (root / "door").symlink_to(outside, target_is_directory=True)
    (root / "door.txt").symlink_to(outside / "private.txt")
    (root / "sub").mkdir()
    (root / "sub" / "back").symlink_to(outside, target_is_directory=True)

    async def body(session: ClientSession) -> list[Any]:
        attempts = [["../outside"], [str(outside)], ["door"], ["door.txt"], ["sub/back/.."]]
        results = []
        for paths in attempts:
            results.append(
                await session.call_tool("rank_files", {"query": "retries", "paths": paths})
            )
        # After every refusal the server still serves, and the walk of the root itself does
        # not follow the symlinks that lead out of it.
        results.append(await session.call_tool("rank_files", {"query": "retries"}))
        return results

    *refused, walked = mcp.run(body)
    for result in refused:
        assert result.is_error
        assert "outside the working root" in text_of(result)
        assert str(root.resolve()) in text_of(result)
    assert not walked.is_error, text_of(walked)
    assert [r["path"] for r in walked.structured_content["results"]] == ["inside.txt"]
    assert "symlinks out of the root" in walked.structured_content["skipped"]
    assert not any("outside the root" in text for text in sent(server))


@needs_sdk
def test_secret_files_are_never_sent(mcp: Mcp, server: RerankServer, root: Path) -> None:
    secret = "retries SECRET-MARKER-7731"
    write(
        root,
        {
            ".env": secret,
            ".env.local": secret,
            "credentials.json": secret,
            "keys/server.pem": secret,
            "deploy/id_rsa": secret,
            "notes.txt": "retries are ordinary here\n",
        },
    )
    (root / "innocent.txt").symlink_to(root / ".env")

    async def body(session: ClientSession) -> list[Any]:
        calls = [
            {"query": "retries secret marker"},
            {"query": "retries", "glob": ["*", ".env*", "*.pem", "**/id_rsa"]},
            {"query": "retries", "paths": [".env"]},
            {"query": "retries", "paths": ["credentials.json", "keys", "innocent.txt"]},
        ]
        return [await session.call_tool("rank_files", arguments) for arguments in calls]

    first, globbed, named, several = mcp.run(body)
    for result in (first, globbed):
        assert not result.is_error, text_of(result)
        assert [r["path"] for r in result.structured_content["results"]] == ["notes.txt"]
        assert "likely secrets" in result.structured_content["skipped"]
    for result in (named, several):
        assert not result.is_error
        assert text_of(result).startswith("no files to rank (skipped")
        assert "likely secrets" in text_of(result)
    assert sent(server)  # the ordinary file was sent ...
    assert not any("SECRET-MARKER" in text for text in sent(server))  # ... and nothing else
    assert "SECRET-MARKER" not in mcp.transcript.everything()


@needs_sdk
def test_a_call_over_the_budget_is_refused_and_nothing_is_sent(
    mcp: Mcp, server: RerankServer, root: Path
) -> None:
    mcp.args = ["--max-docs", "3"]
    write(root, {f"f{n}.txt": f"retries {n}\n" for n in range(5)})

    async def body(session: ClientSession) -> list[Any]:
        return [
            await session.call_tool("rank", {"query": "q", "documents": ["a", "b", "c", "d"]}),
            await session.call_tool("rank_files", {"query": "retries"}),
            await session.call_tool("rank_files", {"query": "retries", "glob": "f[0-2].txt"}),
            await session.call_tool("rank", {"query": "q", "documents": ["a", "b", "c"]}),
        ]

    too_many, too_many_files, files_within, within = mcp.run(body)
    assert too_many.is_error and too_many_files.is_error
    assert text_of(too_many).startswith("refused: this call would score 4 documents")
    assert "limit of 3 documents per call" in text_of(too_many)
    assert "--max-docs" in text_of(too_many) and "mcp_max_docs" in text_of(too_many)
    assert "limit of 3 file chunks per call" in text_of(too_many_files)
    assert not files_within.is_error and not within.is_error
    assert sorted(sent(server)) == sorted(
        ["retries 0\n", "retries 1\n", "retries 2\n", "a", "b", "c"]
    )


@needs_sdk
def test_the_budget_counts_every_chunk_and_comes_from_the_environment_too(
    mcp: Mcp, server: RerankServer, root: Path
) -> None:
    mcp.env["RERANK_MCP_MAX_DOCS"] = "2"
    # One file, three 60-line chunks: one document, but three to score.
    write(root, {"long.txt": "".join(f"retries line {n}\n" for n in range(130))})
    result = mcp.call("rank_files", query="retries")
    assert result.is_error
    assert text_of(result).startswith("refused: this call would score 3 chunks of 1 file")
    assert server.rerank_requests == []


@needs_sdk
def test_the_cli_budgets_from_the_config_or_environment_apply_to_each_call(
    mcp: Mcp, server: RerankServer
) -> None:
    # max_cost: the price comes from GET /models ($0.008 per 1,000); max_docs counts what
    # would be sent after dedup and cache, as in the CLI.
    mcp.env.update(RERANK_MAX_COST="0.00002", RERANK_MAX_DOCS="3")

    async def body(session: ClientSession) -> list[Any]:
        return [
            await session.call_tool("rank", {"query": "q", "documents": ["a", "a", "b"]}),
            await session.call_tool("rank", {"query": "q", "documents": ["c", "d", "e"]}),
            await session.call_tool("rank", {"query": "q", "documents": ["f", "g", "h", "i"]}),
            await session.call_tool("rank", {"query": "q", "documents": ["a", "b", "j"]}),
        ]

    deduped, over_cost, over_docs, cached = mcp.run(body)
    assert not deduped.is_error, text_of(deduped)  # 2 to send: $0.000016
    assert over_cost.is_error
    assert "refusing to spend an estimated $0.000024 on 3 documents" in text_of(over_cost)
    assert over_docs.is_error and "over the limit of max_docs = 3" in text_of(over_docs)
    assert not cached.is_error, text_of(cached)  # only j is sent
    assert sent(server) == ["a", "b", "j"]


@needs_sdk
def test_the_key_never_appears_and_a_refusal_leaves_the_server_running(
    mcp: Mcp, server: RerankServer
) -> None:
    server.api_key = "gr-the-only-key-the-server-takes"  # TEST_KEY is rejected: 401

    async def body(session: ClientSession) -> list[Any]:
        refused = await session.call_tool("rank", {"query": "q", "documents": ["a", "b"]})
        server.api_key = TEST_KEY
        served = await session.call_tool("rank", {"query": "q", "documents": ["a", "b"]})
        return [refused, served]

    refused, served = mcp.run(body)
    assert refused.is_error
    message = text_of(refused)
    assert "was rejected by" in message and "GR_KEY" in message
    assert "gr-…CRET" in message  # masked, so the user knows which key
    assert not served.is_error, text_of(served)
    everything = mcp.transcript.everything()
    assert "was rejected" in mcp.transcript.stderr  # the server's log says what happened
    assert TEST_KEY not in everything
    assert TEST_KEY[3:-4] not in everything  # not even its middle


@needs_sdk
def test_an_api_failure_is_a_tool_error_and_the_server_goes_on(
    mcp: Mcp, server: RerankServer
) -> None:
    mcp.args = ["--max-retries", "0"]
    server.add_faults(Fault.error(503, "model overloaded"))

    async def body(session: ClientSession) -> list[Any]:
        return [
            await session.call_tool("rank", {"query": "q", "documents": ["a"]}),
            await session.call_tool("rank", {"query": "q", "documents": ["a"]}),
        ]

    failed, served = mcp.run(body)
    assert failed.is_error
    assert "503" in text_of(failed) or "overloaded" in text_of(failed)
    assert "Traceback" not in mcp.transcript.everything()
    assert not served.is_error, text_of(served)
    assert served.structured_content["results"][0]["text"] == "a"


@needs_sdk
def test_bad_arguments_are_tool_errors(mcp: Mcp, server: RerankServer) -> None:
    async def body(session: ClientSession) -> list[Any]:
        return [
            await session.call_tool("rank", {"query": "  ", "documents": ["a"]}),
            await session.call_tool("rank", {"query": "q", "documents": ["a"], "top_k": 0}),
            await session.call_tool("rank_files", {"query": "q", "paths": ["missing"]}),
        ]

    blank, zero, missing = mcp.run(body)
    assert blank.is_error and "the query is blank" in text_of(blank)
    assert zero.is_error and "top_k" in text_of(zero)
    assert missing.is_error and "missing: no such file or directory" in text_of(missing)
    assert server.rerank_requests == []


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A root with directories and symlinks that stay in it or lead out, and a sibling."""
    base = tmp_path_factory.mktemp("tree")
    root, outside = base / "root", base / "outside"
    (root / "a" / "b").mkdir(parents=True)
    (outside / "c").mkdir(parents=True)
    (root / "a" / "b" / "file.txt").write_text("x")
    (root / "in_link").symlink_to(root / "a")
    (root / "out_link").symlink_to(outside)
    (root / "a" / "up").symlink_to("..")
    (root / "a" / "escape").symlink_to("../..")
    (outside / "back").symlink_to(root / "a")
    return root.resolve(), outside.resolve()


PARTS = ["..", ".", "a", "b", "c", "file.txt", "in_link", "out_link", "up", "escape", "back"]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(PARTS), min_size=1, max_size=6), start=st.integers(0, 2))
def test_a_path_is_taken_only_when_what_it_names_lies_inside_the_root(
    tree: tuple[Path, Path], parts: list[str], start: int
) -> None:
    root, outside = tree
    given_path = os.path.join(*(["", str(root), str(outside)][start : start + 1] + parts))
    target = Path(root, given_path)  # an absolute path stays itself
    try:
        taken = inside_root(str(root), [given_path])
    except OutsideRoot as refused:
        assert "outside the working root" in str(refused)
        assert not target.resolve().is_relative_to(root)
        return
    relative = taken[0] if taken else "."
    assert not os.path.isabs(relative) and ".." not in Path(relative).parts
    assert (root / relative).resolve() == target.resolve()
    assert (root / relative).resolve().is_relative_to(root)
    if target.exists():
        assert os.path.samefile(root / relative, target)


# -- starting up ------------------------------------------------------------------------------


def run_rerank(code: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_the_sdk_rerank_mcp_exits_2_naming_the_extra(tmp_path: Path, root: Path) -> None:
    # `import mcp` fails in this process as it does where the SDK is not installed; no key
    # is set either: the missing extra is said first.
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "from rerank_cli.cli import main\n"
        "sys.exit(main(['mcp']))"
    )
    done = run_rerank(code, environment(tmp_path, None, GR_KEY=""), root)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert f"rerank mcp needs the MCP Python SDK, an optional extra: {EXTRA}" in done.stderr
    assert "Traceback" not in done.stderr


@needs_sdk
def test_without_a_key_the_server_does_not_start(tmp_path: Path, root: Path) -> None:
    code = "import sys\nfrom rerank_cli.cli import main\nsys.exit(main(['mcp']))"
    done = run_rerank(code, environment(tmp_path, None, GR_KEY=""), root)
    assert done.returncode == 3
    assert "no API key" in done.stderr
    assert done.stdout == ""  # stdout is the protocol's


@needs_sdk
def test_an_offline_engine_needs_no_key(tmp_path: Path, root: Path) -> None:
    write(root, {"a.txt": "retries here\n", "b.txt": "nothing\n"})
    transcript = Transcript(stderr_path=tmp_path / "stderr.txt")
    offline = Mcp(root, environment(tmp_path, None, GR_KEY=""), transcript, ["--engine", "lexical"])
    result = offline.call("rank_files", query="retries")
    assert not result.is_error, text_of(result)
    assert result.structured_content["results"][0]["path"] == "a.txt"
    assert "MCP server on stdio" in transcript.stderr


@needs_sdk
def test_log_records_are_redacted_tracebacks_included() -> None:
    import io
    import logging

    from rerank_cli.integrations.mcp_server import Redacting
    from rerank_cli.redact import register_secret

    register_secret(TEST_KEY)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(Redacting())
    logger = logging.getLogger("tests.mcp.redacting")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"bad key {TEST_KEY}")
        except RuntimeError:
            logger.exception("request with %s failed", TEST_KEY)
    finally:
        logger.removeHandler(handler)
    logged = out.getvalue()
    assert "request with gr-…CRET failed" in logged
    assert "RuntimeError: bad key gr-…CRET" in logged  # the traceback, redacted
    assert TEST_KEY not in logged
