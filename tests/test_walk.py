from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerank_cli.errors import InputError, UsageError
from rerank_cli.sources.walk import (
    DEFAULT_MAX_FILESIZE,
    SECRET_PATTERNS,
    FoundFile,
    WalkOptions,
    WalkReport,
    check_paths,
    load,
    parse_size,
    walk,
)
from tests.conftest import without_root_reads

RG = shutil.which("rg")
# CI (.ci/run) sets RERANK_REQUIRE_TOOLS=1: a missing tool then fails these tests, not skips them.
REQUIRE_TOOLS = os.environ.get("RERANK_REQUIRE_TOOLS") == "1"
needs_rg = pytest.mark.skipif(
    RG is None and not REQUIRE_TOOLS, reason="ripgrep not installed (apt-get install ripgrep)"
)


def git_repo(root: Path, tree: Mapping[str, str | bytes]) -> Path:
    """A real git repository (``git init``) holding ``tree``."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return make(root, tree)


def rg_files(cwd: Path, *paths: str) -> list[str]:
    """What ``rg --files [PATH …]`` lists, run in ``cwd``, sorted."""
    assert RG is not None, "rg is not installed"
    done = subprocess.run(
        [RG, "--files", "--no-config", *paths], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode in (0, 1), done.stderr  # 1: nothing listed
    return sorted(done.stdout.splitlines())


def make(root: Path, tree: Mapping[str, str | bytes]) -> Path:
    """Create files (``dir/name``: content); a name ending in ``/`` is an empty directory."""
    for name, content in tree.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def found(
    root: Path, *paths: str, report: WalkReport | None = None, **options: object
) -> list[str]:
    """The walk's paths relative to ``root`` (walked as ``root`` or the given paths)."""
    report = report if report is not None else WalkReport()
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return [f.path for f in walk(list(paths), WalkOptions(**options), report)]  # type: ignore[arg-type]
    finally:
        os.chdir(cwd)


def test_sorted_depth_first_and_relative_to_the_working_directory(tmp_path: Path) -> None:
    make(tmp_path, {"b.txt": "", "a/z.txt": "", "a/b/c.txt": "", "B.txt": "", "a.txt": ""})
    assert found(tmp_path) == ["B.txt", "a/b/c.txt", "a/z.txt", "a.txt", "b.txt"]
    assert found(tmp_path, ".") == ["./B.txt", "./a/b/c.txt", "./a/z.txt", "./a.txt", "./b.txt"]
    assert found(tmp_path, "a", "b.txt") == ["a/b/c.txt", "a/z.txt", "b.txt"]


def test_hidden_files_and_directories_need_hidden(tmp_path: Path) -> None:
    make(tmp_path, {".hidden": "", ".dir/inner.txt": "", "shown.txt": ""})
    assert found(tmp_path) == ["shown.txt"]
    assert found(tmp_path, hidden=True) == [".dir/inner.txt", ".hidden", "shown.txt"]


def test_a_hidden_directory_named_on_the_command_line_is_walked(tmp_path: Path) -> None:
    make(tmp_path, {".dir/inner.txt": "", ".dir/.deeper": ""})
    assert found(tmp_path, ".dir") == [".dir/inner.txt"]


def test_gitignore_patterns_negation_and_nesting(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "*.log\nbuild/\n",
            "top.log": "",
            "keep.txt": "",
            "build/out.txt": "",
            "build.txt": "",
            "sub/.gitignore": "!keep.log\n/gen\n",
            "sub/keep.log": "",
            "sub/other.log": "",
            "sub/gen/x.txt": "",
            "sub/deeper/gen/y.txt": "",
            "gen/z.txt": "",
        },
    )
    assert found(tmp_path) == [
        "build.txt",
        "gen/z.txt",
        "keep.txt",
        "sub/deeper/gen/y.txt",  # /gen is anchored to sub/, where it was written
        "sub/keep.log",  # re-included by the deeper .gitignore
    ]


