"""Salesforce login against a token endpoint that answers oddly: one line, exit 3, no crash."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses

from crmsync.connectors.salesforce_auth import login
from crmsync.connectors.settings import SalesforceAuth
from crmsync.errors import AuthFailed

LOGIN = "https://login.example.test"
TOKEN_URL = f"{LOGIN}/services/oauth2/token"
AUTH = SalesforceAuth(
    method="client_credentials", login_url=LOGIN, client_id="id", client_secret="s3cret-value"
)


def login_error(status: int, body: Any) -> AuthFailed:
    """The AuthFailed login raises when the token endpoint answers `body` with `status`."""
    with responses.RequestsMock() as mock:
        if isinstance(body, str):
            mock.post(TOKEN_URL, status=status, body=body)
        else:
            mock.post(TOKEN_URL, status=status, json=body)
        with pytest.raises(AuthFailed) as info:
            login(AUTH, requests.Session(), timeout=5)
    return info.value


@pytest.mark.parametrize(
    "body", [[], ["access_token"], 42, "null", "<html>hello</html>", '"text"'], ids=repr
)
def test_a_token_answer_that_is_no_json_object_is_one_line(body: Any) -> None:
    """A JSON list (or anything but an object) from the token endpoint is AuthFailed (exit 3)
    naming the flow and login_url, not a traceback."""
    error = login_error(200, body)
    assert error.exit_code == 3
    assert str(error) == (
        "salesforce login (client_credentials): the token endpoint answered HTTP 200 without "
        "a JSON object; check login_url"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": ["a"], "instance_url": "https://x.test"},
        {"access_token": "tok", "instance_url": {"a": 1}},
        {"access_token": "tok"},
    ],
)
def test_a_token_answer_without_text_fields_is_one_line(body: dict[str, Any]) -> None:
    """An access_token or instance_url that is not text is AuthFailed, not a crash later."""
    error = login_error(200, body)
    assert str(error) == (
        "salesforce login (client_credentials): the token endpoint's answer has no text "
        "access_token and instance_url; check login_url"
    )


def test_a_refusal_with_a_long_reason_is_cut() -> None:
    """A refusal's description is shown on one line of at most 200 characters."""
    error = login_error(400, {"error": "invalid_grant", "error_description": "x \n" * 1000})
    reason = str(error).removeprefix("salesforce login refused (client_credentials): ")
    assert len(reason) == 200 and reason.endswith("...") and "\n" not in reason


def test_a_good_answer_logs_in() -> None:
    """Salesforce's own answer gives the session."""
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok", "instance_url": "https://x.test/"})
        session = login(AUTH, requests.Session(), timeout=5)
    assert (session.access_token, session.instance_url) == ("tok", "https://x.test")
