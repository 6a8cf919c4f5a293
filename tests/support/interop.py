"""Helpers for the gate's interoperability tests: real token issuers in subprocesses (npm
`oidc-provider`, `authgate serve`), the gate configured as a user would (a TOML file, discovery),
and one FastAPI and one Flask application behind the middleware, driven through the same calls."""

from __future__ import annotations

import base64
import json
import os
import queue
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI, Request, WebSocket
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from authgate.gate import Gate, load_gate_config
from authgate.jose import JWK, jws
from authgate.jose.encoding import b64url_decode
from authgate.middleware import PRINCIPAL_KEY, AuthGateMiddleware
from authgate.middleware.fastapi import require_roles as fastapi_roles
from authgate.middleware.flask import FlaskAuthGate, current_principal
from authgate.middleware.flask import require_roles as flask_roles
from authgate.verifier import Principal
from tests.support.dpop import DPoPClient
from tests.support.tokens import b64url, claims_of

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
ISSUER_SCRIPT = HERE / "oidc_provider_issuer.mjs"
AUTHGATE = Path(sys.executable).with_name("authgate")
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_node() -> None:
    """Fail (not skip) when the Node peers are missing: scripts/test installs them."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed")
    if not (NODE_MODULES / "oidc-provider").is_dir():
        pytest.fail("oidc-provider is not installed: run `cd tests/node && npm ci`")


class OffsetClock:
    """Real time, moved forward on demand: tokens from real issuers expire without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class _Process:
    """A subprocess whose output goes to a log file, stopped at `stop()`."""

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log
        self.process: subprocess.Popen[str] | None = None

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.process = None

    def failure(self, what: str) -> str:
        output = self.log.read_text() if self.log.exists() else ""
        return f"{self.name} {what}:\n{output[-4000:]}"


# -- oidc-provider -------------------------------------------------------------------------------


