"""``rerank files`` through the real entry point: what is walked, what reaches the engine, how a
file's score and best chunk come out, and every output format."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from rerank_cli.core.line_chunks import LineChunker, split
from rerank_cli.engines.interface import ScoreCallback
from rerank_cli.engines.lexical import LexicalEngine
from tests.conftest import CliResult, RunCli
from tests.server import RerankServer, score
from tests.test_walk import SECRET_EXAMPLES, VENDORED, git_repo, make, needs_rg, rg_files

QUERY = "where are retries configured"
MARKER = "retries are configured here"


def filler(count: int, word: str = "filler") -> list[str]:
    return [f"{word} line {n}" for n in range(1, count + 1)]


def with_marker(count: int, at: int) -> str:
    """``count`` filler lines with the marker on (1-based) line ``at``."""
    lines = filler(count)
    lines[at - 1] = MARKER
    return "\n".join(lines) + "\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def scored_texts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every text the lexical engine is asked to score."""
    seen: list[str] = []
    original = LexicalEngine.score

    async def spy(
        self: LexicalEngine,
        query: str,
        texts: Sequence[str],
        on_scores: ScoreCallback | None = None,
    ) -> list[float]:
        seen.extend(texts)
        return await original(self, query, texts, on_scores)

    monkeypatch.setattr(LexicalEngine, "score", spy)
    yield seen


def lexical(cli: RunCli, *args: str, **kwargs: Any) -> CliResult:
    return cli("files", *args, "--engine", "lexical", **kwargs)


def sent(server: RerankServer) -> list[str]:
    return [text for request in server.rerank_requests for text in request.documents]


# -- scoring ----------------------------------------------------------------------------------


def test_a_file_scores_as_its_best_chunk_and_every_chunk_is_scored(
    api_cli: RunCli, server: RerankServer, workdir: Path
) -> None:
    make(
        workdir,
        {
            "client.py": with_marker(200, at=130),
            "notes.txt": "\n".join(filler(30, "other")) + "\nretries\n",
            "plain.md": "nothing relevant\n",
        },
    )
    result = api_cli("files", QUERY, "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    records = result.records()
    assert records[0]["path"] == "client.py"

    chunker = LineChunker()
    expected_sent: set[str] = set()
    for record in records:
        text = (workdir / record["path"]).read_text()
        units = split(chunker, text)
        expected_sent.update(piece for _, piece in units)
        scores = [score(QUERY, piece) for _, piece in units]
        assert record["score"] == pytest.approx(max(scores))
        assert record["chunks"] == len(units)
        best_chunk, best_piece = units[scores.index(max(scores))]
        assert record["best"] == {
            "start_line": best_chunk.start_line,
            "end_line": best_chunk.end_line,
            "text": best_piece,
        }
    assert set(sent(server)) == expected_sent

    best = records[0]
    # Windows 1-60, 51-110, 101-160, 151-200: line 130 is only in the third.
    assert (best["best"]["start_line"], best["best"]["end_line"], best["chunks"]) == (101, 160, 4)
    assert MARKER in best["best"]["text"]
    assert best["best"]["text"].startswith("filler line 101\n")


def test_chunk_lines_and_overlap_set_the_windows(cli: RunCli, workdir: Path) -> None:
    make(workdir, {"a.txt": with_marker(100, at=25)})
    result = lexical(cli, QUERY, "--chunk-lines", "10", "--overlap", "0", "-o", "json")
    assert result.exit_code == 0, result.stderr
    (record,) = orjson.loads(result.stdout)
    assert (record["best"]["start_line"], record["best"]["end_line"]) == (21, 30)
    assert record["chunks"] == 10


def test_a_small_file_is_one_chunk(cli: RunCli, workdir: Path) -> None:
    make(workdir, {"a.txt": "one\ntwo retries\n"})
    (record,) = lexical(cli, QUERY).records()
    assert record["best"] == {"start_line": 1, "end_line": 2, "text": "one\ntwo retries\n"}
    assert record["chunks"] == 1


@pytest.mark.parametrize(("option", "value"), [("--overlap", "60"), ("--max-filesize", "big")])
def test_bad_walk_options_are_usage_errors(
    cli: RunCli, workdir: Path, option: str, value: str
) -> None:
    make(workdir, {"a.txt": "x"})
    result = lexical(cli, QUERY, option, value)
    assert result.exit_code == 2
    assert option in result.stderr


# -- what is read, what is sent ---------------------------------------------------------------


def secret_tree(root: Path) -> dict[str, str]:
    """Every example of the secret list, each with a marker of its own, plus one normal file."""
    tree = {
        name: f"SECRET-MARKER-{n} retries configured\n" for n, name in enumerate(SECRET_EXAMPLES)
    }
    tree.update(
        {f"sub/{name}": f"SECRET-MARKER-sub-{n}\n" for n, name in enumerate(SECRET_EXAMPLES)}
    )
    tree["conf/credentials/aws.txt"] = "SECRET-MARKER-dir retries\n"
    tree["ok.txt"] = "retries are configured in the client\n"
    make(root, tree)
    return tree


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--hidden", "--no-ignore"],
        ["--hidden", "-g", ".env*", "-g", "*.pem", "-g", "*.txt", "-g", ".git/**"],
    ],
)
def test_no_secret_reaches_the_server(
    api_cli: RunCli, server: RerankServer, workdir: Path, extra: list[str]
) -> None:
    secret_tree(workdir)
    result = api_cli("files", QUERY, *extra, "-o", "plain", "-v")
    assert result.exit_code == 0, result.stderr
    assert result.text == "ok.txt\n"
    texts = sent(server)
    assert texts == ["retries are configured in the client\n"]
    assert not any("SECRET-MARKER" in text for text in texts)
    if "--hidden" in extra:
        assert "likely secrets" in result.stderr


