"""The rank command's inputs, outputs and exit codes, through the real entry point (offline)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rerank_cli.cli import SUBCOMMANDS, route
from rerank_cli.cli.app import app
from tests.conftest import RunCli

LEX = ("--engine", "lexical")


def test_subcommand_list_matches_the_app() -> None:
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == set(SUBCOMMANDS)


@pytest.mark.parametrize(
    ("args", "routed"),
    [
        (["q", "d"], ["rank", "q", "d"]),
        (["-k", "1", "q"], ["rank", "-k", "1", "q"]),
        (["rank", "q"], ["rank", "q"]),
        (["config", "path"], ["config", "path"]),
        (["--help"], ["--help"]),
        (["--", "files", "d"], ["rank", "--", "files", "d"]),
        (["capital of France", "d"], ["rank", "capital of France", "d"]),
        ([], []),
    ],
)
def test_route_defaults_to_rank(args: list[str], routed: list[str]) -> None:
    assert route(args) == routed


def test_version_and_help(cli: RunCli) -> None:
    assert cli("--version").text.startswith("rerank ")
    helped = cli("--help")
    assert helped.exit_code == 0
    assert "rank" in helped.text and "config" in helped.text


def test_rank_and_default_command_agree(cli: RunCli) -> None:
    args = ("capital of France", "Bananas are yellow.", "Paris is the capital of France.", *LEX)
    assert cli(*args).stdout == cli("rank", *args).stdout
    assert cli(*args).records()[0]["text"] == "Paris is the capital of France."


def test_stdin_is_read_when_no_documents_are_given(cli: RunCli) -> None:
    result = cli("paris", *LEX, stdin=b"bananas\nparis france\n")
    assert [r["text"] for r in result.records()] == ["paris france", "bananas"]
    assert result.records()[0]["source"] == {"file": "<stdin>", "line": 2}


def test_no_documents_on_a_terminal_is_a_usage_error(cli: RunCli) -> None:
    result = cli("q", *LEX, stdin_tty=True)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "rerank: error: no documents: give them as arguments, with -i FILE, or on stdin "
        "(e.g. rg -n TODO | rerank 'query'); see rerank --help"
    ]
    assert result.stdout == b""


def test_empty_input_exits_1(cli: RunCli) -> None:
    result = cli("q", *LEX, stdin=b"\n\n")
    assert result.exit_code == 1
    assert "no documents to rank" in result.stderr
    assert result.stdout == b""


def test_inputs_are_joined_in_order_with_global_indices(cli: RunCli, tmp_path: Path) -> None:
    first = tmp_path / "a.txt"
    first.write_bytes(b"alpha\n")
    second = tmp_path / "b.jsonl"
    second.write_bytes(b'{"text": "beta", "n": 1}\n')
    result = cli(
        "beta", "gamma", "-i", str(first), "-i", "-", "-i", str(second), *LEX, stdin=b"delta\n"
    )
    by_text = {r["text"]: r for r in result.records()}
    assert {t: r["index"] for t, r in by_text.items()} == {
        "gamma": 0,
        "alpha": 1,
        "delta": 2,
        "beta": 3,
    }
    assert by_text["beta"]["document"] == {"text": "beta", "n": 1}
    assert "source" not in by_text["gamma"]


def test_field_and_id_field(cli: RunCli) -> None:
    data = b'{"meta": {"body": "paris"}, "id": "p"}\n{"meta": {"body": "bananas"}, "id": "b"}\n'
    result = cli("paris", "--field", "meta.body", "--id-field", "id", *LEX, stdin=data)
    assert [r["id"] for r in result.records()] == ["p", "b"]


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.txt", None, "missing.txt: no such file"),
        ("adir", "dir", "adir: is a directory"),
    ],
)
def test_unreadable_inputs_exit_2(
    cli: RunCli, tmp_path: Path, name: str, make: str | None, message: str
) -> None:
    path = tmp_path / name
    if make == "dir":
        path.mkdir()
    result = cli("q", "-i", str(path), *LEX)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_without_read_permission_exits_2_naming_it(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, who may read any file: the denial is simulated for this path only.
    locked = tmp_path / "locked.txt"
    locked.write_bytes(b"secret plans\n")
    read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.resolve() == locked.resolve():
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    result = cli("q", "-i", str(locked), *LEX)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"rerank: error: {locked}: permission denied"]
    assert result.stdout == b""


def test_invalid_json_names_file_and_line_then_skip_invalid(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "a"}\n{"text": \n{"text": "b"}\n')
    failed = cli("q", "-i", str(path), "-F", "jsonl", *LEX)
    assert failed.exit_code == 2
    assert f"{path}:2: invalid JSON" in failed.stderr
    assert failed.stdout == b""
    skipped = cli("q", "-i", str(path), "-F", "jsonl", "--skip-invalid", "-v", *LEX)
    assert skipped.exit_code == 0
    assert len(skipped.records()) == 2
    assert "(skipped)" in skipped.stderr and "1 skipped" in skipped.stderr


def test_unknown_format_is_a_usage_error(cli: RunCli) -> None:
    result = cli("q", "d", "-F", "yaml", *LEX)
    assert result.exit_code == 2


def test_top_k_min_score_and_nothing_left(cli: RunCli) -> None:
    docs = ("paris france", "paris", "bananas")
    assert len(cli("paris france", *docs, "-k", "2", *LEX).records()) == 2
    kept = cli("paris france", *docs, "-s", "0.01", *LEX).records()
    assert [r["text"] for r in kept] == ["paris france", "paris"]
    nothing = cli("paris", *docs, "-s", "2", *LEX)
    assert nothing.exit_code == 1 and nothing.stdout == b""


def test_quiet_prints_nothing_and_tells_by_exit_code(cli: RunCli) -> None:
    hit = cli("paris", "paris", "-q", "-s", "0.1", *LEX)
    assert (hit.exit_code, hit.stdout) == (0, b"")
    miss = cli("paris", "bananas", "-q", "-s", "0.1", *LEX)
    assert (miss.exit_code, miss.stdout) == (1, b"")


def test_output_defaults_to_table_on_a_terminal_and_jsonl_in_a_pipe(cli: RunCli) -> None:
    table = cli("q", "a", *LEX, stdout_tty=True, no_color=True)
    assert table.text.split()[:3] == ["#", "score", "text"]
    assert cli("q", "a", *LEX).records()[0]["text"] == "a"


def test_colour_rules(cli: RunCli) -> None:
    args = ("q", "a", *LEX, "-o", "table")
    assert "\x1b[" in cli(*args, stdout_tty=True).text
    assert "\x1b[" not in cli(*args, stdout_tty=True, no_color=True).text
    assert "\x1b[" not in cli(*args, "--color", "never", stdout_tty=True).text
    assert "\x1b[" not in cli(*args).text
    assert "\x1b[" in cli(*args, "--color", "always").text


def test_plain_output_reproduces_input_records(cli: RunCli) -> None:
    data = b"b\xffanana\r\nparis \t x\n"
    result = cli("paris", "-o", "plain", *LEX, stdin=data)
    assert result.stdout == b"paris \t x\nb\xffanana\r\n"
    assert "invalid UTF-8" in result.stderr


def test_verbose_summary_goes_to_stderr(cli: RunCli) -> None:
    result = cli("q", "a", "b", "-v", *LEX)
    assert "2 documents" in result.stderr
    assert len(result.records()) == 2


def test_bad_config_file_is_a_usage_error(cli: RunCli, isolated_env: dict[str, str]) -> None:
    config_dir = Path(isolated_env["RERANK_CONFIG_DIR"])
    config_dir.mkdir()
    (config_dir / "config.toml").write_text("batch_size = [\n")
    result = cli("q", "a", *LEX)
    assert result.exit_code == 2 and "invalid TOML" in result.stderr
    (config_dir / "config.toml").write_text('batch_size = "many"\n')
    result = cli("q", "a", *LEX)
    assert result.exit_code == 2 and "batch_size" in result.stderr


def test_environment_settings_are_validated(cli: RunCli) -> None:
    result = cli("q", "a", env={"RERANK_CONCURRENCY": "0"})
    assert result.exit_code == 2
    assert "$RERANK_CONCURRENCY" in result.stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_config_set_show_unset(cli: RunCli, isolated_env: dict[str, str]) -> None:
    secret = "gr-supersecretkey1234abcd"
    assert cli("config", "set", "api_key", secret).exit_code == 0
    assert cli("config", "set", "batch_size", "16").exit_code == 0
    path = Path(cli("config", "path").text.strip())
    assert path == Path(isolated_env["RERANK_CONFIG_DIR"]) / "config.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    shown = cli("config", "show")
    assert secret not in shown.text + shown.stderr
    assert 'api_key = "gr-…abcd"' in shown.text
    assert "batch_size = 16" in shown.text
    assert cli("config", "set", "batch_size", "zero").exit_code == 2
    assert cli("config", "set", "colour", "x").exit_code == 2
    assert cli("config", "unset", "batch_size").exit_code == 0
    assert "batch_size" not in cli("config", "show").text
    assert cli("config", "unset", "batch_size").exit_code == 0  # already as asked: no error


def test_config_show_prints_profile_tables(cli: RunCli, isolated_env: dict[str, str]) -> None:
    config_dir = Path(isolated_env["RERANK_CONFIG_DIR"])
    config_dir.mkdir()
    (config_dir / "config.toml").write_text(
        'api_key = "gr-0123456789abcdef"\n[profiles.lab]\nbase = "vllm"\n'
        'base_url = "http://lab:8000/v1"\n[profiles.lab.extra_fields]\nx = 1\n'
    )
    shown = cli("config", "show").text
    assert "gr-0123456789abcdef" not in shown
    assert 'api_key = "gr-…cdef"' in shown
    assert "[profiles.lab]" in shown and 'base_url = "http://lab:8000/v1"' in shown
    assert "[profiles.lab.extra_fields]" in shown


def test_undecodable_argument_bytes(cli: RunCli) -> None:
    argument = b"caf\xe9 paris".decode("utf-8", "surrogateescape")  # as Python passes argv
    result = cli("paris", argument, *LEX)
    assert result.exit_code == 0
    assert result.records()[0]["text"] == "caf\ufffd paris"
    assert "invalid UTF-8" in result.stderr
    plain = cli("paris", argument, *LEX, "-o", "plain")
    assert plain.stdout == b"caf\xe9 paris\n"
