"""Where the middleware leaves its results for the application: keys in the ASGI scope or the WSGI
environ (`authgate.principal`: the `Principal`, None on public routes; `authgate.route`: the
`RouteConfig` that judged the request; `authgate.gate`: the `Gate` under ASGI, for the FastAPI
dependencies, and the `SyncGate` that wraps it under WSGI; `authgate.response_fields`: under ASGI,
a list to which the FastAPI dependencies add fields (the RateLimit fields of their limits) that
the middleware adds to the application's response).
"""

PRINCIPAL_KEY = "authgate.principal"
ROUTE_KEY = "authgate.route"
GATE_KEY = "authgate.gate"
RESPONSE_FIELDS_KEY = "authgate.response_fields"

__all__ = ["GATE_KEY", "PRINCIPAL_KEY", "RESPONSE_FIELDS_KEY", "ROUTE_KEY"]
