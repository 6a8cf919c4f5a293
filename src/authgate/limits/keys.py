"""Store keys: bounded in length, free of collisions, whatever the client sent.

A key is `<namespace>:rl:<limit>:<digest>`. The digest is SHA-256 over the parts (a client id, an
address, a header value...), each prefixed with its length, so `("a:b", "c")` and `("a", "b:c")`
differ and no separator inside a part can shift it into the next. The digest is cut to 128 bits
(collisions need about 2^64 chosen inputs) and base64url-encoded: every key has the same short
length, a 10 kB client id costs the store 22 characters, and raw client values (addresses,
client ids) never appear in the store's key space.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import re
from collections.abc import Sequence

__all__ = ["KeyPart", "address_part", "check_namespace", "store_key"]

KeyPart = str | bytes
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}", re.ASCII)
DIGEST_BYTES = 16


def check_namespace(namespace: str) -> str:
    """`namespace` if it is a valid key prefix (lower-case ASCII, at most 32), else ValueError."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"limits namespace {namespace!r}: expected lower-case letters, digits, '_', '.' or '-'"
            " (at most 32)"
        )
    return namespace


def store_key(namespace: str, limit: str, parts: Sequence[KeyPart]) -> str:
    """The store key counting `parts` under the limit named `limit`.

    `namespace` and `limit` are checked names (`check_namespace`, `Limit`); parts are anything.
    Text is UTF-8 ("surrogatepass": text decoded with surrogateescape still has one encoding), so
    the text and the bytes of one value share a key.
    """
    chunks = []
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else bytes(part)
        chunks.append(len(data).to_bytes(8, "big"))
        chunks.append(data)
    digest = hashlib.sha256(b"".join(chunks)).digest()[:DIGEST_BYTES]
    tag = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return f"{namespace}:rl:{limit}:{tag}"


def address_part(address: str) -> str:
    """The key part for a client address: the address, an IPv4-mapped IPv6 address as IPv4, or
    the /64 network of an IPv6 address (the block one subscriber usually holds, so one host
    cannot get a fresh bucket from each of its 2^64 addresses). Anything else is kept as given
    (it is hashed into the key like any part)."""
    # Addresses come back and the parse costs more than a lookup: short ones (every IP address
    # is) are remembered, in a bounded cache; longer text is not an address and is not kept.
    return _address_part(address) if len(address) <= 64 else address


@functools.lru_cache(maxsize=4096)
def _address_part(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