class OidcProviderIssuer(_Process):
    """npm `oidc-provider` (tests/support/oidc_provider_issuer.mjs) on a loopback port.

    `jwks`: the private key set to sign with (the first key of an algorithm signs); None lets the
    script generate an RSA and a P-256 key. `path`: an issuer path (Keycloak's `/realms/x`).
    `stop()` then `start(jwks)` brings it back on the same port (the same issuer URL), with another
    key set if given: a key rotation as verifiers see it. With a `port` and `start=False`, the
    issuer URL is known before the issuer runs.
    """

    CLIENT_ID = "interop-client"
    GATE_CLIENT_ID = "interop-gate"
    ORDERS = "https://orders.interop.test"  # RS256, orders:read orders:write
    REPORTS = "https://reports.interop.test"  # ES256, reports:read
    OPAQUE = "https://opaque.interop.test"  # opaque tokens, opaque:read

    def __init__(
        self,
        directory: Path,
        jwks: dict[str, Any] | None = None,
        *,
        path: str = "",
        port: int = 0,
        start: bool = True,
    ) -> None:
        super().__init__("oidc-provider", directory / "oidc-provider.log")
        self.directory = directory
        self.path = path
        self.client_secret = secrets.token_urlsafe(24)
        # Characters that RFC 6749 §2.3.1 form-encoding changes (all VSCHAR, Appendix A.2): the
        # gate and oidc-provider must agree on the encoding.
        self.gate_secret = secrets.token_urlsafe(24) + " +/:%&="
        self.port = port
        self.url = f"http://127.0.0.1:{port}{path}" if port else ""
        self._http = httpx.Client(timeout=10, trust_env=False)
        if start:
            self.start(jwks)

    def start(self, jwks: dict[str, Any] | None = None) -> None:
        require_node()
        env = {
            **os.environ,
            "INTEROP_CLIENT_SECRET": self.client_secret,
            "INTEROP_GATE_SECRET": self.gate_secret,
        }
        env.pop("INTEROP_JWKS_FILE", None)
        env["INTEROP_ISSUER_PATH"] = self.path
        if jwks is not None:
            path = self.directory / "oidc-provider-jwks.json"
            path.write_text(json.dumps(jwks))
            path.chmod(0o600)
            env["INTEROP_JWKS_FILE"] = str(path)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                ["node", str(ISSUER_SCRIPT), str(self.port)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        line = _first_line(self.process, STARTUP_TIMEOUT)
        if not line.startswith("ready "):
            self.stop()
            pytest.fail(self.failure(f"did not start (said {line!r})"))
        self.url = line.split()[1]
        self.port = int(self.url.split(":")[2].split("/")[0])

    def close(self) -> None:
        self.stop()
        self._http.close()

    @property
    def introspection_endpoint(self) -> str:
        return self.url + "/token/introspection"

    def token(self, resource: str, scope: str | None = None) -> str:
        """An access token from the token endpoint (client credentials, RFC 8707 resource)."""
        form = {"grant_type": "client_credentials", "resource": resource}
        if scope is not None:
            form["scope"] = scope
        response = self._http.post(
            self.url + "/token", data=form, auth=(self.CLIENT_ID, self.client_secret)
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def dpop_token(self, resource: str, scope: str, *, key: DPoPClient | None = None) -> str:
        """A DPoP-bound access token (RFC 9449 §5): the request carries a proof of `key` (a new
        one by default)."""
        if key is not None:
            proof = key.proof("POST", self.url + "/token")
            return self._dpop_token(resource, scope, proof)
        key_ = JWK.generate("EC", crv="P-256", alg="ES256")
        claims = {
            "jti": secrets.token_urlsafe(16),
            "htm": "POST",
            "htu": self.url + "/token",
            "iat": int(time.time()),
        }
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key_.public().to_dict()}
        return self._dpop_token(
            resource, scope, jws.sign(json.dumps(claims).encode(), key_, "ES256", header)
        )

    def _dpop_token(self, resource: str, scope: str, proof: str) -> str:
        response = self._http.post(
            self.url + "/token",
            data={"grant_type": "client_credentials", "resource": resource, "scope": scope},
            auth=(self.CLIENT_ID, self.client_secret),
            headers={"DPoP": proof},
        )
        assert response.status_code == 200, response.text
        assert response.json()["token_type"] == "DPoP"
        token: str = response.json()["access_token"]
        return token


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints on stdout ("" if it exits or says nothing in time)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        lines.put(process.stdout.readline())
        process.stdout.close()  # nothing else is printed; the pipe must not fill up unread

    threading.Thread(target=read, daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        return ""


# -- authgate serve ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str


class AuthgateServer(_Process):
    """`authgate serve` on a loopback port with SQLite in `directory`, administered through the
    `authgate api` / `authgate client` commands with the same environment."""

    def __init__(self, directory: Path, config: str | None = None) -> None:
        super().__init__("authgate serve", directory / "authgate-serve.log")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "AUTHGATE_ISSUER": self.url,
            "AUTHGATE_DATABASE_URL": f"sqlite:///{directory / 'authgate.db'}",
            "AUTHGATE_SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        }
        self.env.pop("AUTHGATE_CONFIG", None)
        if config is not None:  # a TOML file for what the environment does not set
            path = directory / "authgate.toml"
            path.write_text(config)
            self.env["AUTHGATE_CONFIG"] = str(path)
        self.directory = directory
        self._http = httpx.Client(timeout=10, trust_env=False)

    def cli(self, *args: str) -> Any:
        """Run an `authgate` admin command with `--json`; its parsed output."""
        done = subprocess.run(
            [str(AUTHGATE), *args, "--json"],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.directory,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"authgate {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout)

    def create_api(self, identifier: str, *scopes: str, **options: str) -> None:
        args = ["api", "create", "--identifier", identifier]
        for scope in scopes:
            args += ["--scope", scope]
        for name, value in options.items():
            args += [f"--{name.replace('_', '-')}", value]
        self.cli(*args)

    def create_client(self, name: str, *options: str) -> RegisteredClient:
        found = self.cli("client", "create", "--name", name, *options)
        return RegisteredClient(found["client_id"], found["client_secret"])

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [str(AUTHGATE), "serve", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=self.env,
                cwd=self.directory,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(self.failure("exited"))
            try:
                if self._http.get(self.url + "/.well-known/jwks.json").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(self.failure("did not start"))

    def close(self) -> None:
        self.stop()
        self._http.close()

    def token(self, client: RegisteredClient, resource: str, scope: str | None = None) -> str:
        """An access token from `POST /token` (client credentials, client_secret_basic)."""
        form = {"grant_type": "client_credentials", "resource": resource}
        if scope is not None:
            form["scope"] = scope
        response = self._http.post(
            self.url + "/token", data=form, auth=(client.client_id, client.client_secret)
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def revoke(self, client: RegisteredClient, token: str) -> None:
        response = self._http.post(
            self.url + "/revoke",
            data={"token": token},
            auth=(client.client_id, client.client_secret),
        )
        assert response.status_code == 200, response.text


# -- the applications under test -----------------------------------------------------------------

# Routes both applications serve; the gate's [[routes]] decide who may call them.
ROUTES_TOML = """
[[routes]]
path = "/health"
public = true

[[routes]]
path = "/orders"
methods = ["GET"]
scopes = ["orders:read"]

[[routes]]
path = "/orders"
methods = ["POST"]
scopes = ["orders:write"]

[[routes]]
path = "/reports"
scopes = ["reports:read"]

[[routes]]
path = "/opaque"
scopes = ["opaque:read"]

[[routes]]
path = "/audit"   # the application's dependency/decorator asks for the role
methods = ["GET"]

[[routes]]
path = "/admin"   # likewise; nobody here holds the role
methods = ["GET"]
"""
APP_PATHS = ("/orders", "/reports", "/opaque")


def principal_json(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {"principal": None}
    return {
        "subject": principal.subject,
        "client_id": principal.client_id,
        "scopes": sorted(principal.scopes),
        "roles": sorted(principal.roles),
        "issuer": principal.issuer,
        "method": principal.method,
        "aud": principal.claims.get("aud"),
    }


def make_gate(directory: Path, toml: str, clock: Callable[[], float]) -> Gate:
    """A gate loaded from a TOML file, the way an application would load it."""
    path = directory / f"gate-{secrets.token_hex(4)}.toml"
    path.write_text(toml + ROUTES_TOML)
    return Gate(load_gate_config(str(path)), clock=clock)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def challenge(self) -> str:
        return self.headers.get("www-authenticate", "")


class Shell:
    """An application behind one middleware shell, served over real HTTP on loopback."""

    url = ""

    def __init__(self) -> None:
        self._http = httpx.Client(timeout=30, trust_env=False)

    def request(self, method: str, path: str, token: str | None = None) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = self._http.request(method, self.url + path, headers=headers)
        body = response.json() if response.content else None
        return Reply(response.status_code, dict(response.headers), body)

    def get(self, path: str, token: str | None = None) -> Reply:
        return self.request("GET", path, token)

    def close(self) -> None:
        self._http.close()


class FastAPIShell(Shell):
    """FastAPI behind `AuthGateMiddleware`, run by uvicorn (lifespan on: keys fetched at start,
    the gate closed at shutdown)."""

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        app = FastAPI()
        app.add_middleware(AuthGateMiddleware, gate=gate)

        async def echo(request: Request) -> dict[str, Any]:
            return principal_json(request.scope.get(PRINCIPAL_KEY))

        for path in (*APP_PATHS, "/health"):
            app.add_api_route(path, echo, methods=["GET", "POST"])

        @app.websocket("/orders/feed")
        async def feed(websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.send_json(principal_json(websocket.scope.get(PRINCIPAL_KEY)))
            await websocket.close()

        @app.get("/audit")
        async def audit(who: Annotated[Principal, Depends(fastapi_roles("auditor"))]) -> Any:
            return principal_json(who)

        @app.get("/admin")
        async def admin(who: Annotated[Principal, Depends(fastapi_roles("admin"))]) -> Any:
            return principal_json(who)

        config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{config.port}"

    def close(self) -> None:
        super().close()
        self.server.should_exit = True
        self.thread.join(10)


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class FlaskShell(Shell):
    """Flask behind `FlaskAuthGate` (the WSGI middleware), run by werkzeug's threaded server."""

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        app = Flask("interop")

        def echo() -> dict[str, Any]:
            return principal_json(current_principal())

        for path in (*APP_PATHS, "/health"):
            app.add_url_rule(path, path, echo, methods=["GET", "POST"])

        @app.get("/audit")
        @flask_roles("auditor")
        def audit() -> dict[str, Any]:
            return principal_json(current_principal())

        @app.get("/admin")
        @flask_roles("admin")
        def admin() -> dict[str, Any]:
            return principal_json(current_principal())

        self.extension = FlaskAuthGate(app, gate)
        self.server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietRequestHandler
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        super().close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        assert self.extension.sync is not None
        self.extension.sync.close()


SHELLS: dict[str, type[FastAPIShell] | type[FlaskShell]] = {
    "fastapi": FastAPIShell,
    "flask": FlaskShell,
}


@contextmanager
def serving(shell: str, gate: Gate) -> Iterator[Shell]:
    """The application for `shell` behind `gate`, closed (gate included) on exit."""
    app = SHELLS[shell](gate)
    try:
        yield app
    finally:
        app.close()


def tamper_signature(token: str) -> str:
    """The same token with one signature bit flipped (the bytes decode, the signature is wrong)."""
    head, body, signature = token.split(".")
    raw = bytearray(b64url_decode(signature, "signature"))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


def tamper_claims(token: str, **changes: Any) -> str:
    """The same header and signature over changed claims (a forged payload)."""
    head, _, signature = token.split(".")
    claims = {**claims_of(token), **changes}
    return f"{head}.{b64url(json.dumps(claims).encode())}.{signature}"


# -- authgate gateway ----------------------------------------------------------------------------


class JsonSite:
    """A loopback HTTP server answering GET with `documents[path]` as JSON (else 404)."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                found = site.documents.get(self.path)
                data = json.dumps(found).encode() if found is not None else b"{}"
                self.send_response(200 if found is not None else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EchoUpstream:
    """A loopback HTTP service that answers every request with the headers it received."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body = json.dumps({"path": self.path, "headers": dict(self.headers.items())})
                data = body.encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GatewayProcess(_Process):
    """`authgate gateway` on a free loopback port (read from its "listening" log line)."""

    def __init__(self, directory: Path, config: str) -> None:
        super().__init__("authgate gateway", directory / "gateway.log")
        path = directory / "gateway.toml"
        path.write_text(config)
        self.port = 0
        listening = threading.Event()
        self.process = subprocess.Popen(
            [str(AUTHGATE), "gateway", "--config", str(path), "--listen", "127.0.0.1:0",
             "--grace", "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

        def read_logs() -> None:
            assert self.process is not None
            assert self.process.stderr is not None
            with self.log.open("a") as log:
                for line in self.process.stderr:
                    log.write(line)
                    log.flush()
                    if '"msg":"listening"' in line:
                        self.port = json.loads(line)["port"]
                        listening.set()

        threading.Thread(target=read_logs, daemon=True).start()
        if not listening.wait(STARTUP_TIMEOUT):
            self.stop()
            pytest.fail(self.failure("did not start"))
        self.url = f"http://127.0.0.1:{self.port}"
