"""The working directory of `authgate dev`: where its files live, which ports it uses, and the
configuration files it writes for the authorization server and the gateway.

Everything listens on 127.0.0.1. The server's issuer is its own loopback URL (RFC 8414 §2 allows
plain http only there). The demo API's identifier is the gateway URL of its route, so that it is
at once the `resource` a client asks for (RFC 8707), the `aud` of its tokens (RFC 9068 §3) and the
resource the gateway describes in its RFC 9728 metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "API_PATH",
    "DEMO_SCOPES",
    "READ_SCOPE",
    "WRITE_SCOPE",
    "DevPorts",
    "Workspace",
    "WorkspaceError",
]

API_PATH = "/api"
READ_SCOPE = "demo:read"
WRITE_SCOPE = "demo:write"
DEMO_SCOPES = (READ_SCOPE, WRITE_SCOPE)
_MARKER = "# Written by `authgate dev`."
_READ_METHODS = ("GET",)  # GET also allows HEAD
_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class WorkspaceError(Exception):
    """The directory cannot be used: the message says why."""


@dataclass(frozen=True, slots=True)
class DevPorts:
    """The loopback ports of the three services."""

    server: int = 8000
    gateway: int = 8080
    upstream: int = 9000

    def named(self) -> dict[str, int]:
        """The ports by the option that sets them."""
        return {
            "--port-server": self.server,
            "--port-gateway": self.gateway,
            "--port-upstream": self.upstream,
        }


@dataclass(frozen=True, slots=True)
class Workspace:
    """Paths and URLs of one `authgate dev` environment."""

    directory: Path
    ports: DevPorts

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.ports.server}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def upstream_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.upstream}"

    @property
    def api_identifier(self) -> str:
        """The demo API: its resource identifier, token audience and gateway URL."""
        return self.gateway_url + API_PATH

    @property
    def server_config(self) -> Path:
        return self.directory / "server.toml"

    @property
    def gateway_config(self) -> Path:
        return self.directory / "gateway.toml"

    @property
    def state_file(self) -> Path:
        """Demo credentials, so that a second start prints the same ones (mode 0600)."""
        return self.directory / "demo-credentials.json"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def check(self) -> None:
        """Refuse a directory that holds other files than an `authgate dev` one: its
        `server.toml` and `gateway.toml` would be overwritten."""
        if not self.directory.exists():
            return
        if not self.directory.is_dir():
            raise WorkspaceError(f"{self.directory} is not a directory")
        if not self._made_here() and any(self.directory.iterdir()):
            raise WorkspaceError(
                f"{self.directory} holds other files and was not made by `authgate dev`; "
                "choose a new or empty directory with --dir"
            )

    def _made_here(self) -> bool:
        ignore = self.directory / ".gitignore"
        if not ignore.is_file():
            return False
        return ignore.read_text(encoding="utf-8", errors="replace").startswith(_MARKER)

    def prepare(self) -> None:
        """Create the directory (private: it holds the server's secret key) and write both
        configuration files for the current ports."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.logs.mkdir(mode=0o700, exist_ok=True)
        ignore = self.directory / ".gitignore"
        if not ignore.exists():  # keeps the data (and its secrets) out of the user's repository
            ignore.write_text(f"{_MARKER}\n*\n", encoding="utf-8")
        self.server_config.write_text(self.server_toml(), encoding="utf-8")
        self.gateway_config.write_text(self.gateway_toml(), encoding="utf-8")

    def server_toml(self) -> str:
        """`authgate serve`'s configuration: SQLite and the secret key inside the directory."""
        database = (self.directory / "authgate.db").resolve()
        return (
            "# Written by `authgate dev` at each start; see docs/server.md.\n"
            f"issuer = {_toml(self.issuer)}\n"
            f"database_url = {_toml('sqlite:///' + str(database))}\n"
            'secret_key_file = "authgate.secret"\n'
            "\n[http]\n"
            'host = "127.0.0.1"\n'
            f"port = {self.ports.server}\n"
        )

    def gateway_toml(self) -> str:
        """`authgate gateway`'s configuration: the server as issuer, /api to the demo upstream
        (reads need demo:read, writes demo:write), a gateway-signed X-Auth-Token."""
        upstream = _toml(self.upstream_url)
        routes = "".join(
            "\n[[routes]]\n"
            f"path = {_toml(API_PATH)}\n"
            f"methods = {_toml(list(methods))}\n"
            f"upstream = {upstream}\n"
            f"scopes = {_toml([scope])}\n"
            for methods, scope in ((_READ_METHODS, READ_SCOPE), (_WRITE_METHODS, WRITE_SCOPE))
        )
        return (
            "# Written by `authgate dev` at each start; see docs/gateway.md.\n"
            f"listen = {_toml(f'127.0.0.1:{self.ports.gateway}')}\n"
            'realm = "authgate-dev"\n'
            f"resource = {_toml(self.api_identifier)}\n"
            "\n[[issuers]]\n"
            f"issuer = {_toml(self.issuer)}\n"
            f"audiences = {_toml([self.api_identifier])}\n"
            'typ = "at+jwt"\n'
            f"{routes}"
            "\n[identity_token]\n"
            f"issuer = {_toml(self.gateway_url)}\n"
        )


def _toml(value: str | list[str]) -> str:
    # A JSON string or array of strings is a valid TOML value with the same meaning.
    return json.dumps(value)
