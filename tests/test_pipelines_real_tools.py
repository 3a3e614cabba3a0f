"""Real `rg` and GNU `grep` output, fed to the CLI: the ranked plain output is the input lines
reordered, every match is one document, and the scored text is the match text.

The tree (tests/fixtures_grep.py) has a path with a colon, one with `-12-`, one with spaces, a
non-UTF-8 file, CRLF lines and a binary file. grep runs with LC_ALL=C so that it prints the
non-UTF-8 line instead of calling the file binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests import fixtures_grep as fx
from tests.conftest import CliResult, RunCli

RG = shutil.which("rg")
GREP = shutil.which("grep")
# CI (.ci/run) sets RERANK_REQUIRE_TOOLS=1: a missing tool then fails these tests, not skips them.
REQUIRE_TOOLS = os.environ.get("RERANK_REQUIRE_TOOLS") == "1"
needs_rg = pytest.mark.skipif(
    RG is None and not REQUIRE_TOOLS, reason="ripgrep not installed (apt-get install ripgrep)"
)
needs_grep = pytest.mark.skipif(GREP is None and not REQUIRE_TOOLS, reason="grep not installed")

QUERY = "retry the connection with exponential backoff"
BEST = ("src/retry.py", 2)  # the one TODO line that shares the query's words
LEXICAL = ("--engine", "lexical")

# Flag sets from issue 3. Without -n, -0 with context lines cannot tell context from matches
# (nor can a reader), so -0 is combined with -n.
RG_FLAGS = [
    ["-n", "--no-heading"],
    ["-n", "-H", "--no-heading", "--column"],
    ["-n", "--no-heading", "-C2"],
    ["-n", "-0"],
    ["-n", "-0", "-C2"],
    ["-n", "--color=always"],
    ["-n", "--color=always", "-C2", "--column"],
    ["-H", "--no-heading"],
    ["-H", "--no-heading", "-C2"],
]
GREP_FLAGS = [
    ["-rn"],
    ["-rnH", "-C2"],
    ["-rnZ"],
    ["-rnZ", "-C2"],
    ["-rn", "--color=always"],
    ["-rn", "--color=always", "-C2"],
    ["-r"],
    ["-rH", "-C2"],
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return fx.build(tmp_path / "tree")


def run_tool(tool: str, flags: list[str], cwd: Path, target: str = ".") -> bytes:
    """``rg FLAGS TODO [target]`` or ``grep FLAGS TODO target`` in ``cwd``; its stdout."""
    if tool == "rg":
        assert RG is not None, "rg is not installed"
        command = [RG, *flags, fx.PATTERN, *([target] if target != "." else [])]
    else:
        assert GREP is not None, "grep is not installed"
        command = [GREP, *flags, fx.PATTERN, target]
    env = {**os.environ, "LC_ALL": "C"}
    done = subprocess.run(command, cwd=cwd, capture_output=True, env=env, check=False)
    assert done.returncode in (0, 1), done.stderr  # 1 would be: no match (asserted below)
    assert done.stdout, f"{command} printed nothing"
    return done.stdout


def lines_of(data: bytes) -> list[bytes]:
    """Lines with their terminators; a last line without one gets a newline, as plain adds it."""
    found = data.splitlines(keepends=True)
    return [line if line.endswith(b"\n") else line + b"\n" for line in found]


def is_separator(line: bytes) -> bool:
    return fx.plain_line(line) == b"--"


def key(path: str | None, line: int | None, text: str) -> tuple[str | None, object]:
    """A match's identity: (path, line), or (path, text) when the tool printed no numbers."""
    path = path.removeprefix("./") if path is not None else None
    return (path, line if line is not None else text)


def check(out: bytes, plain: CliResult, jsonl: CliResult, with_line: bool) -> None:
    assert plain.exit_code == 0, plain.stderr
    assert jsonl.exit_code == 0, jsonl.stderr
    records = jsonl.records()
    expected = {key(m.path, m.line if with_line else None, m.text): m for m in fx.matches()}

    # Every match is exactly one document, its scored text the match text (no colour, no path).
    found = [key(r["path"], r["line"], r["text"]) for r in records]
    assert Counter(found) == Counter(list(expected)), "documents are not the matches"
    for record, k in zip(records, found, strict=True):
        assert record["text"] == expected[k].text
        assert "\x1b" not in record["text"]
    assert [r["rank"] for r in records] == list(range(1, len(records) + 1))
    scores = [r["score"] for r in records]
    assert scores == sorted(scores, reverse=True)
    assert found[0] == (BEST[0], BEST[1] if with_line else expected_text(BEST))

    # Plain output: the input lines, byte for byte, reordered; `--` only between documents.
    given = [line for line in lines_of(out) if not is_separator(line)]
    shown = lines_of(plain.stdout)
    separators = [line for line in shown if is_separator(line)]
    assert Counter(line for line in shown if not is_separator(line)) == Counter(given)
    had_context = len(given) > len(expected)
    assert len(separators) == (len(records) - 1 if had_context else 0)
    assert not is_separator(shown[0])
    assert not is_separator(shown[-1])

    # ... in the order of the ranking.
    order = []
    for line in shown:
        path, number, context, text = fx.oracle(line)
        if not is_separator(line) and not context:
            order.append(key(path, number, text))
    assert order == found


