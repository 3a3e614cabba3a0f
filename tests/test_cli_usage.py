"""The command line as a new user meets it (issue 10): typos of a subcommand, usage errors in our
words pointing at the command typed, "nothing to show" and -q, write errors, help, completion,
and the small commands' words — through the real entry point."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from rerank_cli.cli import near_subcommand
from rerank_cli.settings.schema import SPECS
from tests.conftest import RunCli
from tests.server import RerankServer

LEX = ("--engine", "lexical")
RERANK = Path(sys.executable).with_name("rerank")
CLICK_WORDS = ("Invalid value", "is not a valid", "int range", "float range", "is not one of", "╭")


def process_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("_RERANK")}
    env.update(RERANK_CONFIG_DIR=str(tmp_path / "config"), RERANK_CACHE_DIR=str(tmp_path / "cache"))
    env.update(extra)
    return env


# --- defect 2: a typo'd subcommand is refused, not ranked (and paid for) --------------------------


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["confg", "show"], "config"),
        (["cahce", "stats"], "cache"),
        (["conifg"], "config"),
        (["Config", "path"], "config"),
        (["flies", "q", "."], "files"),
        (["model"], "models"),
    ],
)
def test_a_typo_of_a_subcommand_is_refused_and_nothing_is_sent(
    api_cli: RunCli, server: RerankServer, args: list[str], command: str
) -> None:
    result = api_cli(*args)
    word = args[0]
    assert (result.exit_code, result.stdout) == (2, b"")
    assert result.stderr == (
        f"rerank: error: did you mean '{command}'? "
        f"(to rank with the query '{word}', use: rerank rank {word} …)\n"
    )
    assert server.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ("confg show", "a confg", "b"),  # a query of several words is never taken for a command
        ("rank", "confg", "a confg", "b"),  # the explicit form always ranks
        ("--", "confg", "a confg", "b"),
        ("capital", "a capital", "b"),
        # one letter changed in a short command is as likely a word: ranked
        ("match", "a match", "b"),
        ("bank", "a bank", "b"),
        ("tiles", "a tiles", "b"),
    ],
)
def test_a_query_that_is_no_typo_ranks(cli: RunCli, args: tuple[str, ...]) -> None:
    result = cli(*LEX, *args) if args[0] == "--" else cli(*args, *LEX)
    assert result.exit_code == 0, result.stderr
    assert result.records()[0]["text"].startswith("a ")


def test_a_query_equal_to_a_subcommand_ranks_after_double_dash(cli: RunCli) -> None:
    for args in (("--", "files", "about files", "bananas"), ("rank", "files", "about files")):
        result = cli(*LEX, *args) if args[0] == "--" else cli(*args, *LEX)
        assert result.exit_code == 0, result.stderr
        assert result.records()[0]["text"] == "about files"
        assert result.records()[0]["score"] > 0


@pytest.mark.parametrize(
    ("word", "command"),
    [
        ("confg", "config"),
        ("cahce", "cache"),
        ("acount", "account"),
        ("profile", "profiles"),
        ("tsaks", "tasks"),
        ("capital", None),
        ("france", None),
        ("q", None),
        ("config2", None),  # not a word of letters
        ("con-fig", None),
        ("café", None),
    ],
)
def test_near_subcommand(word: str, command: str | None) -> None:
    assert near_subcommand(word) == command


# --- defect 5: a write error is a message, exit 2 -------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists() or not RERANK.exists(), reason="no /dev/full")
@pytest.mark.parametrize(
    "args", [("q", "a q", "b", *LEX), ("--version",), ("--help",), ("rank", "--help")]
)
def test_a_full_disk_is_cannot_write_output(tmp_path: Path, args: tuple[str, ...]) -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [str(RERANK), *args],
            stdout=full,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=process_env(tmp_path),
            check=False,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr == b"rerank: error: cannot write output: no space left on device\n"


# --- defect 6: nothing to show is not an error, and -q says nothing -------------------------------


def test_nothing_to_show_is_said_without_error(cli: RunCli) -> None:
    result = cli("q", *LEX, stdin=b"\n\n")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        b"",
        "rerank: no documents to rank\n",
    )


@pytest.mark.parametrize(
    "args",
    [
        ("q", *LEX, "-q"),  # no documents
        ("q", "a", *LEX, "-q", "-s", "2"),  # all filtered out
    ],
)
def test_quiet_prints_nothing_when_there_is_nothing_to_show(
    cli: RunCli, args: tuple[str, ...]
) -> None:
    result = cli(*args, stdin=b"\n\n")
    assert (result.exit_code, result.stdout, result.stderr) == (1, b"", "")


def test_quiet_files_with_no_files_prints_nothing(cli: RunCli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("files", "q", str(empty), *LEX, "-q")
    assert (result.exit_code, result.stdout, result.stderr) == (1, b"", "")
    loud = cli("files", "q", str(empty), *LEX)
    assert (loud.exit_code, loud.stderr) == (1, "rerank: no files to rank\n")


# --- defects 9 and 10: bad option values, in our words, for every command -------------------------


@pytest.mark.parametrize(
    ("args", "message", "typed"),
    [
        (("q", "a", "-k", "abc"), "-k/--top-k must be a whole number ≥ 1, got 'abc'", "rerank"),
        (("q", "a", "-k", "0"), "-k/--top-k must be a whole number ≥ 1, got '0'", "rerank"),
        (
            ("rank", "q", "a", "-k", "x"),
            "-k/--top-k must be a whole number ≥ 1, got 'x'",
            "rerank rank",
        ),
        (("q", "a", "-s", "nan"), "-s/--min-score must be a finite number, got 'nan'", "rerank"),
        (("q", "a", "-s", "inf"), "-s/--min-score must be a finite number, got 'inf'", "rerank"),
        (("q", "a", "-s", "-inf"), "-s/--min-score must be a finite number, got '-inf'", "rerank"),
        (("q", "a", "-s", "high"), "-s/--min-score must be a finite number, got 'high'", "rerank"),
        (
            ("q", "a", "--max-cost", "inf"),
            "--max-cost must be a finite number ≥ 0, got 'inf'",
            "rerank",
        ),
        (
            ("q", "a", "--timeout", "x"),
            "--timeout must be a finite number ≥ 0.001, got 'x'",
            "rerank",
        ),
        (("q", "a", "-j", "0"), "-j/--concurrency must be a whole number ≥ 1, got '0'", "rerank"),
        (
            ("q", "a", "-o", "yaml"),
            "-o/--output must be one of table, jsonl, json, plain, tsv, got 'yaml'",
            "rerank",
        ),
        (
            ("q", "a", "-F", "csv"),
            "-F/--format must be one of auto, lines, jsonl, json, grep, rg-json, nul, "
            "paragraphs, got 'csv'",
            "rerank",
        ),
        (
            ("q", "a", "--engine", "gpu"),
            "--engine must be one of api, lexical, got 'gpu'",
            "rerank",
        ),
        (
            ("files", "q", "-k", "abc"),
            "-k/--top-k must be a whole number ≥ 1, got 'abc'",
            "rerank files",
        ),
        (
            ("files", "q", "--max-depth", "-1"),
            "--max-depth must be a whole number ≥ 0, got '-1'",
            "rerank files",
        ),
        (
            ("files", "q", "--chunk-lines", "many"),
            "--chunk-lines must be a whole number ≥ 1, got 'many'",
            "rerank files",
        ),
        (
            ("cache", "clear", "--older-than", "week"),
            "--older-than must be a finite number ≥ 0, got 'week'",
            "rerank cache clear",
        ),
        (
            ("cache", "stats", "-o", "csv"),
            "-o/--output must be one of table, json, jsonl, got 'csv'",
            "rerank cache stats",
        ),
        (
            ("models", "-o", "csv"),
            "-o/--output must be one of table, jsonl, json, plain, tsv, got 'csv'",
            "rerank models",
        ),
        (
            ("completion", "tcsh"),
            "SHELL must be one of bash, zsh, fish, got 'tcsh'",
            "rerank completion",
        ),
        (("files",), "missing argument QUERY", "rerank files"),
        (("-k", "3"), "missing argument QUERY", "rerank"),
        (("q", "a", "--bogus"), "no such option: --bogus", "rerank"),
        (("cache", "purge"), "no such command 'purge'", "rerank cache"),
    ],
)
def test_usage_errors_name_the_option_and_what_it_expects(
    cli: RunCli, args: tuple[str, ...], message: str, typed: str
) -> None:
    offline = args[0] in ("q", "rank", "files") and "--engine" not in args
    result = cli(*args, *LEX) if offline else cli(*args)
    assert (result.exit_code, result.stdout) == (2, b""), result.stderr
    first, second = result.stderr.splitlines()
    assert first.startswith(f"rerank: error: {message}")
    # Help for the command typed: `rerank -h` for `rerank q …`, never the `rank` not typed.
    assert second == f"Try '{typed} -h' for help."
    assert not any(words in result.stderr for words in CLICK_WORDS)


def test_setting_values_from_config_are_still_checked(cli: RunCli) -> None:
    result = cli("config", "set", "max_cost", "nan")
    assert result.exit_code == 2
    assert "max_cost must be a finite number ≥ 0, got 'nan'" in result.stderr


# --- help -----------------------------------------------------------------------------------------


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Help rendered 200 columns wide: no option's help wrapped into its neighbour's."""
    monkeypatch.setenv("COLUMNS", "200")


