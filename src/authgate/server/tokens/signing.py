"""Signing the server's JWTs with the active key of an algorithm: access tokens (RFC 9068 §2.1,
`typ: at+jwt`) and OpenID Connect ID tokens (Core §2, `typ: JWT`).

An RSA signature (RS256, PS256) costs several times a thread hand-off, and OpenSSL releases the
GIL while it computes, so with more than one CPU they are signed on a small thread pool: one server
process then uses every core for signing while its event loop keeps parsing requests. A process
that may run on one CPU only (`os.sched_getaffinity`: pinned, or a one-CPU container) signs on the
event loop instead: there the threads only take turns with the loop on that core, and each hand-off
(a future, a wake-up of the loop, the switches between threads) is spent for nothing; with many
requests in flight the GIL contention grows too. `[keys] sign_in_threads` overrides the choice.
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

__all__ = ["JwtSigner", "usable_cpus"]

# Algorithms slow enough that a thread hand-off pays for itself.
_SIGN_IN_THREADS = frozenset({"RS256", "PS256"})


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - no affinity on this platform
        return os.cpu_count() or 1


class JwtSigner:
    """Signs claims with the key of an algorithm that signs now (`KeyManager.signing_key`).

    `threads`: "auto" (RSA signatures on a thread pool when the process may use more than one
    CPU), "always" or "never" (`KeyPolicy.sign_in_threads`)."""

    def __init__(self, keys: KeyManager, *, threads: str = "auto") -> None:
        self._keys = keys
        cpus = usable_cpus()
        self._threads: ThreadPoolExecutor | None = None
        if threads == "always" or (threads == "auto" and cpus > 1):
            self._threads = ThreadPoolExecutor(
                max_workers=max(cpus, 2), thread_name_prefix="authgate-sign"
            )

    @property
    def threaded(self) -> bool:
        """Whether RSA signatures go to the thread pool."""
        return self._threads is not None

    async def sign(self, claims: Mapping[str, Any], alg: str, typ: str) -> str:
        """A JWS compact JWT of `claims` with the header `typ`; `NoSigningKey` (503) when no key
        of `alg` is active."""
        key = self._keys.signing_key(alg)
        with tracing.span("sign", {"jwt.alg": alg, "jwt.typ": typ}):
            if self._threads is not None and alg in _SIGN_IN_THREADS:
                return await asyncio.get_running_loop().run_in_executor(
                    self._threads, _sign, claims, key, alg, typ
                )
            return _sign(claims, key, alg, typ)

    def close(self) -> None:
        """Stop the signing threads."""
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)


def _sign(claims: Mapping[str, Any], key: JWK, alg: str, typ: str) -> str:
    return jwt.encode(claims, key, alg, header={"typ": typ})
