"""The rules of the user-facing flows, one small module per concern: authorization requests and
responses, codes and PKCE, consent, refresh-token rotation, device codes, sessions and CSRF,
throttling, passwords, tickets of waiting requests, logout, and the pages they render."""
