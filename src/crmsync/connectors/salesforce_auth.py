"""Salesforce OAuth 2.0: getting an access token and the instance URL.

simple-salesforce builds its login URLs from `*.salesforce.com` domains, so crmsync logs in itself
against the configured login URL (which also serves My Domain and the sandbox) and hands the token
and instance URL to simple-salesforce.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
import requests

from crmsync.connectors.network import network_failure
from crmsync.connectors.retry import Retriable
from crmsync.connectors.settings import SalesforceAuth
from crmsync.errors import AuthFailed, InvalidInput

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True, repr=False)
class Session:
    """An access token and the instance it is good for."""

    access_token: str
    instance_url: str


def login(auth: SalesforceAuth, http: requests.Session, timeout: float) -> Session:
    """Run the configured OAuth flow; AuthFailed with Salesforce's own words when refused."""
    if auth.method == "access_token":
        if not auth.access_token or not auth.instance_url:
            raise InvalidInput("salesforce access_token auth needs access_token and instance_url")
        return Session(auth.access_token, auth.instance_url.rstrip("/"))
    form = _grant(auth)
    url = auth.login_url.rstrip("/") + "/services/oauth2/token"
    try:
        answer = http.post(url, data=form, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as e:
        raise Retriable(f"login: {network_failure(e)}") from None
    if answer.status_code == 429 or answer.status_code >= 500:
        raise Retriable(f"login: HTTP {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) and answer.status_code != 200:
        raise AuthFailed(f"salesforce login refused ({auth.method}): {answer.reason}")
    if not isinstance(body, dict):  # a list, a number, not JSON: not Salesforce's token answer
        raise AuthFailed(
            f"salesforce login ({auth.method}): the token endpoint answered HTTP "
            f"{answer.status_code} without a JSON object; check login_url"
        )
    token, instance = body.get("access_token"), auth.instance_url or body.get("instance_url")
    if answer.status_code != 200 or not token:
        reason = body.get("error_description") or body.get("error") or answer.reason
        raise AuthFailed(f"salesforce login refused ({auth.method}): {_words(reason)}")
    if not isinstance(token, str) or not isinstance(instance, str) or not instance:
        raise AuthFailed(
            f"salesforce login ({auth.method}): the token endpoint's answer has no text "
            "access_token and instance_url; check login_url"
        )
    return Session(token, instance.rstrip("/"))


def _words(reason: object) -> str:
    """The refusal's reason on one short line, whatever its JSON type."""
    words = " ".join(str(reason).split())
    return words if len(words) <= 200 else words[:197] + "..."


def _grant(auth: SalesforceAuth) -> dict[str, str]:
    def need(*names: str) -> None:
        missing = [n for n in names if not getattr(auth, n)]
        if missing:
            raise InvalidInput(f"salesforce {auth.method} auth needs {', '.join(missing)}")

    if auth.method == "password":
        need("client_id", "client_secret", "username", "password")
        return {
            "grant_type": "password",
            "client_id": str(auth.client_id),
            "client_secret": str(auth.client_secret),
            "username": str(auth.username),
            "password": str(auth.password) + (auth.security_token or ""),
        }
    if auth.method == "client_credentials":
        need("client_id", "client_secret")
        return {
            "grant_type": "client_credentials",
            "client_id": str(auth.client_id),
            "client_secret": str(auth.client_secret),
        }
    if auth.method == "refresh_token":
        need("client_id", "refresh_token")
        form = {
            "grant_type": "refresh_token",
            "client_id": str(auth.client_id),
            "refresh_token": str(auth.refresh_token),
        }
        if auth.client_secret:
            form["client_secret"] = auth.client_secret
        return form
    if auth.method == "jwt_bearer":
        need("client_id", "username", "private_key_file")
        assert auth.private_key_file is not None
        try:
            key = auth.private_key_file.read_bytes()
        except OSError as e:
            raise InvalidInput(
                f"cannot read private_key_file {auth.private_key_file}: {e.strerror}"
            ) from None
        claims = {
            "iss": auth.client_id,
            "sub": auth.username,
            "aud": auth.login_url.rstrip("/"),
            "exp": int(time.time()) + 180,
        }
        try:
            assertion = jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError) as e:
            raise InvalidInput(
                f"private_key_file {auth.private_key_file} is not an RSA private key: {e}"
            ) from None
        return {"grant_type": JWT_GRANT, "assertion": assertion}
    raise InvalidInput(f"unknown salesforce auth method {auth.method!r}")
