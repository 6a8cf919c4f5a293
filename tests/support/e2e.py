"""Helpers of the end-to-end flow tests (a uniquely named module: test folders have no packages).

- `Flow`: the in-process server (`server_harness.running`) with an API, a confidential web client,
  a public native client and a user; `UserAgent` walks its pages like a browser without one
  (cookies, forms read from the HTML, no redirects followed).
- `e2e_served.Served` is the same set-up in a real `authgate serve` process.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet

from authgate.server import admin
from authgate.server.models import Client, User
from tests.support.server_harness import ISSUER, Harness

API = "https://api.example.test"
WEB_REDIRECT = "https://app.example.test/callback"
NATIVE_REDIRECT = "http://127.0.0.1/callback"
POST_LOGOUT = "https://app.example.test/signed-out"
LOOPBACK_CALLBACK = "http://127.0.0.1/callback"
LOOPBACK_SIGNED_OUT = "http://127.0.0.1/signed-out"
USERNAME = "alice"
PASSWORD = "correct horse battery staple"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636 §4.1-§4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a 303 to the client (each must appear once)."""
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {name: values[0] for name, values in query.items()}


def joserfc_claims(
    token: str, jwks: dict[str, Any], *, now: float, typ: str, **expected: Any
) -> dict[str, Any]:
    """Verify `token` with joserfc (an independent JOSE library) against the served JWKS under
    RS256 only, check its header `typ` and the `expected` claim values; return the claims."""
    keys = KeySet.import_key_set(jwks)
    decoded = joserfc_jwt.decode(token, keys, algorithms=["RS256"])
    assert decoded.header["typ"] == typ
    options: dict[str, Any] = {"exp": {"essential": True}, "iat": {"essential": True}}
    options.update({name: {"essential": True, "value": value} for name, value in expected.items()})
    joserfc_jwt.JWTClaimsRegistry(now=int(now), **options).validate(decoded.claims)
    return dict(decoded.claims)


