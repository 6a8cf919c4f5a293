"""`JwtSigner`: RSA signatures on a thread pool or on the event loop (`[keys] sign_in_threads`),
the same verifiable tokens either way."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from authgate.jose import JWK, jwt
from authgate.server.tokens import signing
from authgate.server.tokens.signing import JwtSigner, usable_cpus

CLAIMS = {"iss": "https://as.example.test", "sub": "c1", "aud": "https://api.example.test"}
KEYS = {"RS256": JWK.generate("RSA", kid="r"), "ES256": JWK.generate("EC", crv="P-256", kid="e")}


class _Keys:
    def signing_key(self, alg: str) -> JWK:
        return KEYS[alg]


def _signer(threads: str) -> JwtSigner:
    return JwtSigner(_Keys(), threads=threads)  # type: ignore[arg-type]


def _cpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(signing.os, "sched_getaffinity", lambda pid: set(range(count)))


def test_usable_cpus_is_the_affinity_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpus(monkeypatch, 3)
    assert usable_cpus() == 3


@pytest.mark.parametrize(
    ("threads", "cpus", "threaded"),
    [
        ("auto", 1, False),  # pinned to one core: threads would only take turns with the loop
        ("auto", 2, True),
        ("always", 1, True),
        ("never", 4, False),
    ],
)
def test_threads_by_setting_and_cpus(
    monkeypatch: pytest.MonkeyPatch, threads: str, cpus: int, threaded: bool
) -> None:
    _cpus(monkeypatch, cpus)
    signer = _signer(threads)
    try:
        assert signer.threaded is threaded
    finally:
        signer.close()


@pytest.mark.parametrize("threads", ["always", "never"])
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_tokens_verify_either_way(
    monkeypatch: pytest.MonkeyPatch, threads: str, alg: str
) -> None:
    signed_on: list[str] = []
    sign = signing._sign

    def recording(*args: Any) -> str:
        signed_on.append(threading.current_thread().name)
        return sign(*args)

    monkeypatch.setattr(signing, "_sign", recording)
    signer = _signer(threads)
    try:
        token = await signer.sign(CLAIMS, alg, "at+jwt")
    finally:
        signer.close()
    claims = jwt.decode(
        token, KEYS[alg].public(), algorithms=[alg], audience=CLAIMS["aud"], typ="at+jwt"
    )
    assert claims == CLAIMS
    in_thread = threads == "always" and alg == "RS256"  # EC signatures always on the loop
    assert signed_on[0].startswith("authgate-sign") is in_thread