def test_secrets_named_on_the_command_line_are_not_sent_either(
    cli: RunCli, workdir: Path, scored_texts: list[str]
) -> None:
    secret_tree(workdir)
    result = lexical(cli, QUERY, ".env", "sub/id_rsa", ".git/config", "ok.txt", "-o", "plain")
    assert result.exit_code == 0
    assert result.stdout == b"ok.txt\n"
    assert not any("SECRET-MARKER" in text for text in scored_texts)
    assert result.stderr.count("--include-secrets") == 3


def test_include_secrets_sends_them_with_a_warning(
    api_cli: RunCli, server: RerankServer, workdir: Path
) -> None:
    tree = secret_tree(workdir)
    result = api_cli("files", QUERY, "--hidden", "--include-secrets", "-o", "plain")
    assert result.exit_code == 0, result.stderr
    assert "--include-secrets" in result.stderr
    assert f"sent to {server.base_url.split('//')[1].split('/')[0]}" in result.stderr
    texts = set(sent(server))
    assert {content for content in tree.values()} <= texts


def test_only_secrets_left_is_nothing_to_rank(cli: RunCli, workdir: Path) -> None:
    make(workdir, {".env": "A=1", "id_rsa": "key"})
    result = lexical(cli, QUERY, "--hidden", "-v")
    assert result.exit_code == 1
    assert "no files to rank" in result.stderr
    assert "2 likely secrets" in result.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], ["a.py", "sub/b.py"]),
        (["--hidden"], [".gitignore", ".h.py", "a.py", "sub/.rerankignore", "sub/b.py"]),
        (["--no-ignore"], ["a.py", "ignored.log", "sub/b.py", "sub/deeper.py"]),
        # As in ripgrep, a glob overrides ignore files and the hidden rule.
        (["-g", "sub/**", "-g", "!b.py"], ["sub/.rerankignore", "sub/deeper.py"]),
        (["-g", "*.md"], []),
        (["-g", "*.log"], ["ignored.log"]),
        (["-g", "!sub/"], ["a.py"]),
        (["--max-depth", "1"], ["a.py"]),
        (["--follow"], ["a.py", "linked/out.py", "sub/b.py"]),
    ],
)
def test_walk_options_reach_the_walk(
    cli: RunCli, tmp_path: Path, workdir: Path, extra: list[str], expected: list[str]
) -> None:
    make(
        workdir,
        {
            ".gitignore": "*.log\n",
            "a.py": "x\n",
            ".h.py": "x\n",
            "ignored.log": "x\n",
            "sub/b.py": "x\n",
            "sub/.rerankignore": "deeper.py\n",
            "sub/deeper.py": "x\n",
        },
    )
    make(tmp_path, {"outside/out.py": "x\n"})
    (workdir / "linked").symlink_to(tmp_path / "outside")
    result = lexical(cli, QUERY, *extra, "-o", "plain")
    paths = result.stdout.decode().splitlines()
    assert sorted(paths) == expected
    assert result.exit_code == (0 if expected else 1)


