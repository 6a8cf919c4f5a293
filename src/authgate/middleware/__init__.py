"""`authgate.middleware`: the gate as ASGI and WSGI middleware, with FastAPI dependencies
(`authgate.middleware.fastapi`) and Flask decorators (`authgate.middleware.flask`) (RFC 6750).

Every shell here calls the same `authgate.gate.Gate` pipeline; none parses tokens or judges rules
itself. The FastAPI and Flask modules are imported only on demand, so neither framework is a
dependency of authgate.
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
