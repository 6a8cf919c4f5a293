"""The clients of the server: how they authenticate (secrets, `private_key_jwt` assertions, none),
the keys they register, and their identifiers and secrets."""
