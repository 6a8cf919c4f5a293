"""The token endpoint's DPoP pieces without HTTP: the binding of a grant's tokens (a context
variable, isolated per request), `check_bound`, `TokenEndpointDPoP` (a client that requires DPoP,
the proof's `htu`, replays through the database's single-use values on SQLite)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from authgate.oauth.errors import InvalidDPoPProof, UseDPoPNonce
from authgate.server.config import DPoPSettings
from authgate.server.models import Client
from authgate.server.storage import Database, SqlStorage
from authgate.server.storage.migrate import upgrade
from authgate.server.tokens.dpop import (
    DatabaseClaims,
    TokenEndpointDPoP,
    binding,
    bound_key,
    check_bound,
)
from tests.support.dpop import DPoPClient

TOKEN = "https://as.example.test/token"
PAR = "https://as.example.test/par"


async def test_binding_is_per_request() -> None:
    assert bound_key() is None

    async def grant(jkt: str) -> str | None:
        with binding(jkt):
            await asyncio.sleep(0)  # another request runs meanwhile
            return bound_key()

    assert await asyncio.gather(grant("a"), grant("b")) == ["a", "b"]
    assert bound_key() is None


def test_check_bound() -> None:
    check_bound(None, "the code")
    with pytest.raises(InvalidDPoPProof, match="the code is bound to another DPoP key"):
        check_bound("k1", "the code")
    with binding("k2"), pytest.raises(InvalidDPoPProof):
        check_bound("k1", "the code")
    with binding("k1"):
        check_bound("k1", "the code")


async def test_token_endpoint_proofs(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        await upgrade(db)
        clock = DPoPClient().clock
        dpop = TokenEndpointDPoP(
            DPoPSettings(),
            token_endpoint=TOKEN,
            par_endpoint=PAR,
            replay=DatabaseClaims(SqlStorage(db), clock),
            secret_key=b"k" * 32,
            clock=clock,
        )
        client = Client("c", "c", "client_secret_basic", ("client_credentials",))
        assert await dpop.proven_key([], client) is None
        strict = Client("s", "s", "client_secret_basic", ("client_credentials",), require_dpop=True)
        with pytest.raises(InvalidDPoPProof, match="must send a DPoP proof"):
            await dpop.proven_key([], strict)
        key = DPoPClient()
        proof = key.proof("POST", TOKEN)
        assert await dpop.proven_key([proof], strict) == key.jkt
        with pytest.raises(InvalidDPoPProof):  # replayed
            await dpop.proven_key([proof], client)
        with pytest.raises(InvalidDPoPProof):  # another endpoint
            await dpop.proven_key([key.proof("POST", TOKEN + "x")], client)
        assert dpop.nonce_header() == {}
        # RFC 9449 §10.1: at /par a proof names the PAR endpoint; none is needed, even of `strict`.
        assert await dpop.pushed_key([], strict) is None
        assert await dpop.pushed_key([key.proof("POST", PAR)], strict) == key.jkt
        with pytest.raises(InvalidDPoPProof):  # a token endpoint proof
            await dpop.pushed_key([key.proof("POST", TOKEN)], client)
        with pytest.raises(InvalidDPoPProof):  # a PAR proof at the token endpoint
            await dpop.proven_key([key.proof("POST", PAR)], client)
        nonces = TokenEndpointDPoP(
            DPoPSettings(require_nonce=True),
            token_endpoint=TOKEN,
            par_endpoint=PAR,
            replay=DatabaseClaims(SqlStorage(db), clock),
            secret_key=b"k" * 32,
            clock=clock,
        )
        with pytest.raises(UseDPoPNonce) as caught:
            await nonces.proven_key([key.proof("POST", TOKEN)], client)
        assert caught.value.nonce == nonces.nonce_header()["DPoP-Nonce"]
        proof = key.proof("POST", TOKEN, nonce=caught.value.nonce)
        assert await nonces.proven_key([proof], client) == key.jkt
        with pytest.raises(UseDPoPNonce):  # §8: the nonce is asked for at /par too
            await nonces.pushed_key([key.proof("POST", PAR)], client)
    finally:
        await db.close()


def test_settings_refuse_symmetric_algorithms() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        DPoPSettings(algorithms=("HS256",))
    with pytest.raises(ValueError, match="nonce_lifetime"):
        DPoPSettings(nonce_lifetime=1)


@pytest.mark.parametrize(
    ("leeway", "ahead", "fapi2_accepts", "others_accept"),
    [
        (0, 9, True, False),  # FAPI 2.0 §5.3.2.1: 10 s ahead is accepted whatever the setting
        (300, 61, False, True),  # and over 60 s is refused whatever the setting
    ],
)
async def test_fapi2_clients_get_the_profiles_clock_skew(
    tmp_path: Path, leeway: int, ahead: int, fapi2_accepts: bool, others_accept: bool
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        await upgrade(db)
        key = DPoPClient()
        dpop = TokenEndpointDPoP(
            DPoPSettings(leeway=leeway),
            token_endpoint=TOKEN,
            par_endpoint=PAR,
            replay=DatabaseClaims(SqlStorage(db), key.clock),
            secret_key=b"k" * 32,
            clock=key.clock,
        )
        plain = Client("c", "c", "private_key_jwt", ("client_credentials",))
        fapi2 = dataclasses.replace(plain, client_id="f", profile="fapi2")
        for client, accepts in ((fapi2, fapi2_accepts), (plain, others_accept)):
            proof = key.proof("POST", TOKEN, iat=int(key.clock()) + ahead)
            if accepts:
                assert await dpop.proven_key([proof], client) == key.jkt
            else:
                with pytest.raises(InvalidDPoPProof):
                    await dpop.proven_key([proof], client)
    finally:
        await db.close()
