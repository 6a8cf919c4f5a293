"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): the metadata
a client sends (`metadata`), registering, reading, updating and deleting such clients
(`clients`), and the initial access tokens that open registration in `token` mode
(`initial_tokens`). The HTTP side is `endpoints.registration`."""
