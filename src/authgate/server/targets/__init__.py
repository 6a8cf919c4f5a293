"""What a token is for: the API (its RFC 8707 resource, the token's audience) and the scopes,
whether the request comes from a client alone or from a user's sign-in."""
