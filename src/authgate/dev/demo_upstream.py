"""The demo upstream of `authgate dev`: an HTTP service that answers every request with a JSON
echo of what the gateway told it about the caller.

A service behind `authgate gateway` learns who is calling from the identity fields the gateway
attaches (`X-Auth-Subject`, `X-Auth-Client-Id`, `X-Auth-Scopes`, `X-Auth-Roles`, `X-Auth-Issuer`,
and the gateway-signed `X-Auth-Token`) and from `X-Forwarded-*`; this one shows them, so that a
developer can see the gateway at work. It is a plain ASGI application with no framework, run by
uvicorn on loopback:

    python -m authgate.dev.demo_upstream --port 9000
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["IDENTITY_PREFIX", "app", "echo", "main"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

IDENTITY_PREFIX = "x-auth-"
_FORWARDED = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "via")


def echo(method: str, path: str, query: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The JSON document answered for one request."""
    identity: dict[str, str] = {}
    forwarded: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name.startswith(IDENTITY_PREFIX):
            identity[name] = value
        elif name in _FORWARDED:
            forwarded[name] = value
    return {
        "service": "authgate dev demo upstream",
        "method": method,
        "path": path,
        "query": query,
        "identity": identity,
        "forwarded": forwarded,
    }


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer every HTTP request with `echo(...)`; the request body is read and ignored."""
    if scope["type"] != "http":
        return  # no WebSockets here: uvicorn refuses a handshake the app does not accept
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False) and message["type"] == "http.request"
    document = echo(
        scope["method"],
        scope["path"],
        scope["query_string"].decode("latin-1"),
        scope["headers"],
    )
    body = json.dumps(document, indent=2).encode() + b"\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})


def main(argv: list[str] | None = None) -> None:
    """Run the echo service with uvicorn (loopback only)."""
    import uvicorn  # noqa: PLC0415 - only the running service needs it

    parser = argparse.ArgumentParser(description="authgate dev demo upstream (echo service)")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args(argv)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
