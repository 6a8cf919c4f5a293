"""JSON Web Key Set (RFC 7517 §5) and key selection for verification.

A set never mixes symmetric and asymmetric keys and never holds two keys with one `kid`: both make
the key a token selects ambiguous (Wycheproof `MixedKeySet`, `DuplicateKid`). Members that this
library cannot use are skipped on import, as RFC 7517 §5 asks, and counted in `skipped`; a `kid`
repeated among the members is refused even when one of them would be skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from authgate.jose.errors import InvalidKey, KeyNotFound
from authgate.jose.jwk import JWK, Operation

__all__ = ["JWKSet"]


class JWKSet:
    """An immutable set of `JWK`s, looked up by `kid` (an opaque, exact-match string)."""

    __slots__ = ("_by_kid", "_candidates", "_keys", "_verifiers", "skipped")

    def __init__(self, keys: Iterable[JWK] = (), *, skipped: int = 0) -> None:
        self._keys: tuple[JWK, ...] = tuple(keys)
        self.skipped = skipped
        by_kid: dict[str, JWK] = {}
        for key in self._keys:
            if not isinstance(key, JWK):
                raise InvalidKey("a JWKSet holds JWK objects only")
            if key.kid is not None:
                if key.kid in by_kid:
                    raise InvalidKey("duplicate kid in key set")
                by_kid[key.kid] = key
        if len({k.kty == "oct" for k in self._keys}) > 1:
            raise InvalidKey("a key set must not mix symmetric and asymmetric keys")
        self._by_kid = by_kid
        # (kid, alg, operation, private) -> the usable keys; only successful lookups are kept,
        # so its size is bounded by the set's kids times the algorithms.
        self._candidates: dict[tuple[str | None, str, str, bool], tuple[JWK, ...]] = {}
        # (kid, alg) -> the candidates' prepared verifiers, filled by `jws` (same bound).
        self._verifiers: dict[
            tuple[str | None, str], tuple[Callable[[bytes, bytes], bool], ...]
        ] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = False) -> JWKSet:
        """Import `{"keys": [...]}`. With `strict=True` an unusable member is an error."""
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise InvalidKey('a JWK set must be an object with a "keys" array')
        entries: list[Any] = data["keys"]
        kids = [e.get("kid") for e in entries if isinstance(e, Mapping) and "kid" in e]
        if len(kids) != len({repr(kid) for kid in kids}):
            raise InvalidKey("duplicate kid in key set")
        keys: list[JWK] = []
        skipped = 0
        for entry in entries:
            try:
                keys.append(JWK.from_dict(entry))
            except InvalidKey:
                if strict:
                    raise
                skipped += 1
        return cls(keys, skipped=skipped)

    def to_dict(self, private: bool = False) -> dict[str, Any]:
        """`{"keys": [...]}`, public members only unless `private=True`."""
        return {"keys": [key.to_dict(private=private) for key in self._keys]}

    def get(self, kid: str) -> JWK | None:
        """The key with this exact `kid`, or None."""
        return self._by_kid.get(kid)

    def __iter__(self) -> Iterator[JWK]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"JWKSet({len(self._keys)} keys)"


def candidate_keys(
    keys: JWK | JWKSet,
    kid: object,
    alg: str,
    operation: Operation = "verify",
    *,
    private: bool = False,
) -> list[JWK]:
    """The keys that may process a token with this `kid` and `alg`, or raise.

    A single JWK is used as given (its binding is still checked). In a set, a `kid` selects at most
    one key; without a `kid`, every key bound to a compatible family is a candidate.
    """
    if isinstance(keys, JWK):
        keys.check(alg, operation, private=private)
        return [keys]
    if not isinstance(keys, JWKSet):
        raise InvalidKey("expected a JWK or a JWKSet")
    if kid is not None and not isinstance(kid, str):
        raise KeyNotFound("no key matches the token's kid")
    cache_key = (kid, alg, operation, private)
    found = keys._candidates.get(cache_key)
    if found is not None:
        return list(found)
    if kid is not None:
        key = keys.get(kid)
        if key is None:
            raise KeyNotFound("no key matches the token's kid")
        key.check(alg, operation, private=private)
        found = (key,)
    else:
        usable = []
        for key in keys:
            try:
                key.check(alg, operation, private=private)
            except InvalidKey:
                continue
            usable.append(key)
        if not usable:
            raise KeyNotFound(f"no key in the set can be used with {alg}")
        found = tuple(usable)
    keys._candidates[cache_key] = found
    return list(found)
