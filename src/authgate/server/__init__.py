"""`authgate.server`: the OAuth 2.0 authorization server.

Client credentials (RFC 6749 §4.4) with JWT (RFC 9068) or opaque access tokens, RFC 8707 resource
indicators, introspection (RFC 7662), revocation (RFC 7009), metadata (RFC 8414), a JWKS whose
signing keys rotate on a published schedule, on SQLite or PostgreSQL. Build the ASGI app with
`authgate.server.app.create_app(config)`.
"""
