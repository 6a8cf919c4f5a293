"""What `authgate dev` prints once everything is ready: the services, the demo credentials, the
exact commands to get a token and call the API through the gateway, and useful URLs.

The commands are plain `curl` lines (the token is read out of the JSON answer with `python3`,
which every machine that ran the install command has), quoted for POSIX shells.
"""

from __future__ import annotations

import shlex

from authgate.dev.provisioning import DemoCredentials
from authgate.dev.workspace import API_PATH, READ_SCOPE, WRITE_SCOPE, Workspace

__all__ = ["banner", "token_command"]

_EXTRACT = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"


def token_command(workspace: Workspace, credentials: DemoCredentials) -> str:
    """The client credentials request (RFC 6749 §4.4) that stores an access token in $TOKEN."""
    user = shlex.quote(f"{credentials.client_id}:{credentials.client_secret}")
    resource = shlex.quote(workspace.api_identifier)
    return (
        f"TOKEN=$(curl -s -u {user} -d grant_type=client_credentials -d scope={READ_SCOPE} "
        f"-d resource={resource} {workspace.issuer}/token | {_EXTRACT})"
    )


def banner(workspace: Workspace, credentials: DemoCredentials) -> str:
    """The whole text, ready to print."""
    api = workspace.api_identifier
    hello = shlex.quote(f"{api}/hello")
    issuer, gateway = workspace.issuer, workspace.gateway_url
    logs = workspace.logs.resolve()
    lines = [
        f"authgate dev is running. Data: {workspace.directory.resolve()}  (Ctrl-C stops it all)",
        "",
        f"  authorization server  {issuer}",
        f"  gateway               {gateway}  ({API_PATH} -> demo upstream; GET needs "
        f"{READ_SCOPE}, writes need {WRITE_SCOPE})",
        f"  demo upstream         {workspace.upstream_url}  (echoes the identity it receives)",
        "",
        f"  demo API     {api}  scopes: {READ_SCOPE} {WRITE_SCOPE}",
        f"  demo client  client_id: {credentials.client_id}",
        f"               client_secret: {credentials.client_secret}",
        f"  demo user    username: {credentials.username}  password: {credentials.password}",
        "",
        "Get an access token (client credentials):",
        f"  {token_command(workspace, credentials)}",
        "",
        "Call the API through the gateway:",
        f'  curl -H "Authorization: Bearer $TOKEN" {hello}',
        f"  curl -i {hello}    # no token: 401 with WWW-Authenticate",
        f'  curl -i -X POST -H "Authorization: Bearer $TOKEN" {hello}    # needs '
        f"{WRITE_SCOPE}: 403",
        "",
        "URLs:",
        f"  issuer metadata    {issuer}/.well-known/oauth-authorization-server",
        f"  issuer JWKS        {issuer}/.well-known/jwks.json",
        f"  resource metadata  {gateway}/.well-known/oauth-protected-resource{API_PATH}",
        f"  gateway readiness  {gateway}/readyz",
        f"  gateway metrics    {gateway}/metrics",
        f"  X-Auth-Token JWKS  {gateway}/.well-known/authgate/jwks.json",
        f"  logs               {logs}/{{server,gateway,upstream}}.log",
    ]
    return "\n".join(lines) + "\n"
