"""Sealing under the server's secret key (`secret_key.Sealer`): one AES-GCM code path, a key per
purpose, values bound to their associated data."""

from __future__ import annotations

import secrets

import pytest

from authgate.server.secret_key import SealError, ServerSecret, generate_token, random_token

SECRET = b"s" * 32


def test_refresh_replays_are_bound_to_the_token_and_their_purpose() -> None:
    secret = ServerSecret(SECRET)
    sealed = secret.refresh_replays.seal(b'{"access_token":"a"}', b"hash-of-refresh-token")
    # Another process with the same secret key opens it (the key is derived, not random).
    again = ServerSecret(SECRET).refresh_replays
    assert again.open(sealed, b"hash-of-refresh-token") == b'{"access_token":"a"}'
    with pytest.raises(SealError):  # presented with another refresh token
        again.open(sealed, b"hash-of-another-token")
    with pytest.raises(SealError):  # the signing-key seal is another purpose, another key
        secret.open(sealed, b"hash-of-refresh-token")
    with pytest.raises(SealError):  # another server key
        ServerSecret(b"t" * 32).refresh_replays.open(sealed, b"hash-of-refresh-token")
    with pytest.raises(SealError):  # truncated or altered
        again.open(sealed[:-1], b"hash-of-refresh-token")
    assert secret.refresh_replays.seal(b"x", b"a") != secret.refresh_replays.seal(b"x", b"a")


def test_random_tokens_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter(["-dash-first", "-again", "plain"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda nbytes: next(draws))
    assert random_token(16) == "plain"  # a command line would take "-..." for an option


def test_generated_tokens_carry_256_bits() -> None:
    token = generate_token()
    assert len(token) == 43
    assert not token.startswith("-")
