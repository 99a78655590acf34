"""Logging in to the sandbox org: the OAuth token endpoint (password, client credentials, refresh
token, JWT bearer), the access tokens it has issued, and the check of every other request's token.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

import jwt
from werkzeug.wrappers import Request, Response

from crmsync.sandbox.salesforce.base import SalesforceBase
from crmsync.sandbox.web import json_response

ORG_ID = "00D8d000000SaNdBOX"


@dataclass
class Credentials:
    """What a client needs to log in to the sandbox org, printed by `crmsync sandbox`."""

    client_id: str = "crmsync-sandbox-client"
    client_secret: str = "crmsync-sandbox-secret"
    username: str = "admin@crmsync-sandbox.example"
    password: str = "sandbox-password"
    security_token: str = "SANDBOXTOKEN"
    refresh_token: str = "5Aep861SandboxRefreshToken"
    static_access_token: str = ORG_ID + "!StaticSandboxAccessToken"
    jwt_public_key_pem: bytes = b""  # the connected app's certificate key, for JWT bearer
    org_id: str = ORG_ID  # access tokens start with it, as Salesforce session ids do


class Sessions:
    """The access tokens the org has issued (token -> grant type), the static one included."""

    def __init__(self, static_token: str) -> None:
        self._tokens: dict[str, str] = {static_token: "static"}
        self._lock = threading.Lock()

    def issue(self, token: str, grant: str) -> None:
        with self._lock:
            self._tokens[token] = grant

    def valid(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def expire_all(self) -> None:
        with self._lock:
            self._tokens.clear()


class AuthRoutes(SalesforceBase):
    """The token endpoint and the token check."""

    credentials: Credentials
    sessions: Sessions
    login_url: str  # the shared login endpoint's URL (a JWT audience), set at start

    def expire_sessions(self) -> None:
        """Invalidate every issued access token (the static one included)."""
        self.sessions.expire_all()

    def authenticate(self, request: Request, name: str) -> Response | None:
        if name in ("oauth_token", "versions"):
            return None
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else auth.removeprefix("OAuth ")
        if not self.sessions.valid(token):
            return self.error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return None

    def on_oauth_token(self, request: Request) -> Response:
        form = request.form
        grant = form.get("grant_type", "")
        c = self.credentials

        def fail(error: str, description: str, status: int = 400) -> Response:
            return json_response({"error": error, "error_description": description}, status)

        if grant == "password":
            if form.get("client_id") != c.client_id or form.get("client_secret") != c.client_secret:
                return fail("invalid_client_id", "client identifier invalid")
            if form.get("username") != c.username or form.get("password") not in (
                c.password,
                c.password + c.security_token,
            ):
                return fail("invalid_grant", "authentication failure")
        elif grant == "client_credentials":
            if form.get("client_id") != c.client_id or form.get("client_secret") != c.client_secret:
                return fail("invalid_client", "invalid client credentials")
        elif grant == "refresh_token":
            if form.get("client_id") != c.client_id:
                return fail("invalid_client_id", "client identifier invalid")
            if form.get("refresh_token") != c.refresh_token:
                return fail("invalid_grant", "expired access/refresh token")
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = self._check_assertion(form.get("assertion", ""))
            if problem:
                return fail("invalid_grant", problem)
        else:
            return fail("unsupported_grant_type", "grant type not supported")
        token = f"{c.org_id}!{secrets.token_urlsafe(32)}"
        self.sessions.issue(token, grant)
        issued = str(int(self.clock.now().timestamp() * 1000))
        user_id = self.org.api_user_id or "005000000000000AAA"
        return json_response(
            {
                "access_token": token,
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/{c.org_id}/{user_id}",
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": secrets.token_urlsafe(32),
                "scope": "api",
            }
        )

    def _check_assertion(self, assertion: str) -> str | None:
        c = self.credentials
        try:
            claims = jwt.decode(
                assertion,
                c.jwt_public_key_pem,
                algorithms=["RS256"],
                options={"require": ["iss", "sub", "aud", "exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            return "expired authorization code"
        except jwt.PyJWTError:
            return "invalid assertion"
        audiences = {
            self.base_url,
            self.login_url,
            "https://login.salesforce.com",
            "https://test.salesforce.com",
        }
        aud = claims.get("aud")
        if aud not in audiences and not (isinstance(aud, list) and set(aud) & audiences):
            return "audience is invalid"
        if claims.get("iss") != c.client_id:
            return "invalid_client_id"
        if claims.get("sub") != c.username:
            return "user hasn't approved this consumer"
        return None