@needs_rg
def test_inside_a_directory_an_ancestor_ignores_the_files_rg_lists_are_ranked(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = {name: content or f"{name}\n" for name, content in VENDORED.items()}
    repo = git_repo(tmp_path / "repo", tree)  # the top .gitignore has /vendor
    monkeypatch.chdir(repo / "vendor" / "lib")
    result = lexical(cli, QUERY, ".", "-o", "plain", "-v")
    assert result.exit_code == 0, result.stderr
    assert sorted(result.stdout.decode().splitlines()) == rg_files(Path.cwd(), ".")
    # -v says what skipped the rest, and that the rule came from above the walked path
    assert (
        "rerank: 3 files, 3 chunks; skipped 5 ignored (5 by ../../.gitignore, above the walked "
        "path), 1 hidden\n"
    ) in result.stderr


def test_verbose_counts_files_skipped_by_ignore_hidden_and_glob_rules(
    cli: RunCli, workdir: Path
) -> None:
    make(workdir, {".gitignore": "*.log\nout/\n", "a.log": "", "out/x.py": "", "a.py": "x\n"})
    make(workdir, {".hidden.py": "x\n", "b.md": "x\n"})
    result = lexical(cli, QUERY, "-g", "!*.md", "-v")
    assert result.exit_code == 0, result.stderr
    assert "1 file, 1 chunk; skipped 2 ignored, 2 hidden, 1 excluded by -g\n" in result.stderr


def test_binary_large_empty_and_unreadable_files_are_skipped_and_counted(
    cli: RunCli, workdir: Path, scored_texts: list[str]
) -> None:
    make(
        workdir,
        {
            "bin.dat": b"retries\0\x01\x02",
            "big.txt": "retries " * 200,
            "blank.txt": "\n\n",
            "latin1.txt": b"retries caf\xe9\n",
            "ok.txt": "retries\n",
        },
    )
    (workdir / "dangling").symlink_to(workdir / "nowhere")
    result = lexical(cli, QUERY, "--max-filesize", "1K", "-o", "plain", "-v")
    assert result.exit_code == 0, result.stderr
    assert sorted(result.stdout.decode().splitlines()) == ["latin1.txt", "ok.txt"]
    assert sorted(scored_texts) == ["retries\n", "retries caf\ufffd\n"]
    stderr = result.stderr
    assert "dangling: broken symlink, skipped" in stderr
    assert (
        "rerank: 2 files, 2 chunks; skipped 1 binary, 1 over 1 KiB, 1 unreadable, 1 empty; "
        "invalid UTF-8 replaced in 1\n"
    ) in stderr


def test_without_verbose_skips_are_not_summarised(cli: RunCli, workdir: Path) -> None:
    make(workdir, {"bin.dat": b"\0", "ok.txt": "x\n"})
    result = lexical(cli, QUERY)
    assert result.exit_code == 0
    assert result.stderr == ""


def test_nothing_readable_left_exits_1(cli: RunCli, workdir: Path) -> None:
    make(workdir, {"bin.dat": b"\0"})
    result = lexical(cli, QUERY)
    assert result.exit_code == 1
    assert "no files to rank" in result.stderr


def test_with_nothing_left_the_message_says_what_was_skipped(cli: RunCli, workdir: Path) -> None:
    make(workdir, {".gitignore": "*.log\n", "a.log": "x\n", "bin.dat": b"\0"})
    result = lexical(cli, QUERY)
    assert result.exit_code == 1
    assert "no files to rank (skipped 1 ignored, 1 hidden, 1 binary)\n" in result.stderr


@pytest.mark.parametrize(
    "paths", [["srcc"], ["srcc", "."], ["ok.txt", "srcc", "sub/gone"], ["dangling"]]
)
def test_a_missing_path_is_exit_2_and_nothing_is_sent(
    api_cli: RunCli, server: RerankServer, workdir: Path, paths: list[str]
) -> None:
    # As `rank -i missing`; rg would rank the other paths and then exit 2: for a paid API,
    # the run is refused before anything is read or sent.
    make(workdir, {"ok.txt": "retries\n", "sub/x.txt": "retries\n"})
    (workdir / "dangling").symlink_to(workdir / "nowhere")
    result = api_cli("files", QUERY, *paths)
    assert result.exit_code == 2
    assert result.stdout == b""
    assert server.rerank_requests == []
    missing = [path for path in paths if not (workdir / path).exists()]
    assert (
        result.stderr
        == f"rerank: error: {'; '.join(m + ': no such file or directory' for m in missing)}\n"
    )


def test_a_missing_path_is_refused_in_a_dry_run_too(cli: RunCli, workdir: Path) -> None:
    make(workdir, {"ok.txt": "x\n"})
    result = cli("files", QUERY, ".", "srcc", "--dry-run")
    assert (result.exit_code, result.stderr) == (
        2,
        "rerank: error: srcc: no such file or directory\n",
    )


def test_a_missing_key_fails_before_walking(cli: RunCli, workdir: Path) -> None:
    make(workdir, {"ok.txt": "x\n"})
    (workdir / "dangling").symlink_to(workdir / "nowhere")
    result = cli("files", QUERY)
    assert result.exit_code == 3
    assert "no API key" in result.stderr
    assert "broken symlink" not in result.stderr


# -- output -----------------------------------------------------------------------------------


@pytest.fixture
def ranked_tree(workdir: Path) -> Path:
    return make(
        workdir,
        {
            "best.py": with_marker(200, at=130),
            "middle.py": "retries\n",
            "last.py": "nothing here\n",
        },
    )


def test_jsonl_records(cli: RunCli, ranked_tree: Path) -> None:
    records = lexical(cli, QUERY).records()
    assert [r["path"] for r in records] == ["best.py", "middle.py", "last.py"]
    assert [r["rank"] for r in records] == [1, 2, 3]
    assert all(set(r) == {"rank", "score", "path", "best", "chunks"} for r in records)
    assert records[0]["score"] > records[1]["score"] > records[2]["score"]


def test_json_is_one_array_of_the_same_records(cli: RunCli, ranked_tree: Path) -> None:
    jsonl = lexical(cli, QUERY, "-o", "jsonl").records()
    array = orjson.loads(lexical(cli, QUERY, "-o", "json").stdout)
    assert array == jsonl


def test_plain_paths_and_nul_terminated(cli: RunCli, ranked_tree: Path) -> None:
    assert lexical(cli, QUERY, "-o", "plain").stdout == b"best.py\nmiddle.py\nlast.py\n"
    assert lexical(cli, QUERY, "-0").stdout == b"best.py\0middle.py\0last.py\0"
    assert lexical(cli, QUERY, "--null", "-o", "plain", "-k", "1").stdout == b"best.py\0"


def test_nul_with_another_format_is_a_usage_error(cli: RunCli, ranked_tree: Path) -> None:
    result = lexical(cli, QUERY, "-0", "-o", "jsonl")
    assert result.exit_code == 2
    assert "-0/--null" in result.stderr


def test_table_on_a_terminal(cli: RunCli, ranked_tree: Path) -> None:
    result = lexical(cli, QUERY, stdout_tty=True, no_color=True, width=120)
    assert result.exit_code == 0
    lines = result.stdout.decode().splitlines()
    assert lines[0].split() == ["#", "score", "path", "lines", "best", "chunk"]
    # The best chunk (lines 101-160) is shown by its line that shares the query's words.
    assert lines[1].split() == ["1", lines[1].split()[1], "best.py", "101-160", *MARKER.split()]
    assert lines[2].split()[2:] == ["middle.py", "1", "retries"]
    assert "\x1b[" not in result.stdout.decode()
    assert result.stderr == ""  # three files: no more to tell of


def table_paths(result: CliResult) -> list[str]:
    return [line.split()[2] for line in result.stdout.decode().splitlines()[1:]]


@pytest.fixture
def many_files(workdir: Path) -> Path:
    """25 files, f01.txt best … f25.txt worst for QUERY."""
    return make(
        workdir,
        {f"f{n:02}.txt": "retries\n" + "\n".join(filler(n)) + "\n" for n in range(1, 26)},
    )


def test_a_terminal_table_shows_the_best_20_and_says_how_many_more(
    cli: RunCli, many_files: Path
) -> None:
    result = lexical(cli, QUERY, stdout_tty=True, no_color=True)
    assert result.exit_code == 0
    assert table_paths(result) == [f"f{n:02}.txt" for n in range(1, 21)]
    assert result.stderr == "rerank: … 5 more; -k N or --all to see them\n"


@pytest.mark.parametrize(("extra", "rows"), [(["-k", "22"], 22), (["--all"], 25), (["-k", "3"], 3)])
def test_k_and_all_choose_how_many_rows_a_terminal_table_shows(
    cli: RunCli, many_files: Path, extra: list[str], rows: int
) -> None:
    result = lexical(cli, QUERY, *extra, stdout_tty=True, no_color=True)
    assert result.exit_code == 0
    assert table_paths(result) == [f"f{n:02}.txt" for n in range(1, rows + 1)]
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("extra", "tty"),
    [(["-o", "table"], False), (["-o", "jsonl"], True), (["-o", "plain"], True), ([], False)],
)
def test_pipes_and_other_formats_show_every_file(
    cli: RunCli, many_files: Path, extra: list[str], tty: bool
) -> None:
    result = lexical(cli, QUERY, *extra, stdout_tty=tty, no_color=True)
    assert result.exit_code == 0
    shown = table_paths(result) if "table" in extra else result.stdout.decode().splitlines()
    assert len(shown) == 25
    assert "more" not in result.stderr