def test_a_dir_pattern_skips_the_directory_not_a_file_of_that_name(tmp_path: Path) -> None:
    make(tmp_path, {".gitignore": "out/\n", "out/a.txt": "", "sub/out": ""})
    assert found(tmp_path) == ["sub/out"]


def test_ignore_beats_gitignore_and_rerankignore_beats_both(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "*.md\n*.txt\n",
            ".ignore": "!README.md\n*.py\n",
            ".rerankignore": "!main.py\n",
            "README.md": "",
            "CHANGES.md": "",
            "notes.txt": "",
            "main.py": "",
            "util.py": "",
        },
    )
    assert found(tmp_path) == ["README.md", "main.py"]


def test_a_deeper_gitignore_is_overridden_by_a_shallower_ignore(tmp_path: Path) -> None:
    # Kind before depth, as ripgrep: any .ignore match wins over any .gitignore match.
    make(tmp_path, {".ignore": "!*.log\n", "sub/.gitignore": "*.log\n", "sub/a.log": ""})
    assert found(tmp_path) == ["sub/a.log"]


def test_no_ignore(tmp_path: Path) -> None:
    make(tmp_path, {".gitignore": "*.log\n", ".rerankignore": "x/\n", "a.log": "", "x/b": ""})
    assert found(tmp_path, no_ignore=True) == ["a.log", "x/b"]


def test_an_ignore_file_whitelist_unhides(tmp_path: Path) -> None:
    make(tmp_path, {".ignore": "!.config\n", ".config": "", ".other": ""})
    assert found(tmp_path) == [".config"]


def test_ignore_files_above_the_root_apply_up_to_the_repository_top(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "*.c\n",  # above the repository: not read
            "repo/.git/HEAD": "",
            "repo/.gitignore": "*.tmp\n",
            "repo/sub/.ignore": "*.bak\n",
            "repo/sub/dir/a.tmp": "",
            "repo/sub/dir/b.bak": "",
            "repo/sub/dir/c.c": "",
            "repo/sub/dir/d.txt": "",
        },
    )
    assert found(tmp_path / "repo" / "sub", "dir") == ["dir/c.c", "dir/d.txt"]
    assert found(tmp_path / "repo" / "sub" / "dir") == ["c.c", "d.txt"]
    assert found(tmp_path / "repo" / "sub" / "dir", no_ignore=True) == [
        "a.tmp",
        "b.bak",
        "c.c",
        "d.txt",
    ]


# A repository whose top .gitignore ignores vendor/ (as pyenv's ignores /versions), with rules
# of every shape that reach inside it: anchored, directory-only, ``**``, and a ``!`` deeper down.
VENDORED = {
    ".gitignore": "/vendor\n*.log\nvendor/lib/skipme/\n/vendor/lib/anchored.txt\n"
    "vendor/**/deep.md\nbuild/\n",
    "top.py": "",
    "src/main.py": "",
    "src/x.log": "",
    "src/build/out.py": "",
    "gen/.gitignore": "!build/\n",  # whitelists gen/build/, not what is in it: .h stays hidden
    "gen/build/.h": "",
    "gen/build/x.py": "",
    "vendor/top.py": "",
    "vendor/lib/.gitignore": "!keep.log\n",
    "vendor/lib/a.py": "",
    "vendor/lib/b.log": "",
    "vendor/lib/keep.log": "",
    "vendor/lib/anchored.txt": "",
    "vendor/lib/sub/c.py": "",
    "vendor/lib/sub/deep.md": "",
    "vendor/lib/skipme/d.py": "",
    "vendor/lib/build/e.py": "",
}


