"""What is read is what the user meant, through the real entry point against the loopback
server: binary input is refused, blank documents are never sent, a first line starting with
``{`` means JSON lines, messages speak JSON's words, the table shows ids and pads no line."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from tests.conftest import RunCli
from tests.server import RerankServer

LEX = ("--engine", "lexical")
BINARY = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\nlibc.so.6\n"
BINARY_MESSAGE = "binary file (a NUL byte in the first 8 KB); for NUL-separated records use -0"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sent(server: RerankServer) -> list[str]:
    return [text for request in server.rerank_requests for text in request.documents]


# --- Binary input ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["auto", "lines", "jsonl", "json", "grep", "paragraphs"])
def test_a_binary_file_is_refused_and_nothing_is_sent(
    api_cli: RunCli, server: RerankServer, tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / "ls"
    path.write_bytes(BINARY * 50)
    result = api_cli("q", "an argument", "-i", str(path), "-F", fmt)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"rerank: error: {path}: {BINARY_MESSAGE}"]
    assert result.stdout == b""
    assert server.requests == []


def test_binary_stdin_is_refused_even_with_skip_invalid(
    api_cli: RunCli, server: RerankServer
) -> None:
    result = api_cli("q", "--skip-invalid", stdin=BINARY)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"rerank: error: <stdin>: {BINARY_MESSAGE}"]
    assert server.requests == []


def test_a_real_executable_is_refused(api_cli: RunCli, server: RerankServer) -> None:
    executable = Path("/bin/ls")
    if not executable.is_file():
        pytest.skip("no /bin/ls")
    result = api_cli("q", "-i", str(executable))
    assert (result.exit_code, result.stderr) == (2, f"rerank: error: /bin/ls: {BINARY_MESSAGE}\n")
    assert server.requests == []


def test_a_nul_after_the_first_8_kb_is_text(api_cli: RunCli, server: RerankServer) -> None:
    data = b"paris\n" * 1400 + b"late \x00 nul\n"  # 8,400 bytes before the NUL
    result = api_cli("q", "-o", "jsonl", stdin=data)
    assert result.exit_code == 0
    assert "late \x00 nul" in sent(server)


def test_nul_separated_input_and_rg_json_are_not_binary(
    api_cli: RunCli, server: RerankServer
) -> None:
    assert api_cli("q", "-0", stdin=b"one\x00two\x00").exit_code == 0
    assert sent(server) == ["one", "two"]
    event = {"type": "match", "data": {"path": {"text": "a.txt"}, "lines": {"text": "three\n"}}}
    rg = orjson.dumps(event) + b"\n" + b"\x00stray\n"  # rg never writes a raw NUL: invalid
    result = api_cli("q", "--skip-invalid", stdin=rg)
    assert result.exit_code == 0, result.stderr
    assert "not an rg --json event (skipped)" in result.stderr
    assert sent(server)[-1] == "three"


def test_grep_z_output_is_not_binary(cli: RunCli, tmp_path: Path) -> None:
    """``grep -Z``/``rg -0`` end each path with a NUL: that NUL belongs to the format."""
    (tmp_path / "a.py").write_text("password = 'x'\nother\n")
    data = b"a.py\x001:password = 'x'\na.py\x002:other\n"
    for args in (("--grep",), ()):  # explicit, and detected
        result = cli("password", *args, *LEX, "--grep-root", str(tmp_path), stdin=data)
        assert result.exit_code == 0, result.stderr
        assert [r["text"] for r in result.records()] == ["password = 'x'", "other"]
    binary = cli("q", "--grep", *LEX, stdin=b"a.py\x001:x\x00y\n")  # a second NUL on a line
    assert binary.exit_code == 2 and BINARY_MESSAGE in binary.stderr


# --- Blank documents --------------------------------------------------------------------------


def test_blank_arguments_are_skipped_counted_and_not_numbered(
    api_cli: RunCli, server: RerankServer, tmp_path: Path
) -> None:
    stats = tmp_path / "stats.json"
    result = api_cli("paris", "", "paris", "  \t ", "bananas", "-v", "--stats", str(stats))
    assert result.exit_code == 0, result.stderr
    assert sent(server) == ["paris", "bananas"]
    assert {r["text"]: r["index"] for r in result.records()} == {"paris": 0, "bananas": 1}
    assert "2 skipped" in result.stderr
    assert orjson.loads(stats.read_bytes())["skipped"] == 2


def test_only_blank_arguments_is_nothing_to_rank(api_cli: RunCli, server: RerankServer) -> None:
    result = api_cli("q", "", " ")
    assert result.exit_code == 1
    assert "no documents to rank" in result.stderr
    assert server.requests == []


def test_blank_json_lines_values_are_skipped_and_counted(
    api_cli: RunCli, server: RerankServer
) -> None:
    data = b'{"text": ""}\n"   "\n{"text": "paris", "id": 1}\n{"body": "\\n\\t"}\n"bananas"\n'
    result = api_cli("paris", "-v", stdin=data)
    assert result.exit_code == 0, result.stderr
    assert sent(server) == ["paris", "bananas"]
    records = result.records()
    assert [(r["text"], r["index"], r["source"]["line"]) for r in records] == [
        ("paris", 0, 3),
        ("bananas", 1, 5),
    ]
    assert "3 skipped" in result.stderr


def test_blank_json_array_elements_are_skipped(api_cli: RunCli, server: RerankServer) -> None:
    data = b'["", {"content": " "}, "paris", {"text": "bananas"}]'
    result = api_cli("paris", "--field", "content", "-F", "json", stdin=data)
    assert result.exit_code == 2  # {"text": "bananas"} has no content field
    assert server.requests == []
    result = api_cli("paris", "-v", stdin=b'["", {"text": " "}, "paris", {"text": "bananas"}]')
    assert result.exit_code == 0, result.stderr
    assert sent(server) == ["paris", "bananas"]
    assert sorted(r["index"] for r in result.records()) == [0, 1]
    assert "2 skipped" in result.stderr


# --- JSON lines detection ---------------------------------------------------------------------


def test_an_invalid_first_json_line_is_an_error_not_plain_lines(
    api_cli: RunCli, server: RerankServer
) -> None:
    data = b'{"text": "a",}\n{"text": "b"}\n{"text": "c"}\n'
    result = api_cli("q", stdin=data)
    assert result.exit_code == 2
    assert re.fullmatch(r"rerank: error: <stdin>:1: invalid JSON \(.+\)\n", result.stderr)
    assert server.requests == []
    skipped = api_cli("q", "--skip-invalid", "-v", stdin=data)
    assert skipped.exit_code == 0
    assert sent(server) == ["b", "c"]
    assert "<stdin>:1: invalid JSON" in skipped.stderr and "1 skipped" in skipped.stderr


def test_json_lines_of_bare_strings_are_read_as_json(api_cli: RunCli, server: RerankServer) -> None:
    data = b'"caf\\u00e9 \\"au lait\\""\n\n"line\\nbreak"\n'
    result = api_cli("q", stdin=data)
    assert result.exit_code == 0, result.stderr
    assert sent(server) == ['café "au lait"', "line\nbreak"]
    assert sorted(r["source"]["line"] for r in result.records()) == [1, 3]


def test_quoted_text_stays_lines(api_cli: RunCli, server: RerankServer) -> None:
    data = b'"To be, or not to be," he said.\n"quoted"\n'
    assert api_cli("q", stdin=data).exit_code == 0
    assert sent(server) == ['"To be, or not to be," he said.', '"quoted"']


def test_rg_json_events_are_still_detected(api_cli: RunCli, server: RerankServer) -> None:
    begin = {"type": "begin", "data": {"path": {"text": "a.txt"}}}
    match = {"type": "match", "data": {"path": {"text": "a.txt"}, "lines": {"text": "hit\n"}}}
    data = orjson.dumps(begin) + b"\n" + orjson.dumps(match) + b"\n"
    result = api_cli("q", stdin=data)
    assert result.exit_code == 0, result.stderr
    assert sent(server) == ["hit"]
    assert result.records()[0]["path"] == "a.txt"


# --- Messages in JSON's words -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"text": null}', "<stdin>:2: text is null (expected a string)"),
        (b'{"text": {"en": "a"}}', "<stdin>:2: text is an object (expected a string)"),
        (b'{"text": ["a"]}', "<stdin>:2: text is a list (expected a string)"),
        (b'{"text": false}', "<stdin>:2: text is a boolean (expected a string)"),
        (b'{"m": {"b": null}}', "<stdin>:2: m.b is null (expected a string)"),
        (b"17", "<stdin>:2: the record is a number (expected an object or a string)"),
    ],
)
def test_unusable_text_is_named_in_json_words(
    api_cli: RunCli, server: RerankServer, line: bytes, message: str
) -> None:
    field = ("--field", "m.b") if b'"m"' in line else ()
    first = b'{"m": {"b": "ok"}}' if field else b'{"text": "ok"}'
    result = api_cli("q", *field, "-F", "jsonl", stdin=first + b"\n" + line + b"\n")
    assert result.exit_code == 2
    assert result.stderr == f"rerank: error: {message}\n"
    assert server.requests == []


def test_json_array_element_messages(api_cli: RunCli, server: RerankServer) -> None:
    result = api_cli("q", stdin=b'["ok", {"text": null}]')
    assert result.exit_code == 2
    assert result.stderr == "rerank: error: <stdin>: element 1: text is null (expected a string)\n"
    assert server.requests == []


# --- The table: ids, and no trailing spaces ---------------------------------------------------

TICKETS = (
    b'{"id": "T-17", "text": "refund for a broken kettle"}\n'
    b'{"id": 42, "text": "password reset"}\n'
    b'{"text": "refund policy for gifts"}\n'
)


def test_table_shows_ids_when_asked(cli: RunCli) -> None:
    result = cli("refund", "--id-field", "id", "-o", "table", *LEX, stdin=TICKETS)
    assert result.exit_code == 0, result.stderr
    rows = [line.split() for line in result.text.splitlines()]
    assert rows[0] == ["#", "score", "id", "text", "source"]
    by_id = {row[2]: row for row in rows[1:] if row[2] in ("T-17", "42")}
    assert by_id["T-17"][3:7] == ["refund", "for", "a", "broken"]
    assert by_id["42"][3:5] == ["password", "reset"]
    without = cli("refund", "-o", "table", *LEX, stdin=TICKETS)
    assert without.text.split()[:4] == ["#", "score", "text", "source"]


def test_table_lines_have_no_trailing_spaces_in_a_pipe(cli: RunCli) -> None:
    args = ("refund", "--id-field", "id", "-o", "table", *LEX)
    piped = cli(*args, stdin=TICKETS).text
    assert piped.endswith("\n")
    assert all(line == line.rstrip() for line in piped.splitlines())
    assert sum(1 for line in piped.splitlines() if "refund" in line) == 2
    # A terminal shows the same characters (the colour codes stay; only invisible padding went).
    coloured = cli(*args, stdin=TICKETS, stdout_tty=True).text
    assert "\x1b[" in coloured
    visible = [ANSI.sub("", line) for line in coloured.splitlines()]
    assert [line.rstrip() for line in visible] == piped.splitlines()


def test_forced_colour_in_a_pipe_pads_no_line_either(cli: RunCli) -> None:
    args = ("refund", "--id-field", "id", "-o", "table", "--color", "always", *LEX)
    coloured = cli(*args, stdin=TICKETS).text
    assert "\x1b[" in coloured
    assert all(not ANSI.sub("", line).endswith(" ") for line in coloured.splitlines())