def at_hash(access_token: str) -> str:
    """OpenID Connect Core §3.1.3.6 for RS256, computed here, not by the server's code."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def assert_page_headers(response: httpx.Response) -> None:
    """The clickjacking and caching headers every page and redirect of the flows carries."""
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp


# -- reading pages ---------------------------------------------------------------------------------


@dataclass
class HtmlForm:
    """A form of a page: where it posts, its fields (hidden and filled) and its buttons."""

    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)

    def value(self, name: str) -> str:
        values = [v for n, v in self.fields if n == name]
        assert len(values) == 1, (name, self.fields)
        return values[0]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[HtmlForm] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(HtmlForm(attributes.get("action", "")))
        elif tag == "input" and self.forms and "name" in attributes:
            self.forms[-1].fields.append((attributes["name"], attributes.get("value", "")))
        elif tag == "button" and self.forms and "name" in attributes:
            self.forms[-1].buttons.append((attributes["name"], attributes.get("value", "")))


def forms_of(html: str) -> list[HtmlForm]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def only_form(response: httpx.Response) -> HtmlForm:
    forms = forms_of(response.text)
    assert len(forms) == 1, response.text
    return forms[0]


class UserAgent:
    """One browser's cookie jar against the server; redirects are not followed."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def authorize(self, **params: str) -> httpx.Response:
        return await self.http.get("/authorize", params=params)

    async def submit(
        self, form: HtmlForm, button: str | None = None, **filled: str
    ) -> httpx.Response:
        """Post `form` as a browser would: its fields with `filled` values, and `button`."""
        data = [(n, filled.pop(n) if n in filled else v) for n, v in form.fields]
        data += list(filled.items())
        if button is not None:
            data += [(n, v) for n, v in form.buttons if n == button]
        return await self.post(urlsplit(form.action).path, data)

    async def post(self, path: str, pairs: list[tuple[str, str]]) -> httpx.Response:
        """POST an urlencoded form whose fields may repeat."""
        return await self.http.post(path, content=urlencode(pairs), headers=FORM)

    async def sign_in(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        form = only_form(page)
        assert form.action.endswith("/login"), form.action
        return await self.submit(form, username=username, password=password)

    async def approve(self, page: httpx.Response, button: str = "approve") -> httpx.Response:
        form = only_form(page)
        assert form.action.endswith("/consent"), form.action
        return await self.submit(form, button)

    async def code_for(self, *, username: str = USERNAME, **params: str) -> dict[str, str]:
        """Authorize, sign in and approve as needed; the parameters sent to the redirect URI."""
        response = await self.authorize(**params)
        for _ in range(3):
            if response.status_code == 303:
                return redirect_params(response)
            assert response.status_code == 200, response.text
            action = only_form(response).action
            if action.endswith("/login"):
                response = await self.sign_in(response, username, PASSWORD)
            else:
                response = await self.approve(response)
        raise AssertionError(response.text)


# -- the in-process server -------------------------------------------------------------------------


@dataclass
class Flow:
    """The in-process server set up for the user flows."""

    harness: Harness
    web: Client
    web_secret: str
    native: Client
    user: User
    agents: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def http(self) -> httpx.AsyncClient:
        return self.harness.http

    def agent(self) -> UserAgent:
        """A new browser (its own cookie jar) on the same app."""
        http = httpx.AsyncClient(transport=self.harness.http._transport, base_url=ISSUER)
        self.agents.append(http)
        return UserAgent(http)

    async def token(
        self, client: Client | None = None, secret: str | None = None, **form: str
    ) -> httpx.Response:
        """POST /token as the web client (Basic) or, for a public client, naming itself."""
        return await self.post("/token", client, secret, **form)

    async def post(
        self, path: str, client: Client | None = None, secret: str | None = None, **form: str
    ) -> httpx.Response:
        """POST to a client-authenticated endpoint (token, introspection, revocation, device)."""
        client = client or self.web
        if client.is_public:
            return await self.http.post(path, data={**form, "client_id": client.client_id})
        auth = (client.client_id, secret or self.web_secret)
        return await self.http.post(path, data=form, auth=auth)

    async def introspect(self, token: str, client: Client | None = None) -> dict[str, Any]:
        """RFC 7662 introspection by the client the token was issued to."""
        response = await self.post("/introspect", client, token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def web_request(self, **params: str) -> dict[str, str]:
        """The web client's authorization request: the code flow to its redirect URI with scope
        `openid read` and state `s`; `params` add parameters or replace these."""
        return {
            "response_type": "code",
            "client_id": self.web.client_id,
            "redirect_uri": WEB_REDIRECT,
            "scope": "openid read",
            "state": "s",
            **params,
        }

    async def authorization_page(
        self, agent: UserAgent | None = None, **params: str
    ) -> httpx.Response:
        """GET /authorize with the web client's request (`web_request(**params)`) in `agent`'s
        browser (a new one by default): the sign-in or consent page, or the redirect."""
        return await (agent or self.agent()).authorize(**self.web_request(**params))

    async def web_code(self, agent: UserAgent | None = None, **params: str) -> dict[str, str]:
        """A code for the web client (scope read, state, redirect_uri) unless `params` say else."""
        request = self.web_request(**{"state": "s-" + secrets.token_urlsafe(8), **params})
        return await (agent or self.agent()).code_for(**request)

    async def web_tokens(self, scope: str = "openid offline_access read") -> dict[str, Any]:
        """Tokens for the web client through the whole code flow."""
        result = await self.web_code(scope=scope)
        response = await self.token(
            grant_type="authorization_code", code=result["code"], redirect_uri=WEB_REDIRECT
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def set_up_flow(harness: Harness) -> Flow:
    await harness.create_api(API, scopes=("read", "write"), name="Orders API")
    web, secret = await harness.create_client(
        name="Web <App>",
        grant_types=("authorization_code", "refresh_token"),
        scopes=("read", "write"),
        redirect_uris=(WEB_REDIRECT,),
    )
    native, _ = await harness.create_client(
        name="Native App",
        grant_types=("authorization_code", "refresh_token", DEVICE_GRANT),
        scopes=("read",),
        auth_method="none",
        redirect_uris=(NATIVE_REDIRECT, "com.example.app:/oauth2redirect"),
    )
    user = await admin.create_user(
        harness.server.storage,
        username=USERNAME,
        password=PASSWORD,
        email="alice@example.test",
        name="Alice Liddell",
        now=int(harness.clock()),
    )
    assert secret is not None
    return Flow(harness, web, secret, native, user)