def test_a_directory_an_ancestor_ignores_is_walked_from_inside(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo", VENDORED)
    report = WalkReport()
    expected = ["a.py", "keep.log", "sub/c.py"]  # rules from above still reach inside
    assert found(repo / "vendor" / "lib", report=report) == expected
    assert found(repo / "vendor" / "lib", ".") == [f"./{path}" for path in expected]
    assert found(repo / "vendor", "lib") == [f"lib/{path}" for path in expected]
    assert found(repo, "vendor") == [f"vendor/lib/{path}" for path in expected] + ["vendor/top.py"]
    assert found(repo) == ["gen/build/x.py", "src/main.py", "top.py"]
    # b.log, anchored.txt, skipme/, sub/deep.md, build/: all by the top .gitignore
    assert (report.ignored, report.ignored_above) == (5, {str(repo / ".gitignore"): 5})


@needs_rg
@pytest.mark.parametrize("where", ["", "gen", "src", "vendor", "vendor/lib", "vendor/lib/sub"])
def test_ignore_rules_from_above_are_those_of_ripgrep(tmp_path: Path, where: str) -> None:
    repo = git_repo(tmp_path / "repo", VENDORED)
    cwd = repo / where
    assert found(cwd) == rg_files(cwd)
    assert found(cwd, ".") == rg_files(cwd, ".")
    assert found(cwd, str(cwd)) == rg_files(cwd, str(cwd))


@pytest.mark.parametrize(
    "regex",
    [
        r"^vendor(?:(?P<ps_d>/)|$)",  # pathspec 1.x's /vendor
        r"^vendor(?:(?P<ps_d>/).*)?$",  # pathspec 0.12's
    ],
)
def test_a_pattern_matches_a_path_itself_not_through_its_directory(regex: str) -> None:
    from rerank_cli.sources.walk import _matches_itself

    compiled = re.compile(regex)
    assert _matches_itself(compiled, "vendor")
    assert _matches_itself(compiled, "vendor/")
    assert not _matches_itself(compiled, "vendor/lib/")
    assert not _matches_itself(compiled, "vendor/lib/a.py")
    assert _matches_itself(re.compile(r"^vendor/"), "vendor/lib/a.py")  # vendor/**


def test_outside_a_repository_no_ignore_file_above_the_root_is_read(tmp_path: Path) -> None:
    make(tmp_path, {".gitignore": "*.tmp\n", "sub/a.tmp": ""})
    assert found(tmp_path / "sub") == ["a.tmp"]


def test_globs_include_exclude_and_override_ignore_files(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            ".gitignore": "*.log\n",
            "a.py": "",
            "test_a.py": "",
            "b.txt": "",
            "c.log": "",
            "tests/t.py": "",
            "src/m.py": "",
        },
    )
    assert found(tmp_path, globs=("*.py",)) == ["a.py", "src/m.py", "test_a.py", "tests/t.py"]
    assert found(tmp_path, globs=("*.py", "!test_*", "!tests/")) == ["a.py", "src/m.py"]
    assert found(tmp_path, globs=("!*.py",)) == ["b.txt"]
    assert found(tmp_path, globs=("*.log",)) == ["c.log"]
    assert found(tmp_path, globs=("src/*.py",)) == ["src/m.py"]


def test_max_depth(tmp_path: Path) -> None:
    make(tmp_path, {"a": "", "d1/b": "", "d1/d2/c": ""})
    assert found(tmp_path, ".", "a", max_depth=0) == ["a"]
    assert found(tmp_path, max_depth=1) == ["a"]
    assert found(tmp_path, max_depth=2) == ["a", "d1/b"]
    assert found(tmp_path, max_depth=3) == ["a", "d1/b", "d1/d2/c"]


def test_symlinks_out_of_the_root_are_not_followed_unless_asked(tmp_path: Path) -> None:
    make(tmp_path, {"outside/secretish.txt": "", "outside/dir/f.txt": "", "root/in.txt": ""})
    root = tmp_path / "root"
    (root / "file-link").symlink_to(tmp_path / "outside" / "secretish.txt")
    (root / "dir-link").symlink_to(tmp_path / "outside" / "dir")
    (root / "inside-link").symlink_to(root / "in.txt")
    report = WalkReport()
    assert found(root, report=report) == ["in.txt", "inside-link"]
    assert report.outside == 2
    assert found(root, follow=True) == ["dir-link/f.txt", "file-link", "in.txt", "inside-link"]


