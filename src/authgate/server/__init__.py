"""`authgate.server`: the OAuth 2.0 authorization server and OpenID Connect provider.

Grants: client credentials (RFC 6749 §4.4), authorization code with PKCE (§4.1, RFC 7636), refresh
tokens with rotation (RFC 9700 §4.14.2) and the device authorization grant (RFC 8628); access
tokens as JWTs (RFC 9068) or opaque, for one API each (RFC 8707); ID tokens, userinfo and
RP-initiated logout (OpenID Connect); introspection (RFC 7662), revocation (RFC 7009), metadata
(RFC 8414) and a JWKS whose signing keys rotate on a published schedule; on SQLite or PostgreSQL.
Build the ASGI app with `authgate.server.app.create_app(config)`.

The packages, from the bottom up: `models` (the records), `storage` (their stores), `targets`
(what a token is for), `flows` (the rules of the user-facing flows), `keys`, `clients` and
`tokens`, `grants` (the token endpoint's grant types), `admin`, then `auth_server` (the wiring),
`endpoints` (HTTP) and `app`.
"""
