"""One exception tree and one exit-code table; the CLI maps the first onto the second, once."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    NOTHING_TO_SHOW = 1  # empty input, or every result filtered out
    USAGE = 2  # usage or input error
    API_REFUSED = 3  # auth, credit, model, bad request
    API_FAILED = 4  # network or server failed after retries, or answered nonsense
    INTERRUPTED = 130


class RerankError(Exception):
    """Base of every error the CLI reports as a message plus an exit code."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str) -> None:
        from rerank_cli.redact import redact

        message = redact(message)  # whoever shows it — the CLI, a script, a log — sees no key
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(RerankError):
    """The command line or settings are wrong."""


class InputError(RerankError):
    """The input cannot be read or parsed; ``file:line`` leads the message when known."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {message}" if file else message)
        self.file = file
        self.line = line


class NothingToShow(RerankError):
    exit_code = ExitCode.NOTHING_TO_SHOW


class ApiError(RerankError):
    """The rerank API could not be used."""

    exit_code = ExitCode.API_FAILED

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiRefused(ApiError):
    """The API answered and said no: key, credit, model, or a bad request."""

    exit_code = ExitCode.API_REFUSED


class RequestTooLarge(ApiRefused):
    """The server rejected a request for its size; the engine splits the batch and retries."""


class ApiFailed(ApiError):
    """The network or the server failed, after every retry."""


class BadResponse(ApiFailed):
    """The server answered something that is not a valid rerank response."""


class OutputClosed(RerankError):
    """Whoever read our output went away (``| head``): stop quietly, successfully."""

    exit_code = ExitCode.OK

    def __init__(self) -> None:
        super().__init__("output closed")
