"""Issuing and inspecting tokens: access tokens in one of two formats (JWT per RFC 9068, or opaque
under a keyed hash), each a strategy used by both the issuer and the inspector; ID token claims;
signing with the server's keys."""
