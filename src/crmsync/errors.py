"""The project's own exceptions: each carries a message meant for the person at the terminal."""

from __future__ import annotations


class CrmsyncError(Exception):
    """Base of every error crmsync reports to a user; `exit_code` is what the CLI exits with."""

    exit_code = 1


class InvalidInput(CrmsyncError):
    """A config file, workflow file, command-line value or CRM record that cannot be used as is."""

    exit_code = 2


class CrmApiError(CrmsyncError):
    """The CRM answered with an error that retrying will not fix."""

    exit_code = 3


class CrmUnavailable(CrmApiError):
    """The CRM kept failing (rate limits, server errors, dropped connections) through every
    retry: the request may work later, unchanged."""


class QuotaStop(CrmsyncError):
    """The configured share of the CRM's daily API quota is spent: stop now, resume next run."""

    exit_code = 4


class AuthFailed(CrmsyncError):
    """The CRM refused the credentials; retrying will not help until they are fixed."""

    exit_code = 3