def flat(text: str) -> str:
    """Help text without rich's boxes and line breaks: words separated by single spaces."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


def test_rank_help_has_examples_and_plain_usage(cli: RunCli, wide: None) -> None:
    result = cli("rank", "--help")
    assert result.exit_code == 0
    text = flat(result.text)
    assert "Usage: rerank rank [OPTIONS] QUERY [DOCUMENT]..." in text
    assert "{query}" not in text and "{QUERY}" not in text
    assert "Examples" in text
    assert 'rg -n TODO src | rerank "security-relevant todo"' in text
    assert "--field body.text" in text
    assert "-q -s 0.5" in text
    assert "rerank -- files" in text and "rerank rank files" in text
    # --format says how auto detects grep output
    assert "grep if most lines are path:line:text of files on disk" in text
    for option, metavar in [
        ("--timeout", "SECONDS"),
        ("--wait-cold", "SECONDS"),
        ("--batch-size", "N"),
        ("--max-cost", "USD"),
        ("--cache-ttl", "DAYS"),
        ("--stats", "FILE"),
        ("--input", "FILE"),
        ("--instruction", "TEXT"),
        ("--min-score", "SCORE"),
        ("--base-url", "URL"),
    ]:
        assert re.search(rf"{option} (-\w )?{metavar}\b", text), option
    assert "<int" not in text and "<float" not in text and "<str>" not in text.split("Input")[1]


def test_root_help_has_examples_and_the_double_dash(cli: RunCli, wide: None) -> None:
    text = flat(cli("--help").text)
    assert "Examples" in text and "rerank -- files" in text and "completion" in text


def test_files_help_has_examples(cli: RunCli, wide: None) -> None:
    text = flat(cli("files", "--help").text)
    assert "Usage: rerank files [OPTIONS] QUERY [PATH]..." in text
    assert "Examples" in text and "xargs -0" in text


def test_every_setting_option_with_a_value_has_a_metavar() -> None:
    missing = [spec.name for spec in SPECS.values() if spec.flags and not spec.choices]
    assert [name for name in missing if not SPECS[name].metavar] == []


# --- completion -----------------------------------------------------------------------------------


needs_command = pytest.mark.skipif(not RERANK.exists(), reason=f"{RERANK} is not installed")


@needs_command
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(RERANK), "completion", shell],
        capture_output=True,
        env=process_env(tmp_path),
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    assert b"rerank" in done.stdout and b"_RERANK_COMPLETE" in done.stdout


def complete(tmp_path: Path, **variables: str) -> list[str]:
    done = subprocess.run(
        [str(RERANK)],
        capture_output=True,
        env=process_env(tmp_path, **variables),
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().split()


@needs_command
def test_bash_completes_subcommands_and_options(tmp_path: Path) -> None:
    bash = {"_RERANK_COMPLETE": "complete_bash"}
    assert complete(tmp_path, **bash, COMP_WORDS="rerank con", COMP_CWORD="1") == ["config"]
    assert "stats" in complete(tmp_path, **bash, COMP_WORDS="rerank cache ", COMP_CWORD="2")
    # After a query, the default command's options (`rerank QUERY` is `rerank rank QUERY`)
    words = "rerank 'a query' --eng"
    assert complete(tmp_path, **bash, COMP_WORDS=words, COMP_CWORD="2") == ["--engine"]
    words = "rerank q --engine "
    assert complete(tmp_path, **bash, COMP_WORDS=words, COMP_CWORD="3") == ["api", "lexical"]


@needs_command
def test_zsh_and_fish_complete_subcommands(tmp_path: Path) -> None:
    zsh = complete(tmp_path, _RERANK_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="rerank con")
    assert any('"config"' in word for word in zsh)
    fish = complete(
        tmp_path,
        _RERANK_COMPLETE="complete_fish",
        _TYPER_COMPLETE_FISH_ACTION="get-args",
        _TYPER_COMPLETE_ARGS="rerank files q --hid",
    )
    assert fish[0] == "--hidden"


# --- cache stats -o, config unset, plurals --------------------------------------------------------


@pytest.mark.parametrize("args", [("-o", "json"), ("-o", "jsonl"), ("--json",)])
def test_cache_stats_as_json(cli: RunCli, args: tuple[str, ...]) -> None:
    result = cli("cache", "stats", *args)
    assert result.exit_code == 0, result.stderr
    data = orjson.loads(result.stdout)
    assert data["entries"] == 0 and data["last_run"] is None
    assert (result.stdout.count(b"\n") == 1) == (args != ("-o", "json"))  # --json: one line


def test_config_unset_of_an_unset_key_is_no_error(
    cli: RunCli, isolated_env: dict[str, str]
) -> None:
    path = Path(isolated_env["RERANK_CONFIG_DIR"]) / "config.toml"
    result = cli("config", "unset", "batch_size")
    assert (result.exit_code, result.stderr) == (
        0,
        f"rerank: batch_size was not set in {path}: nothing to remove\n",
    )
    typo = cli("config", "unset", "bach_size")
    assert typo.exit_code == 2
    assert "unknown setting 'bach_size' (did you mean 'batch_size'?)" in typo.stderr


# --- defect 13: the test server's --port ----------------------------------------------------------


def test_the_test_server_listens_on_the_port_asked(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.server", "--port", str(port)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().decode().strip() == f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(30)


# --- what `rerank --version` costs ---------------------------------------------------------------


def test_version_loads_nothing_but_the_entry_point() -> None:
    """The typo check and the completion command live beside the entry point: `--version`
    must still import no Typer, no difflib, none of the app."""
    code = (
        "import sys\n"
        "from rerank_cli.cli import main\n"
        "main(['--version'])\n"
        "heavy = {'typer', 'click', 'rich', 'difflib', 'typing', 're', 'rerank_cli'}\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    lines = done.stdout.decode().splitlines()
    assert lines[0].startswith("rerank ")
    assert lines[1:] == ["rerank_cli rerank_cli.cli"]


@pytest.mark.skipif(shutil.which("bash") is None or not RERANK.exists(), reason="no bash")
def test_bash_completes_after_a_query_through_the_real_script(tmp_path: Path) -> None:
    """The script bash loads, run by bash: `rerank q --eng<TAB>` completes rank's options."""
    script = (
        f'eval "$({RERANK} completion bash)"\n'
        "COMP_WORDS=(rerank q --eng); COMP_CWORD=2\n"
        "_rerank_completion rerank\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(rerank con); COMP_CWORD=1\n"
        "_rerank_completion rerank\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        env=process_env(tmp_path, PATH=f"{RERANK.parent}:{os.environ['PATH']}"),
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == ["--engine", "config"]