def test_all_with_top_k_is_a_usage_error(cli: RunCli, many_files: Path) -> None:
    result = lexical(cli, QUERY, "--all", "-k", "3", stdout_tty=True)
    assert result.exit_code == 2
    assert "--all and -k/--top-k" in result.stderr


def test_the_best_chunk_is_shown_by_its_most_telling_line(cli: RunCli, workdir: Path) -> None:
    make(
        workdir,
        {
            # a chunk that opens on closing brackets; the words are in camelCase further on
            "client.ts": "  )\n}\n\nconst timeout = 30;\nconst maxRetries = configureRetry(5);\n",
            # no word of the query: the longest line with letters, not the "{" it opens on
            "other.txt": "{\n  x\n  nothing relevant here at all\n}\n",
        },
    )
    result = lexical(cli, QUERY, stdout_tty=True, no_color=True, width=120)
    lines = result.stdout.decode().splitlines()[1:]
    rows = {line.split()[2]: line.split(maxsplit=4)[4].rstrip() for line in lines}
    assert rows == {
        "client.ts": "const maxRetries = configureRetry(5);",
        "other.txt": "nothing relevant here at all",
    }


@pytest.mark.parametrize("width", [50, 80])
def test_a_narrow_table_keeps_every_column_and_cuts_paths_on_the_left(
    cli: RunCli, ranked_tree: Path, width: int
) -> None:
    make(ranked_tree, {"a/very/long/directory/name/that/goes/on/and/on/target.py": "retries\n"})
    result = lexical(cli, QUERY, "-k", "2", stdout_tty=True, no_color=True, width=width)
    lines = result.stdout.decode().splitlines()
    assert all(len(line) <= width for line in lines)
    assert lines[0].split()[:2] == ["#", "score"]
    assert "lines" in lines[0]
    assert lines[1].split()[0] == "1"
    assert any(line.split()[2].startswith("…") and "get.py" in line for line in lines[1:])
    assert any("101-160" in line for line in lines[1:])


