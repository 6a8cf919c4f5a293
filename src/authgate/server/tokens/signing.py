"""Signing the server's JWTs with the active key of an algorithm: access tokens (RFC 9068 §2.1,
`typ: at+jwt`) and OpenID Connect ID tokens (Core §2, `typ: JWT`).

RSA signing is slow next to a hand-off to a thread, and OpenSSL releases the GIL while it computes,
so RS256/PS256 tokens are signed on a small thread pool: one server process then uses every core
for signing while its event loop keeps parsing requests.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from authgate import tracing
from authgate.jose import JWK, jwt
from authgate.server.keys import KeyManager

__all__ = ["JwtSigner"]

# Algorithms slow enough that a thread hand-off pays for itself.
_SIGN_IN_THREADS = frozenset({"RS256", "PS256"})


class JwtSigner:
    """Signs claims with the key of an algorithm that signs now (`KeyManager.signing_key`)."""

    def __init__(self, keys: KeyManager) -> None:
        self._keys = keys
        self._threads = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 2, thread_name_prefix="authgate-sign"
        )

    async def sign(self, claims: Mapping[str, Any], alg: str, typ: str) -> str:
        """A JWS compact JWT of `claims` with the header `typ`; `NoSigningKey` (503) when no key
        of `alg` is active."""
        key = self._keys.signing_key(alg)
        with tracing.span("sign", {"jwt.alg": alg, "jwt.typ": typ}):
            if alg in _SIGN_IN_THREADS:
                return await asyncio.get_running_loop().run_in_executor(
                    self._threads, _sign, claims, key, alg, typ
                )
            return _sign(claims, key, alg, typ)

    def close(self) -> None:
        """Stop the signing threads."""
        self._threads.shutdown(wait=False, cancel_futures=True)


def _sign(claims: Mapping[str, Any], key: JWK, alg: str, typ: str) -> str:
    return jwt.encode(claims, key, alg, header={"typ": typ})
