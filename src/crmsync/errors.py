"""The project's own exceptions: each carries a message meant for the person at the terminal,
the exit code the CLI ends with, and whether retrying later, unchanged, may work (`transient`).

Exit codes (the README's table): 0 done; 1 an unexpected error (a bug); 2 a configuration or
input mistake; 3 a CRM refused (retrying will not fix it); 4 stopped before spending the
configured share of the daily API quota (resumes next run); 5 a CRM could not be reached
(retry later; the other connections were synced); 6 the store's database could not be reached
(retry later); 130 interrupted (Ctrl-C). When several connections end differently, one code
stands for all: see `combined_exit_code`.
"""

from __future__ import annotations

from collections.abc import Iterable

OK = 0
INTERRUPTED = 130  # the shell's convention for a process ended by SIGINT (128 + 2)


def crashes() -> tuple[type[BaseException], ...]:
    """What a command or a job reports as a crash (`except crashes() as e:`): any Exception,
    and a Rust library's panic (polars' PanicException derives from BaseException, so
    `except Exception` lets it through) once that library is loaded."""
    import sys

    module = sys.modules.get("polars.exceptions")
    panic = getattr(module, "PanicException", None)
    return (Exception, panic) if isinstance(panic, type) else (Exception,)


class CrmsyncError(Exception):
    """Base of every error crmsync reports to a user; `exit_code` is what the CLI exits with,
    `transient` whether the same request may work later, unchanged (retry later)."""

    exit_code = 1
    transient = False


class InvalidInput(CrmsyncError):
    """A config file, workflow file, command-line value or CRM record that cannot be used as is."""

    exit_code = 2


class CrmApiError(CrmsyncError):
    """The CRM answered with an error that retrying will not fix."""

    exit_code = 3


class CrmUnavailable(CrmApiError):
    """The CRM kept failing (rate limits, server errors, dropped connections) through every
    retry: the request may work later, unchanged."""

    exit_code = 5
    transient = True


class QuotaStop(CrmsyncError):
    """The configured share of the CRM's daily API quota is spent: stop now, resume next run."""

    exit_code = 4
    transient = True


class StopRequested(QuotaStop):
    """The service is stopping (or lost its lease): the work in hand ends as on a quota stop
    (the run recorded `stopped`, the cursor where the last stored page left it)."""


class AuthFailed(CrmsyncError):
    """The CRM refused the credentials; retrying will not help until they are fixed."""

    exit_code = 3


def describe(error: BaseException) -> str:
    """An exception that is not crmsync's, on one short line: its type and its words."""
    words = " ".join(str(error).split())
    if len(words) > 300:
        words = words[:297] + "..."
    return f"{type(error).__name__}: {words}" if words else type(error).__name__


def combined_exit_code(errors: Iterable[CrmsyncError | None]) -> int:
    """One exit code for the outcomes of several connections (None: that one went well).

    A failure that retrying will not fix wins (the first one's code: 2 or 3), since a person
    must act; then a transient failure's code, the highest (5 "unreachable" over 4 "quota
    stop"); 0 when every connection went well.
    """
    found = [e for e in errors if e is not None]
    terminal = [e for e in found if not e.transient]
    if terminal:
        return terminal[0].exit_code
    return max((e.exit_code for e in found), default=OK)
