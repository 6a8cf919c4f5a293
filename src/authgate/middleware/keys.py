"""Where the middleware leaves its results for the application: keys in the ASGI scope or the WSGI
environ (`authgate.principal`: the `Principal`, None on public routes; `authgate.route`: the
`RouteConfig` that judged the request; `authgate.gate`: the `Gate` under ASGI, for the FastAPI
dependencies, and the `SyncGate` that wraps it under WSGI).
"""

PRINCIPAL_KEY = "authgate.principal"
ROUTE_KEY = "authgate.route"
GATE_KEY = "authgate.gate"

__all__ = ["GATE_KEY", "PRINCIPAL_KEY", "ROUTE_KEY"]
