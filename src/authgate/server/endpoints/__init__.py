"""The HTTP endpoints: token, introspection, revocation, metadata and JWKS."""
