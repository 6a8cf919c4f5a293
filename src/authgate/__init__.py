"""authgate: an OAuth 2.0 authorization server, a JOSE library and an API gate."""

__version__ = "0.1.0.dev0"
