"""Which files ``rerank files`` reads: a sorted, depth-first walk that applies ignore files,
hidden-file and glob rules, a depth limit, symlink containment and the secret exclusion list, then
loads each file and skips binary, oversized and unreadable ones.

Ignore semantics follow ripgrep's:

* ``.gitignore``, ``.ignore`` and ``.rerankignore`` apply in the directory that holds them and
  below, with patterns relative to that directory. For each kind the deepest file with a matching
  pattern decides; across kinds ``.rerankignore`` beats ``.ignore`` beats ``.gitignore``. A
  ``!pattern`` re-includes (and un-hides) a path. Ignore files in the directories above a walk root
  apply too, up to the enclosing git repository's top (none if the root is not in a repository).
* A pattern matches an entry's own path only, never through one of its directories: directories
  that are ignored are simply not entered. So a rule from above applies to what lies below the
  walked path as it would in a walk from the top (``/vendor/lib/a.py`` skips that file), but never
  hides the walked path itself: ``/vendor`` ignores ``vendor``, yet ``rerank files q vendor/lib``
  (or ``cd vendor/lib && rerank files q``) walks it, as ripgrep does.
* ``-g/--glob`` patterns (gitignore syntax, relative to the walk root) override ignore files and
  the hidden rule: a match includes, a ``!`` match excludes, and when any including glob is given,
  files that match none are left out.
* Hidden entries (name starting with ``.``) are skipped unless ``--hidden`` or whitelisted.
* The secret list is applied last and only ``--include-secrets`` lifts it: no glob or ignore-file
  whitelist brings a likely secret back.

Paths named on the command line are taken as given (like ripgrep): ignore, hidden and glob rules
do not apply to them, but the secret list and the binary and size checks do.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from pathspec import GitIgnoreSpec

from rerank_cli.errors import InputError, UsageError

# Highest precedence first.
IGNORE_FILES = (".rerankignore", ".ignore", ".gitignore")
SECRET_PATTERNS = (
    ".env*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_ed25519*",
    "*.p12",
    "*.pfx",
    ".netrc",
    ".npmrc",
    ".pypirc",
    "credentials*",
    "*.kdbx",
    ".git/",
)
BINARY_PROBE = 8192  # bytes searched for a NUL, as git and ripgrep do
DEFAULT_MAX_FILESIZE = 1024 * 1024
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int:
    """``1M`` → 1048576; a number of bytes with an optional K, M or G suffix (powers of 1024)."""
    value = text.strip().upper().removesuffix("B")
    unit = value[-1:] if value[-1:] in ("K", "M", "G") else ""
    number = value[: len(value) - len(unit)].strip()
    if not number.isdigit():
        raise UsageError(f"--max-filesize: expected a size like 500K, 1M or 2000000, got {text!r}")
    return int(number) * _SIZE_UNITS[unit]


def format_size(size: int) -> str:
    for unit in ("G", "M", "K"):
        if size >= _SIZE_UNITS[unit] and size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]} {unit}iB"
    return f"{size} bytes"


@dataclass(frozen=True)
class WalkOptions:
    hidden: bool = False
    no_ignore: bool = False
    globs: tuple[str, ...] = ()
    max_depth: int | None = None  # 0: only the paths given; 1: their direct children …
    follow: bool = False
    max_filesize: int = DEFAULT_MAX_FILESIZE
    include_secrets: bool = False


@dataclass
class WalkReport:
    """Counts of what was left out (for ``-v``) and warnings (printed as they come)."""

    on_warning: Callable[[str], None] | None = None
    secrets: int = 0  # files or directories matching the secret list
    binary: int = 0
    too_large: int = 0
    unreadable: int = 0  # files or directories that could not be read, broken symlinks
    outside: int = 0  # symlinks leading out of the root, not followed
    loops: int = 0  # directory symlinks leading back to an ancestor
    empty: int = 0  # files with nothing but whitespace
    replaced: int = 0  # files with invalid UTF-8, decoded with U+FFFD
    ignored: int = 0  # files or directories an ignore file rules out (not entered)
    ignored_above: dict[str, int] = field(default_factory=dict)  # of those: file above → count
    hidden: int = 0  # hidden files or directories (without --hidden)
    unmatched: int = 0  # left out by -g/--glob
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)

    def unreadable_path(self, path: str, error: OSError) -> None:
        self.unreadable += 1
        reason = error.strerror or type(error).__name__
        self.warn(f"{path}: cannot read ({reason}), skipped")

    def summary(self, max_filesize: int) -> str:
        parts = [
            (self.ignored, "ignored" + self._above()),
            (self.hidden, "hidden"),
            (self.unmatched, "excluded by -g"),
            (self.binary, "binary"),
            (self.too_large, f"over {format_size(max_filesize)}"),
            (self.unreadable, "unreadable"),
            (self.empty, "empty"),
            (self.secrets, "likely secrets"),
            (self.outside, "symlinks out of the root"),
            (self.loops, "symlink loops"),
        ]
        skipped = ", ".join(f"{count} {what}" for count, what in parts if count)
        text = f"skipped {skipped}" if skipped else "skipped nothing"
        if self.replaced:
            text += f"; invalid UTF-8 replaced in {self.replaced}"
        return text

    def _above(self) -> str:
        """`` (2 by ../../.gitignore, above the walked path)``: rules the user may not see."""
        if not self.ignored_above:
            return ""
        each = " and ".join(f"{n} by {_shown(path)}" for path, n in self.ignored_above.items())
        return f" ({each}, above the walked path)"


@dataclass(frozen=True)
class FoundFile:
    """A file the walk selected: ``path`` as shown to the user, ``location`` to open."""

    path: str
    location: str


@dataclass(frozen=True)
class LoadedFile:
    path: str
    text: str


# One directory's ignore files: its absolute path, a spec per kind (None: no such file), and
# whether it lies above the walked path (its rules then apply to what the user may not expect).
@dataclass(frozen=True)
class _Layer:
    base: str
    specs: tuple[GitIgnoreSpec | None, ...]
    above: bool = False


def _spec(lines: Sequence[str]) -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines(lines)


def _matches_itself(regex: re.Pattern[str], path: str) -> bool:
    """Whether a compiled gitignore pattern matches ``path`` itself (a directory's with a
    trailing ``/``), not merely one of its directories.

    pathspec compiles a pattern so that it also matches everything below what it names:
    ``/vendor`` becomes ``^vendor(?:(?P<ps_d>/)|$)`` (older versions: ``…(?:(?P<ps_d>/).*)?$``),
    and a match whose ``ps_d`` slash is not the path's last character is a match of a directory
    above. Patterns without that group (``vendor/**``, ``*``) match what they match."""
    if "ps_d" not in regex.groupindex:
        return regex.match(path) is not None
    match = regex.fullmatch(path)
    return match is not None and match.end("ps_d") in (-1, len(path))


def _decide(spec: GitIgnoreSpec, path: str) -> bool | None:
    """True: ``path`` is ignored; False: whitelisted by a ``!`` pattern; None: no pattern of
    ``spec`` matches the path itself. The last matching pattern wins, as in git and ripgrep."""
    if spec.check_file(path).include is None:  # the common case, in pathspec's own loop
        return None
    for pattern in reversed(spec.patterns):
        regex = getattr(pattern, "regex", None)
        if pattern.include is not None and regex is not None and _matches_itself(regex, path):
            return bool(pattern.include)
    return None


def _shown(path: str) -> str:
    """An ignore file's path as the user would type it from here."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return relative if len(relative) <= len(path) else path


def _relative(base: str, absolute: str) -> str:
    if base == os.sep:
        return absolute[1:]
    return absolute[len(base) + 1 :]


class Walker:
    def __init__(self, options: WalkOptions, report: WalkReport) -> None:
        self.options = options
        self.report = report
        self.overrides = _spec(options.globs) if options.globs else None
        self.whitelisting = any(not g.startswith("!") for g in options.globs)
        self.secrets = None if options.include_secrets else _spec(SECRET_PATTERNS)

    # -- rules --------------------------------------------------------------------------------

    def is_secret(self, name: str, is_dir: bool) -> bool:
        """Every secret pattern is a name pattern, and excluded directories are never entered,
        so checking the entry's own name is enough."""
        if self.secrets is None:
            return False
        return bool(self.secrets.check_file(name + "/" if is_dir else name).include)

    def _ignored(
        self, layers: Sequence[_Layer], absolute: str, is_dir: bool
    ) -> tuple[bool | None, str | None]:
        """(True: ignored, False: whitelisted by a ``!`` pattern, None: no ignore file says;
        the deciding ignore file when it lies above the walked path)."""
        for kind, name in enumerate(IGNORE_FILES):
            for layer in reversed(layers):  # deepest first
                spec = layer.specs[kind]
                if spec is None:
                    continue
                relative = _relative(layer.base, absolute)
                decision = _decide(spec, relative + "/" if is_dir else relative)
                if decision is not None:
                    return decision, os.path.join(layer.base, name) if layer.above else None
        return None, None

    def _selected(
        self, layers: Sequence[_Layer], absolute: str, relative: str, name: str, is_dir: bool
    ) -> bool:
        """Whether the entry passes the glob, ignore and hidden rules (a skip is counted)."""
        report = self.report
        whitelisted = False
        if self.overrides is not None:
            result = self.overrides.check_file(relative + "/" if is_dir else relative)
            if result.include is False or (
                result.include is None and self.whitelisting and not is_dir
            ):
                report.unmatched += 1
                return False
            whitelisted = bool(result.include)
        if not whitelisted and not self.options.no_ignore:
            ignored, above = self._ignored(layers, absolute, is_dir)
            if ignored:
                report.ignored += 1
                if above is not None:
                    report.ignored_above[above] = report.ignored_above.get(above, 0) + 1
                return False
            whitelisted = ignored is False
        if whitelisted or self.options.hidden or not name.startswith("."):
            return True
        report.hidden += 1
        return False

    # -- ignore files -------------------------------------------------------------------------

    def _layer(self, directory: str, above: bool = False) -> _Layer | None:
        specs: list[GitIgnoreSpec | None] = []
        for name in IGNORE_FILES:
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    specs.append(_spec(handle.read().splitlines()))
            except FileNotFoundError:
                specs.append(None)
            except OSError as error:
                if os.path.lexists(path):
                    self.report.warn(f"{path}: cannot read ignore file ({error.strerror})")
                specs.append(None)
        return _Layer(directory, tuple(specs), above) if any(specs) else None

    def _ancestor_layers(self, root: str) -> list[_Layer]:
        """Ignore files above ``root``, up to the top of the git repository that holds it (as
        ripgrep; none outside a repository, so a stray ~/.gitignore does not apply)."""
        if self.options.no_ignore or os.path.lexists(os.path.join(root, ".git")):
            return []
        chain: list[str] = []
        current = root
        while not chain or not os.path.lexists(os.path.join(current, ".git")):
            parent = os.path.dirname(current)
            if parent == current:
                return []  # the file system's root, and no repository on the way
            chain.append(parent)
            current = parent
        layers = (self._layer(directory, above=True) for directory in reversed(chain))
        return [layer for layer in layers if layer is not None]

    # -- the walk -----------------------------------------------------------------------------

    def walk(self, paths: Sequence[str]) -> Iterator[FoundFile]:
        for given in paths or ["."]:
            shown = given if paths else ""
            yield from self._walk_given(given, shown)

    def _walk_given(self, given: str, shown: str) -> Iterator[FoundFile]:
        try:
            info = os.stat(given)
        except OSError as error:
            self.report.unreadable_path(given, error)
            return
        parts = os.path.normpath(given).split(os.sep)
        is_dir = stat.S_ISDIR(info.st_mode)
        if (
            any(self.is_secret(part, True) for part in parts[:-1])
            or self.is_secret(parts[-1], is_dir)
            or (os.path.islink(given) and self._secret_target(given))
        ):
            self._secret_named(given)
            return
        if is_dir:
            absolute = os.path.abspath(given)
            layers = self._ancestor_layers(absolute)
            real_root = os.path.realpath(given)
            yield from self._walk_dir(absolute, shown, "", 0, layers, real_root, (info,))
        elif stat.S_ISREG(info.st_mode):
            yield FoundFile(given, given)
        else:  # a FIFO, socket or device named on the command line: never opened
            self.report.unreadable += 1
            self.report.warn(f"{given}: not a regular file or directory, skipped")

    def _secret_target(self, path: str) -> bool:
        """A symlink is judged by where it leads too: ``notes.txt -> ../.env`` is the .env."""
        if self.secrets is None:
            return False
        target = os.path.realpath(path)
        parts = target.split(os.sep)
        return any(self.is_secret(part, True) for part in parts[:-1] if part) or self.is_secret(
            parts[-1], os.path.isdir(target)
        )

    def _secret_named(self, given: str) -> None:
        self.report.secrets += 1
        self.report.warn(f"{given}: looks like a secret, not sent (--include-secrets to send it)")

    def _walk_dir(
        self,
        directory: str,
        shown: str,
        relative: str,
        depth: int,
        layers: list[_Layer],
        real_root: str,
        ancestors: tuple[os.stat_result, ...],
    ) -> Iterator[FoundFile]:
        options = self.options
        if options.max_depth is not None and depth >= options.max_depth:
            return
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            self.report.unreadable_path(shown or directory, error)
            return
        if not options.no_ignore:
            layer = self._layer(directory)
            if layer is not None:
                layers = [*layers, layer]
        for entry in entries:
            rel = f"{relative}/{entry.name}" if relative else entry.name
            display = os.path.join(shown, rel) if shown else rel
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir()  # follows symlinks
            except OSError as error:
                self.report.unreadable_path(display, error)
                continue
            if not self._selected(layers, entry.path, rel, entry.name, is_dir):
                continue
            if self.is_secret(entry.name, is_dir):
                self.report.secrets += 1
                continue
            if is_link and self._secret_target(entry.path):
                self.report.secrets += 1
                continue
            if is_link:
                target = os.path.realpath(entry.path)
                if not os.path.exists(target):
                    self.report.unreadable += 1
                    self.report.warn(f"{display}: broken symlink, skipped")
                    continue
                if not options.follow and not _inside(target, real_root):
                    self.report.outside += 1
                    continue
            if is_dir:
                try:
                    info = os.stat(entry.path)
                except OSError as error:
                    self.report.unreadable_path(display, error)
                    continue
                if any(os.path.samestat(info, seen) for seen in ancestors):
                    self.report.loops += 1
                    self.report.warn(f"{display}: symlink loop, not followed")
                    continue
                yield from self._walk_dir(
                    entry.path, shown, rel, depth + 1, layers, real_root, (*ancestors, info)
                )
            elif entry.is_file():  # FIFOs, sockets and devices are never opened
                yield FoundFile(display, entry.path)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def check_paths(paths: Sequence[str]) -> None:
    """Refuse, before anything is read or sent, paths given on the command line that do not
    exist or cannot be read (``InputError``, exit 2): a typo must not rank (and bill) the other
    paths as if it were the whole request. Each is named, in the order given."""
    problems: list[str] = []
    for given in paths:
        problem = _path_problem(given)
        if problem is not None:
            problems.append(f"{os.fsencode(given).decode('utf-8', 'replace')}: {problem}")
    if problems:
        raise InputError("; ".join(problems))


def _path_problem(given: str) -> str | None:
    try:
        info = os.stat(given)
        if stat.S_ISDIR(info.st_mode):
            with os.scandir(given):
                pass
        elif stat.S_ISREG(info.st_mode):  # opening a regular file never blocks
            with open(given, "rb"):
                pass
    except (FileNotFoundError, NotADirectoryError):
        # A broken symlink too: there is nothing at the end of it.
        return "no such file or directory"
    except PermissionError:
        return "permission denied"
    except OSError as error:
        return f"cannot read ({error.strerror or type(error).__name__})"
    return None


def walk(paths: Sequence[str], options: WalkOptions, report: WalkReport) -> Iterator[FoundFile]:
    """The files under ``paths`` (default ``.``) that pass every rule, in sorted order."""
    return Walker(options, report).walk(paths)


def load(found: FoundFile, options: WalkOptions, report: WalkReport) -> LoadedFile | None:
    """The file's text, or None (counted, and warned when unreadable) if it is too large,
    binary, blank or unreadable. UTF-8; a BOM is dropped; invalid bytes become U+FFFD."""
    try:
        with open(found.location, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > options.max_filesize:
                report.too_large += 1
                return None
            # One byte more than the limit tells a file that grew since the stat.
            data = handle.read(options.max_filesize + 1)
    except OSError as error:
        report.unreadable_path(found.path, error)
        return None
    if len(data) > options.max_filesize:
        report.too_large += 1
        return None
    if b"\0" in data[:BINARY_PROBE]:
        report.binary += 1
        return None
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        report.replaced += 1
        text = data.decode("utf-8", errors="replace")
    if not text.strip():
        report.empty += 1
        return None
    return LoadedFile(found.path, text)


__all__ = [
    "DEFAULT_MAX_FILESIZE",
    "IGNORE_FILES",
    "SECRET_PATTERNS",
    "FoundFile",
    "LoadedFile",
    "WalkOptions",
    "WalkReport",
    "check_paths",
    "load",
    "parse_size",
    "walk",
]