def expected_text(where: tuple[str, int]) -> str:
    return next(m.text for m in fx.matches() if (m.path, m.line) == where)


def rank(cli: RunCli, out: bytes, fmt: str, *extra: str) -> CliResult:
    return cli(QUERY, "--grep", *LEXICAL, "-o", fmt, *extra, stdin=out)


@needs_rg
@pytest.mark.parametrize("flags", RG_FLAGS, ids=" ".join)
def test_rg_output(
    cli: RunCli, tree: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    out = run_tool("rg", flags, tree)
    monkeypatch.chdir(tree)
    check(out, rank(cli, out, "plain"), rank(cli, out, "jsonl"), with_line="-n" in flags)


@needs_grep
@pytest.mark.parametrize("flags", GREP_FLAGS, ids=" ".join)
def test_grep_output(
    cli: RunCli, tree: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    out = run_tool("grep", flags, tree)
    monkeypatch.chdir(tree)
    check(out, rank(cli, out, "plain"), rank(cli, out, "jsonl"), with_line="n" in flags[0])


# A lone line `TODO: fix 1:2:3 parser colon` (or `3:TODO: fix …` with -n) fits
# `path:line:text` too; with no such path on disk, "TODO: fix 1" is no plausible path.
SINGLE_FILES = [
    "src/retry.py",
    "weird:name.txt",
    "crlf.txt",
    "latin1.txt",
]


@pytest.mark.parametrize("name", SINGLE_FILES)
@pytest.mark.parametrize(
    "tool",
    [pytest.param("rg", marks=needs_rg), pytest.param("grep", marks=needs_grep)],
)
def test_a_single_file(
    cli: RunCli, tree: Path, monkeypatch: pytest.MonkeyPatch, tool: str, name: str
) -> None:
    """`rg -n TODO FILE` prints `line:text`, `grep TODO FILE` the bare text: no path in either.
    The query puts the last TODO of src/retry.py (`TODO:1:2:3 …`, which looks like a prefix)
    first, so the output really is reordered."""
    with_line = tool == "rg"
    out = run_tool(tool, ["-n"] if with_line else [], tree, target=name)
    monkeypatch.chdir(tree)
    query = "looks like a prefix"
    plain = cli(query, "--grep", *LEXICAL, "-o", "plain", stdin=out)
    jsonl = cli(query, "--grep", *LEXICAL, "-o", "jsonl", stdin=out)
    assert plain.exit_code == 0, plain.stderr
    assert jsonl.exit_code == 0, jsonl.stderr
    records = jsonl.records()
    expected = fx.matches({name})

    # Every match is one document, its text the match text; no path where none was printed.
    assert all(r["path"] is None for r in records)
    if with_line:
        found = Counter((r["line"], r["text"]) for r in records)
        assert found == Counter((m.line, m.text) for m in expected)
    else:
        assert all(r["line"] is None for r in records)
        assert Counter(r["text"] for r in records) == Counter(m.text for m in expected)

    # Plain output: the input lines, byte for byte, in the order of the ranking.
    shown = lines_of(plain.stdout)
    assert Counter(shown) == Counter(lines_of(out))
    if with_line:
        assert [int(line.split(b":", 1)[0]) for line in shown] == [r["line"] for r in records]
    else:
        texts = [fx.plain_line(line).decode("utf-8", "replace") for line in shown]
        assert texts == [r["text"] for r in records]
    if name == "src/retry.py":
        assert records[0]["text"] == "# TODO:1:2:3 looks like a prefix"
        assert shown[0] != lines_of(out)[0]


@needs_rg
@pytest.mark.parametrize("flags", [["-n", "--no-heading", "-C2"], ["-H", "--no-heading"]])
def test_grep_root_stands_in_for_the_working_directory(
    cli: RunCli, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    out = run_tool("rg", flags, tree)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    root = ("--grep-root", str(tree))
    check(out, rank(cli, out, "plain", *root), rank(cli, out, "jsonl", *root), "-n" in flags)


@needs_rg
def test_paths_with_line_numbers_parse_without_the_tree_on_disk(
    cli: RunCli, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the files, the shape and the neighbours still place `x-12-y.txt` and
    `weird:name.txt` right."""
    out = run_tool("rg", ["-n", "--no-heading", "-C2"], tree)
    monkeypatch.chdir(tmp_path)
    check(out, rank(cli, out, "plain"), rank(cli, out, "jsonl"), with_line=True)


@needs_rg
def test_group_makes_each_context_group_one_document(
    cli: RunCli, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_tool("rg", ["-n", "--no-heading", "-C1"], tree)
    monkeypatch.chdir(tree)
    plain = rank(cli, out, "plain", "--group")
    records = rank(cli, out, "jsonl", "--group").records()
    groups = out.split(b"\n--\n")
    assert len(records) == len(groups)
    chunks = (plain.stdout.rstrip(b"\n") + b"\n").split(b"--\n")
    assert Counter(chunks) == Counter(g.rstrip(b"\n") + b"\n" for g in groups)
    retry = next(r for r in records if r["path"] == "src/retry.py")
    assert "exponential backoff" in retry["text"]
    assert "def connect():" in retry["text"]  # the context is scored too


@needs_rg
def test_with_path_scores_path_and_line(
    cli: RunCli, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_tool("rg", ["-n", "--no-heading"], tree)
    monkeypatch.chdir(tree)
    records = cli("crlf windows", "--grep", "--with-path", *LEXICAL, stdin=out).records()
    texts = {r["text"] for r in records}
    assert "crlf.txt:1: crlf TODO windows endings" in texts
    assert "weird:name.txt:3: TODO: fix 1:2:3 parser colon" in texts


@needs_rg
@pytest.mark.parametrize("context", [[], ["-C2"]], ids=["matches", "context"])
@pytest.mark.parametrize("format_", [[], ["-F", "rg-json"]], ids=["auto", "rg-json"])
def test_rg_json(
    cli: RunCli,
    tree: Path,
    monkeypatch: pytest.MonkeyPatch,
    context: list[str],
    format_: list[str],
) -> None:
    events = run_tool("rg", ["--json", *context], tree)
    text_form = run_tool("rg", ["-n", "-H", "--no-heading", *context], tree)
    monkeypatch.chdir(tree)
    plain = cli(QUERY, *format_, *LEXICAL, "-o", "plain", stdin=events)
    jsonl = cli(QUERY, *format_, *LEXICAL, "-o", "jsonl", stdin=events)
    assert plain.exit_code == 0, plain.stderr
    records = jsonl.records()
    # The same as rg's own text output, reordered; JSON keeps the event's fields.
    shown = [line for line in lines_of(plain.stdout) if line != b"--\n"]
    assert Counter(shown) == Counter(line for line in lines_of(text_form) if line != b"--\n")
    expected = {(m.path, m.line): m.text for m in fx.matches()}
    assert Counter((r["path"], r["line_number"]) for r in records) == Counter(list(expected))
    for record in records:
        assert record["text"] == expected[record["path"], record["line_number"]]
        assert {"absolute_offset", "submatches"} <= record.keys()
    assert (records[0]["path"], records[0]["line_number"]) == BEST
    assert "invalid UTF-8 replaced" in jsonl.stderr  # latin1.txt arrives as base64 bytes


@needs_rg
def test_a_real_shell_pipeline(tree: Path, tmp_path: Path) -> None:
    """`rg -n --no-heading TODO src | rerank … --grep -o plain -k 1` through real pipes."""
    assert RG is not None, "rg is not installed"
    env = {
        **os.environ,
        "RERANK_CONFIG_DIR": str(tmp_path / "config"),
        "RERANK_CACHE_DIR": str(tmp_path / "cache"),
    }
    with subprocess.Popen(
        [RG, "-n", "--no-heading", "TODO", "src"], cwd=tree, stdout=subprocess.PIPE
    ) as rg:
        ranked = subprocess.run(
            [
                sys.executable,
                "-m",
                "rerank_cli",
                QUERY,
                "--grep",
                *LEXICAL,
                "-o",
                "plain",
                "-k",
                "1",
            ],
            stdin=rg.stdout,
            cwd=tree,
            capture_output=True,
            env=env,
            check=False,
        )
    assert ranked.returncode == 0, ranked.stderr
    assert ranked.stdout == b"src/retry.py:2:# TODO retry the connection with exponential backoff\n"


@needs_rg
def test_table_shows_score_text_and_path_line(
    cli: RunCli, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_tool("rg", ["-n", "--color=always", "-C1"], tree)
    monkeypatch.chdir(tree)
    table = cli(QUERY, "--grep", *LEXICAL, "-o", "table", "--color", "never", stdin=out, width=200)
    assert table.exit_code == 0, table.stderr
    first = table.text.splitlines()[1]
    assert "# TODO retry the connection with exponential backoff" in first
    assert "src/retry.py:2" in first
    assert "\x1b" not in table.text
    assert "def connect" not in table.text  # context lines are not what the table shows


@needs_rg
@pytest.mark.parametrize("flags", [["-n", "--no-heading"], ["-n", "--no-heading", "-C2"]])
def test_auto_format_recognises_rg_output_with_files_on_disk(
    cli: RunCli, tree: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    """`rg -n … | rerank q -o plain` with no --grep: the files exist, so it is grep output."""
    out = run_tool("rg", flags, tree)
    monkeypatch.chdir(tree)
    auto = [cli(QUERY, *LEXICAL, "-o", fmt, stdin=out) for fmt in ("plain", "jsonl")]
    check(out, *auto, with_line=True)


def test_auto_format_keeps_text_with_colons_as_lines(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = b"note:12:remember the milk\nanother:3:line\n"
    records = cli("milk", *LEXICAL, stdin=text).records()
    assert {r["text"] for r in records} == {"note:12:remember the milk", "another:3:line"}
