"""Vocabulary shared by the authorization server and the gate: OAuth errors and scopes."""