def test_symlink_loops_end(tmp_path: Path) -> None:
    make(tmp_path, {"a/f.txt": ""})
    (tmp_path / "a" / "up").symlink_to(tmp_path)
    report = WalkReport()
    assert found(tmp_path, report=report, follow=True) == ["a/f.txt"]
    assert report.loops == 1


def test_a_broken_symlink_is_counted_and_warned(tmp_path: Path) -> None:
    make(tmp_path, {"ok.txt": ""})
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    report = WalkReport()
    assert found(tmp_path, report=report) == ["ok.txt"]
    assert report.unreadable == 1
    assert "gone: broken symlink" in report.warnings[0]


def test_special_files_are_never_opened(tmp_path: Path) -> None:
    make(tmp_path, {"ok.txt": ""})
    os.mkfifo(tmp_path / "pipe")  # reading it would block forever
    assert found(tmp_path) == ["ok.txt"]


def test_a_missing_path_is_warned_and_counted(tmp_path: Path) -> None:
    make(tmp_path, {"ok.txt": ""})
    report = WalkReport()
    assert found(tmp_path, "missing", "ok.txt", report=report) == ["ok.txt"]
    assert report.unreadable == 1
    assert report.warnings == ["missing: cannot read (No such file or directory), skipped"]


def test_check_paths_names_every_path_that_cannot_be_walked(tmp_path: Path) -> None:
    make(tmp_path, {"ok.txt": "", "dir/a.txt": ""})
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        check_paths(["ok.txt", "dir", "."])
        with pytest.raises(InputError) as raised:
            check_paths(["srcc", "ok.txt", "ok.txt/x"])
    finally:
        os.chdir(cwd)
    assert raised.value.message == (
        "srcc: no such file or directory; ok.txt/x: no such file or directory"
    )


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_refuses_an_unreadable_directory(tmp_path: Path) -> None:
    """Through the console script, so that root (CI) runs it too, without the capabilities
    that let root read anything."""
    locked = make(tmp_path, {"locked/a.txt": ""}) / "locked"
    locked.chmod(0)
    try:
        rerank = str(Path(sys.executable).with_name("rerank"))
        command = [
            *without_root_reads(locked),
            rerank,
            "files",
            "q",
            str(locked),
            "--engine",
            "lexical",
        ]
        done = subprocess.run(command, capture_output=True, check=False, cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert b"locked: permission denied" in done.stderr


SECRET_EXAMPLES = [
    ".env",
    ".env.production",
    "server.pem",
    "tls.key",
    "id_rsa",
    "id_rsa.pub",
    "id_ed25519",
    "cert.p12",
    "cert.pfx",
    ".netrc",
    ".npmrc",
    ".pypirc",
    "credentials",
    "credentials.json",
    "vault.kdbx",
    ".git/config",
]


def test_every_secret_pattern_has_an_example() -> None:
    from pathspec import GitIgnoreSpec

    for pattern in SECRET_PATTERNS:
        spec = GitIgnoreSpec.from_lines([pattern])
        assert any(spec.match_file(example) for example in SECRET_EXAMPLES), pattern


@pytest.mark.parametrize("name", SECRET_EXAMPLES)
def test_likely_secrets_are_excluded_at_any_depth(tmp_path: Path, name: str) -> None:
    make(tmp_path, {name: "x", f"deep/er/{name}": "x", "ok.txt": ""})
    report = WalkReport()
    assert found(tmp_path, hidden=True, no_ignore=True, report=report) == ["ok.txt"]
    assert report.secrets == 2
    assert found(tmp_path, hidden=True, include_secrets=True) == sorted(
        [name, f"deep/er/{name}", "ok.txt"]
    )


def test_no_glob_or_whitelist_brings_a_secret_back(tmp_path: Path) -> None:
    make(tmp_path, {".ignore": "!.env\n", ".env": "", "credentials/aws.txt": "", "a.txt": ""})
    assert found(tmp_path, globs=(".env", "*.txt"), hidden=True) == ["a.txt"]


def test_secrets_named_on_the_command_line_are_refused_with_a_warning(tmp_path: Path) -> None:
    make(tmp_path, {".env": "", ".git/config": "", "ok.txt": ""})
    report = WalkReport()
    assert found(tmp_path, ".env", ".git/config", ".git", "ok.txt", report=report) == ["ok.txt"]
    assert report.secrets == 3
    assert all("--include-secrets" in warning for warning in report.warnings)


def test_named_files_bypass_ignore_and_hidden_rules(tmp_path: Path) -> None:
    make(tmp_path, {".gitignore": "*.log\n", "a.log": "", ".hidden": ""})
    assert found(tmp_path, "a.log", ".hidden", globs=("*.py",)) == ["a.log", ".hidden"]


# -- loading ----------------------------------------------------------------------------------


def loaded(path: Path, max_filesize: int = DEFAULT_MAX_FILESIZE) -> tuple[str | None, WalkReport]:
    report = WalkReport()
    result = load(FoundFile(path.name, str(path)), WalkOptions(max_filesize=max_filesize), report)
    return (None if result is None else result.text), report


def test_load_decodes_utf8_and_drops_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfh\xc3\xa9llo\r\n")
    text, report = loaded(path)
    assert text == "héllo\r\n"
    assert report.replaced == 0


def test_load_replaces_invalid_utf8_and_counts_it(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9\n")
    text, report = loaded(path)
    assert text == "caf\ufffd\n"
    assert report.replaced == 1


def test_load_skips_binary_by_a_nul_in_the_first_8_kb(tmp_path: Path) -> None:
    early = tmp_path / "early"
    early.write_bytes(b"text" * 100 + b"\0" + b"text")
    late = tmp_path / "late"
    late.write_bytes(b"a" * 8192 + b"\0")
    text, report = loaded(early)
    assert text is None
    assert report.binary == 1
    text, report = loaded(late)
    assert text is not None
    assert report.binary == 0


def test_load_skips_files_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_text("a" * 101)
    text, report = loaded(path, max_filesize=100)
    assert (text, report.too_large) == (None, 1)
    text, report = loaded(path, max_filesize=101)
    assert (text, report.too_large) == ("a" * 101, 0)


def test_load_skips_blank_files(tmp_path: Path) -> None:
    path = tmp_path / "blank"
    path.write_text(" \n\t\n")
    text, report = loaded(path)
    assert (text, report.empty) == (None, 1)


def test_load_warns_about_an_unreadable_file(tmp_path: Path) -> None:
    text, report = loaded(tmp_path)  # a directory where a file was found: read fails
    assert text is None
    assert report.unreadable == 1
    assert "cannot read" in report.warnings[0]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100", 100),
        ("1K", 1024),
        ("1k", 1024),
        ("2M", 2 * 1024**2),
        ("1G", 1024**3),
        ("3MB", 3 * 1024**2),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "1.5M", "-1", "1T", "ten"])
def test_parse_size_rejects_nonsense(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


# -- invariants -------------------------------------------------------------------------------

NAMES = st.sampled_from(
    ["a", "b.txt", ".env", ".env.local", "x.pem", "id_rsa", "credentials", "src", ".git", "Z"]
)


@settings(max_examples=60, deadline=None)
@given(tree=st.lists(st.lists(NAMES, min_size=1, max_size=3), min_size=1, max_size=8))
def test_walks_are_sorted_complete_and_secret_free(tree: list[list[str]]) -> None:
    from pathspec import GitIgnoreSpec

    secret = GitIgnoreSpec.from_lines(SECRET_PATTERNS)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        files: set[str] = set()
        for parts in tree:
            path = "/".join(parts)
            if any(known.startswith(path + "/") or path.startswith(known + "/") for known in files):
                continue  # a name cannot be a file and a directory at once
            make(root, {path: "x"})
            files.add(path)
        walked = found(root, hidden=True, no_ignore=True)
        assert walked == sorted(walked, key=lambda p: p.split("/"))
        expected = {path for path in files if not secret.match_file(path)}
        assert set(walked) == expected
        assert not any(secret.match_file(path) for path in walked)
        assert set(found(root, hidden=True, no_ignore=True, include_secrets=True)) == files