def test_tsv(cli: RunCli, ranked_tree: Path) -> None:
    lines = lexical(cli, QUERY, "-o", "tsv").stdout.decode().splitlines()
    assert [line.split("\t")[1:] for line in lines] == [
        ["best.py", "101", "160"],
        ["middle.py", "1", "1"],
        ["last.py", "1", "1"],
    ]


def test_top_k_min_score_and_quiet(cli: RunCli, ranked_tree: Path) -> None:
    assert lexical(cli, QUERY, "-o", "plain", "-k", "2").stdout == b"best.py\nmiddle.py\n"
    assert lexical(cli, QUERY, "-o", "plain", "-s", "0.01").stdout == b"best.py\nmiddle.py\n"
    quiet = lexical(cli, QUERY, "-q", "-s", "2")
    assert (quiet.exit_code, quiet.stdout) == (1, b"")
    assert lexical(cli, QUERY, "-q").exit_code == 0


def test_paths_given_are_shown_as_given(cli: RunCli, ranked_tree: Path) -> None:
    make(ranked_tree, {"sub/x.py": "retries\n"})
    result = lexical(cli, QUERY, "./sub", "last.py", "-o", "plain")
    assert result.stdout == b"./sub/x.py\nlast.py\n"


def test_an_undecodable_file_name_survives_plain_and_is_replaced_in_json(
    cli: RunCli, workdir: Path
) -> None:
    name = b"caf\xe9.txt"
    with open(os.path.join(os.fsencode(workdir), name), "w") as handle:
        handle.write("retries\n")
    assert lexical(cli, QUERY, "-0").stdout == name + b"\0"
    (record,) = lexical(cli, QUERY, "-o", "jsonl").records()
    assert record["path"] == "caf\ufffd.txt"


def test_in_a_real_process_for_xargs(tmp_path: Path) -> None:
    make(tmp_path, {"a b.txt": "retries configured\n", "c.txt": "other\n", ".env": "x"})
    env: Mapping[str, str] = {
        **os.environ,
        "RERANK_CONFIG_DIR": str(tmp_path / "config-dir"),
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "rerank_cli", "files", QUERY, "--engine", "lexical", "-0"],
        cwd=tmp_path,
        env=dict(env),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"a b.txt\0c.txt\0"


def test_verbose_counts_documents_and_their_chunks_apart(cli: RunCli, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "long.txt").write_text("".join(f"line {n} about retries\n" for n in range(150)))
    (tree / "short.txt").write_text("one line about retries\n")
    done = cli("files", "retries", str(tree), "--engine", "lexical", "-v", "--chunk-lines", "60")
    assert done.exit_code == 0, done.stderr
    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith("rerank: 2 documents, 4 texts with the chunks, 4 unique, "), summary
    assert ", 0 requests, 0 retries, " in summary
