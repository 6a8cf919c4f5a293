"""`authgate.middleware`: the gate as ASGI and WSGI middleware, with FastAPI dependencies
(`authgate.middleware.fastapi`), Flask decorators (`authgate.middleware.flask`) (RFC 6750) and the
MCP SDK's token verifier (`authgate.middleware.mcp`).

Every shell here calls the same `authgate.gate.Gate` pipeline or `authgate.verifier.Verifier`; none
parses tokens or judges rules itself. The FastAPI, Flask and MCP modules are imported only on
demand, so none of those packages is a dependency of authgate.
"""

from authgate.middleware.asgi import AuthGateMiddleware, GateRefusal, gate_request_from_scope
from authgate.middleware.keys import GATE_KEY, PRINCIPAL_KEY, ROUTE_KEY
from authgate.middleware.wsgi import AuthGateWSGIMiddleware, SyncGate, gate_request_from_environ

__all__ = [
    "GATE_KEY",
    "PRINCIPAL_KEY",
    "ROUTE_KEY",
    "AuthGateMiddleware",
    "AuthGateWSGIMiddleware",
    "GateRefusal",
    "SyncGate",
    "gate_request_from_environ",
    "gate_request_from_scope",
]
